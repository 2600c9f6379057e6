"""Trains a spec with DistributedDataParallel on two processes of this machine (gloo, loopback
only), for tests/test_ddp.py: each rank writes its final state_dict and its losses to OUT.

    python tests/ddp_train.py SPEC PORT OUT [STEPS]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

WORLD = 2


def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1,797 real handwritten digits, upsampled to MNIST's 28x28."""
    from sklearn.datasets import load_digits

    data = load_digits()
    images = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    images = torch.nn.functional.interpolate(images, size=(28, 28), mode="bilinear")
    return (images - images.mean()) / images.std(), torch.tensor(data.target)


def train(rank: int, spec: str, port: int, out: str, steps: int) -> None:
    import compiler

    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD
    )
    try:
        torch.manual_seed(rank)  # different initial weights: DDP must make them one
        model = DistributedDataParallel(compiler.build(spec))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5)
        images, labels = digits()
        mine = torch.arange(rank, len(labels), WORLD)  # each rank its own half of the data
        generator = torch.Generator().manual_seed(100 + rank)
        losses = []
        model.train()
        for _ in range(steps):
            batch = mine[torch.randint(0, len(mine), (32,), generator=generator)]
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(images[batch]), labels[batch])
            loss.backward()  # DDP averages the gradients over the ranks here
            optimizer.step()
            losses.append(loss.item())
        torch.save(model.module.state_dict(), Path(out) / f"rank{rank}.pt")
        (Path(out) / f"rank{rank}.json").write_text(json.dumps(losses))
        # both ranks done before either tears gloo down: a rank that destroys its group while
        # the other is still in a collective aborts ("terminate called without an active
        # exception", seen once in CI)
        dist.barrier()
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    spec, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    steps = int(sys.argv[4]) if len(sys.argv) > 4 else 60
    mp.spawn(train, args=(spec, port, out, steps), nprocs=WORLD, join=True)
