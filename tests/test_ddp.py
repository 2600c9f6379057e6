"""A built model on torch's distributed engine (issue 17, item 4): `compiler.build`'s module
trains under DistributedDataParallel, gloo backend, two processes on this machine, loopback
only (tests/ddp_train.py). The ranks start from different weights and see different data; DDP
makes the weights one and averages the gradients, so the replicas end equal, and the loss
falls."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from .conftest import ROOT, SPECS

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
    pytest.skip("torch was built without gloo", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("name", ["mnist_residual"])
def test_two_replicas_train_to_the_same_weights(name, tmp_path):
    spec = SPECS / "posts" / f"{name}.yaml"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tests" / "ddp_train.py"),
            str(spec),
            str(_free_port()),
            str(tmp_path),
            "60",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    states = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert states[0].keys() == states[1].keys()
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), f"the replicas differ at {key}"
    for rank in (0, 1):
        losses = json.loads((tmp_path / f"rank{rank}.json").read_text())
        first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
        assert first > 2.0 and last < first / 2, (rank, first, last)
