"""The optimising inference build: each pass on its own, and equivalence for every spec."""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest

from compiler import lint_file, lint_text
from compiler.passes import Plan, drop_dropout, fold_batchnorm, fuse_parallel_1x1, optimize_graph

from .conftest import ROOT, SPECS

CLEAN = sorted(p for p in SPECS.rglob("*.yaml") if not lint_file(p).errors)


def test_fold_batchnorm_needs_a_conv_read_by_nothing_else():
    spec = """
input: [3, 8, 8]
layers:
  - conv: {name: a, out: 4, kernel: 1}
  - bn: {name: a_bn}
  - conv: {name: b, out: 4, kernel: 1, bias: false}
  - bn: {name: b_bn, from: b}
  - add: [b_bn, b]
"""
    graph = lint_text(spec).graph
    plan = Plan()
    fold_batchnorm(graph, plan)
    assert plan.folded == [("a", "a_bn")]  # `b` is read twice: its bn stays
    assert graph.node("a").args.bias is True
    assert graph.node("b").inputs == ["a"]
    assert "a_bn" not in graph.graph and "b_bn" in graph.graph


def test_drop_dropout_rewires_and_keeps_outputs():
    graph = lint_text("input: [4]\nlayers:\n  - linear: 4\n  - dropout: {name: d}\n").graph
    plan = Plan()
    drop_dropout(graph, plan)
    assert plan.dropped == ["d"] and graph.outputs == {"out": "linear_1"}


INCEPTION = """
input: [16, 8, 8]
layers:
  - inception: {name: mix, channels: [4, [6, 8], [2, 3], 5]}
"""


def test_fuse_parallel_1x1_shares_one_conv_and_one_relu():
    graph = lint_text(INCEPTION).graph
    plan = Plan()
    fuse_parallel_1x1(graph, plan)
    (fused, convs) = plan.fused[0]
    assert fused == "mix.fused_1x1" and convs == ["mix.branch1.0", "mix.branch2.0", "mix.branch3.0"]
    node = graph.node(fused)
    assert node.args.out == 4 + 6 + 2 and node.shape == (12, 8, 8) and node.inputs == ["input"]
    slices = {
        n.name: (n.args.start, n.args.stop) for n in graph.nodes() if n.op.name == "channel_slice"
    }
    assert slices == {"branch1_in": (0, 4), "branch2_in": (4, 10), "branch3_in": (10, 12)}
    relu = graph.node("mix.fused_relu")
    assert relu.inputs == [fused]
    assert not any(c in graph.graph for c in convs)  # the convs and their ReLUs are gone
    assert graph.instances["mix.branch2"].input == "mix.branch2_in"
    # the pool branch still reads the input; the concat reads branch 1's slice directly
    assert "mix.branch1_in" in graph.node(graph.outputs["out"]).inputs
    order = graph.order
    assert order.index(fused) < order.index("mix.fused_relu") < order.index("mix.branch1_in")


def test_fuse_parallel_1x1_leaves_strided_padded_and_grouped_convs():
    spec = """
input: [8, 8, 8]
layers:
  - conv: {name: a, out: 4, kernel: 1, stride: 2}
  - conv: {name: b, out: 4, kernel: 1, from: input, groups: 2}
  - conv: {name: c, out: 4, kernel: 3, padding: 1, from: input}
  - conv: {name: d, out: 4, kernel: 1, from: input}
  - add: [c, d]
"""
    graph = lint_text(spec).graph
    plan = Plan()
    fuse_parallel_1x1(graph, plan)
    assert plan.fused == []  # only `d` is a plain 1x1: nothing to share it with


def test_the_plain_graph_is_untouched():
    graph = lint_file(SPECS / "resnet18.yaml").graph
    before = list(graph.order)
    optimized, plan = optimize_graph(graph)
    assert graph.order == before and len(plan.folded) == 20 and plan.channels_last
    assert len(optimized.order) == len(before) - 20


HEAVY_MACS = 5_000_000_000  # bigger zoo models are checked in `make test-zoo` only
ALL = os.environ.get("YARCH_ZOO") == "all"


@pytest.mark.parametrize("path", CLEAN, ids=lambda p: p.name)
def test_optimized_module_equals_the_plain_one(path):
    torch = pytest.importorskip("torch")
    import compiler

    graph = lint_file(path).graph
    if sum(n.macs for n in graph.nodes()) > HEAVY_MACS and not ALL:
        pytest.skip(f"{path.stem}: over {HEAVY_MACS:,} MACs, in `make test-zoo` only")

    torch.manual_seed(0)
    plain = compiler.build(path)
    for module in plain.modules():  # trained-looking statistics, so folding is exercised
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)
    plain.eval()
    fast = compiler.optimize(plain, "inference")
    x = torch.randn(1, *plain.yarch_graph.input_shape)
    with torch.no_grad():
        a, b = plain(x), fast(x)
    pairs = zip(a, b, strict=True) if isinstance(a, tuple) else [(a, b)]
    for u, v in pairs:
        if u is None:
            assert v is None
            continue
        assert torch.allclose(u, v, rtol=1e-4, atol=1e-4 * u.abs().max().item())


def test_generated_optimized_code_loads_the_optimized_weights(tmp_path):
    torch = pytest.importorskip("torch")
    import compiler
    from compiler.codegen import codegen_file

    path = SPECS / "googlenet_torchvision.yaml"
    source = codegen_file(lint_file(path), "specs/googlenet_torchvision.yaml", "inference")
    assert "= nn.BatchNorm2d(" not in source and "channels_last" in source
    file = tmp_path / "fast.py"
    file.write_text(source)
    spec = importlib.util.spec_from_file_location("fast_googlenet", file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    fast = compiler.optimize(compiler.build(path).eval())
    generated = module.GoogLeNet()
    generated.load_state_dict(fast.state_dict(), strict=True)
    generated.eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(generated(x).logits, fast(x).logits)
    assert str(ROOT) not in source


def test_optimize_wants_a_built_module():
    torch = pytest.importorskip("torch")
    import compiler

    with pytest.raises(ValueError, match=r"compiler\.build"):
        compiler.optimize(torch.nn.Linear(2, 2))
