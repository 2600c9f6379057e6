"""Build and forward overhead: `compiler.build("specs/googlenet.yaml")` against the hand-written
GoogLeNet (`handwritten.py`), and the GFLOP/s the forward pass achieves next to a matmul's.
"""

from __future__ import annotations

import copy
import gc
import sys
import time

import torch
from common import ROOT, Stat, rotate
from handwritten import GoogLeNet
from torch import nn

import compiler
from compiler import lint_file
from compiler.summary import summarize

SPEC = ROOT / "specs" / "googlenet.yaml"
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
MATMUL_N = 2048


def build_overhead(rounds: int) -> dict[str, Stat]:
    """`compiler.build(spec)` (read, lint, lower, construct; default weight initialisation) and
    `GoogLeNet()` (construct; the same initialisation), in alternating rounds; and, to read the
    difference, `lint_file(spec)` alone. Round i asks both for 1000 + i classes, so that no cache
    of an earlier build could answer it."""
    contestants = {
        "build": lambda n: compiler.build(SPEC, num_classes=n),
        "hand": lambda n: GoogLeNet(num_classes=n),
        "lint": lambda n: lint_file(SPEC, {"num_classes": n}),
    }
    for make in contestants.values():  # warm up
        make(999)
    s = {name: Stat("s") for name in contestants}
    ratio = Stat("x")
    for i in range(rounds):
        times = {}
        for name in rotate(list(contestants), i):
            gc.collect()
            start = time.perf_counter()
            made = contestants[name](1000 + i)
            times[name] = time.perf_counter() - start
            del made
        for name, t in times.items():
            s[name].add(t)
        ratio.add(times["build"] / times["hand"])
    return {**s, "ratio": ratio}


def _timed(model: nn.Module, x: torch.Tensor, repeat: int, clock) -> float:
    start = clock()
    for _ in range(repeat):
        model(x)
    return (clock() - start) / repeat


def _matmul_gflops(a: torch.Tensor, b: torch.Tensor, repeat: int, clock) -> float:
    start = clock()
    for _ in range(repeat):
        torch.mm(a, b)
    return 2 * MATMUL_N**3 * repeat / (clock() - start) / 1e9


def forward_overhead(
    rounds: int, repeat: int, batch: int, clock_name: str = "wall", matmul_repeat: int = 10
) -> dict[str, Stat]:
    """Forward time of the built GoogLeNet, the hand-written one and a copy of the hand-written
    one (the A/A control: the noise floor), eval mode, same weights (checked: equal logits), in
    rotating rounds; each round also times a 2048x2048 float32 matmul, so that the GFLOP/s of
    both are measured under the same load."""
    clock = CLOCKS[clock_name]
    torch.manual_seed(0)
    macs = summarize(lint_file(SPEC).graph).total_macs  # one sample, eval forward
    built = compiler.build(SPEC).eval()
    hand = GoogLeNet().eval()
    hand.load_state_dict(built.state_dict(), strict=True)
    twin = copy.deepcopy(hand)
    x = torch.randn(batch, 3, 224, 224)
    a, b = torch.randn(MATMUL_N, MATMUL_N), torch.randn(MATMUL_N, MATMUL_N)
    names = {id(built): "built", id(hand): "hand", id(twin): "twin"}
    s = {name: Stat("s") for name in names.values()}
    s |= {
        "ratio": Stat("x"),
        "control": Stat("x"),
        "gflops_built": Stat("GFLOP/s"),
        "gflops_hand": Stat("GFLOP/s"),
        "gflops_matmul": Stat("GFLOP/s"),
        "gflops_fraction": Stat("x"),
    }
    with torch.inference_mode():
        if not torch.equal(built(x).logits, hand(x)):
            raise RuntimeError("the built and the hand-written GoogLeNet disagree")
        for model in (built, hand, twin):  # warm up
            _timed(model, x, 1, clock)
        _matmul_gflops(a, b, matmul_repeat, clock)
        for i in range(rounds):
            times = {}
            for model in rotate([built, hand, twin], i):
                times[names[id(model)]] = _timed(model, x, repeat, clock)
            matmul = _matmul_gflops(a, b, matmul_repeat, clock)
            for name, t in times.items():
                s[name].add(t)
            s["ratio"].add(times["built"] / times["hand"])
            s["control"].add(times["twin"] / times["hand"])
            flops = 2 * macs * batch
            s["gflops_built"].add(flops / times["built"] / 1e9)
            s["gflops_hand"].add(flops / times["hand"] / 1e9)
            s["gflops_matmul"].add(matmul)
            s["gflops_fraction"].add(flops / times["hand"] / 1e9 / matmul)
    s["macs"] = Stat("MACs", [float(macs)])
    return s


if __name__ == "__main__":
    sys.exit("run bench/run.py")
