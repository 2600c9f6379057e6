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


TORCHVISION_SPEC = ROOT / "specs" / "googlenet_torchvision.yaml"


def _eager_torchvision() -> type[nn.Module]:
    """torchvision's GoogLeNet as eager code: generated/googlenet_torchvision.py (the same
    module a person writes by hand; tests/test_codegen.py proves it equals `build`)."""
    import importlib.util

    path = ROOT / "generated" / "googlenet_torchvision.py"
    spec = importlib.util.spec_from_file_location("eager_googlenet_torchvision", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.GooglenetTorchvision


def optimize_speedup(
    rounds: int, repeat: int, batch: int, clock_name: str = "wall", matmul_repeat: int = 10
) -> dict[str, Stat]:
    """Throughput of `compiler.optimize(build(googlenet_torchvision), "inference")` against the
    eager module (same weights; outputs checked equal within 1e-4), with the GFLOP/s it reaches
    next to a matmul's, in rotating rounds."""
    clock = CLOCKS[clock_name]
    torch.manual_seed(0)
    macs = summarize(lint_file(TORCHVISION_SPEC).graph).total_macs
    eager = _eager_torchvision()().eval()
    built = compiler.build(TORCHVISION_SPEC).eval()
    built.load_state_dict(eager.state_dict(), strict=True)
    fast = compiler.optimize(built, "inference")
    unfused = compiler.optimize(built, "inference", without=["fuse_parallel_1x1"])
    x = torch.randn(batch, 3, 224, 224)
    a, b = torch.randn(MATMUL_N, MATMUL_N), torch.randn(MATMUL_N, MATMUL_N)
    s = {
        "eager": Stat("s"),
        "optimized": Stat("s"),
        "unfused": Stat("s"),
        "speedup": Stat("x"),
        "fusion_gain": Stat("x"),
        "gflops_optimized": Stat("GFLOP/s"),
        "gflops_matmul": Stat("GFLOP/s"),
    }
    with torch.inference_mode():
        want = eager(x).logits
        for model in (fast, unfused):
            got = model(x).logits
            if not torch.allclose(want, got, rtol=1e-4, atol=1e-4 * want.abs().max().item()):
                raise RuntimeError("the optimised GoogLeNet disagrees with the eager one")
        models = [("eager", eager), ("optimized", fast), ("unfused", unfused)]
        for _, model in models:
            _timed(model, x, 1, clock)
        for i in range(rounds):
            times = {}
            for name, model in rotate(models, i):
                times[name] = _timed(model, x, repeat, clock)
            s["eager"].add(times["eager"])
            s["optimized"].add(times["optimized"])
            s["unfused"].add(times["unfused"])
            s["speedup"].add(times["eager"] / times["optimized"])
            s["fusion_gain"].add(times["unfused"] / times["optimized"])
            s["gflops_optimized"].add(2 * macs * batch / times["optimized"] / 1e9)
            s["gflops_matmul"].add(_matmul_gflops(a, b, matmul_repeat, clock))
    return s


if __name__ == "__main__":
    sys.exit("run bench/run.py")
