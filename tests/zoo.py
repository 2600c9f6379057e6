"""Comparing a spec with torchvision's model, from the facts in ../shared/references.

`torchvision_zoo/<name>.json` and `.tsv` record torchvision 0.28's model: parameters, MACs,
every state_dict key and shape in order, and the eval output for the deterministic weights and
input of `zoo_weights.py`. torchvision itself is not needed. The facts of the models that
specs/zoo/ holds are copied into tests/references/ (they are fixed: torchvision 0.28's), so the
tests run wherever the repository is cloned; `tests/test_zoo.py` checks the copies against
../shared/references where that exists.
"""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REFERENCES = ROOT / "tests" / "references"
ZOO = REFERENCES / "torchvision_zoo"
SHARED = ROOT.parent / "shared" / "references"  # where the project keeps all of them


@cache
def reference(name: str) -> dict[str, Any]:
    return json.loads((ZOO / f"{name}.json").read_text())


@cache
def state_dict_shapes(name: str) -> list[tuple[str, tuple[int, ...]]]:
    """(key, shape) of every entry of torchvision's state_dict, in order."""
    rows = []
    for line in (ZOO / f"{name}.tsv").read_text().splitlines():
        if not line.strip() or line.startswith("#") or line.startswith("key\t"):
            continue
        key, shape = line.split("\t")[:2]
        dims = () if shape.strip() in ("scalar", "") else tuple(int(d) for d in shape.split("x"))
        rows.append((key, dims))
    return rows


def weights() -> Any:
    """`zoo_weights` (it needs only torch)."""
    if str(REFERENCES) not in sys.path:
        sys.path.insert(0, str(REFERENCES))
    import zoo_weights

    return zoo_weights


def sampled(tensor: Any, name: str) -> list[float]:
    """The values `<name>.json` records of an output: every `output_sampled_every`-th element
    of the flattened first sample, at most 4,096."""
    ref = reference(name)
    flat = tensor[0].flatten()
    step = ref.get("output_sampled_every", 1)
    return flat[::step][: len(ref["output"])].tolist()
