"""Ops that follow their input's rank: conv, bn and the pools on [C, L] (1-D), [C, H, W] and
[C, D, H, W] (3-D, the video models), and `upsample`. Shapes, parameters and MACs against what
PyTorch's own modules give; diagnostics where a per-axis list does not fit the input."""

from __future__ import annotations

import pytest
import yaml

from compiler import lint_text
from compiler.summary import summarize

from .conftest import load_module

LAYERS = [
    {"conv": {"out": 6, "kernel": 3, "stride": 2, "padding": 1, "bias": False}},
    "bn",
    "relu",
    {"maxpool": {"kernel": 3, "stride": 2, "padding": 1, "ceil_mode": True}},
    {"conv": {"out": 8, "kernel": 3, "padding": "same", "dilation": 2, "groups": 2}},
    {"conv": {"out": 8, "kernel": 3, "stride": 2, "padding": "same"}},
    {"avgpool": {"kernel": 2, "stride": 1}},
    {"adaptive_maxpool": 2},
    {"conv": {"out": 4, "kernel": 1}},
    {"adaptive_avgpool": 1},
    "flatten",
    {"dropout": 0.1},
    {"linear": 5},
    "softmax",
]
INPUTS = {1: [3, 37], 2: [3, 23, 29], 3: [3, 9, 17, 21]}


def spec(shape: list[int], layers: list) -> str:
    return yaml.safe_dump({"name": "ranks", "input": shape, "layers": layers}, sort_keys=False)


@pytest.mark.parametrize("axes", [1, 2, 3])
def test_shapes_params_and_macs_are_pytorchs(axes):
    torch = pytest.importorskip("torch")
    from compiler import build

    text = spec(INPUTS[axes], LAYERS)
    result = lint_text(text, "ranks.yaml")
    assert not result.diagnostics, [d.message for d in result.diagnostics]
    graph = result.graph
    model = build(yaml.safe_load(text)).eval()
    kinds = {type(m).__name__ for m in model.modules()}
    assert {f"Conv{axes}d", f"MaxPool{axes}d", f"AvgPool{axes}d"} <= kinds
    assert f"BatchNorm{max(axes, 1)}d" in kinds
    assert sum(p.numel() for p in model.parameters()) == summarize(graph).total_params
    seen: dict[str, tuple] = {}
    modules = dict(model.named_modules())
    for node in graph.nodes()[1:]:
        if node.id in modules:
            modules[node.id].register_forward_hook(
                lambda m, _i, out, key=node.id: seen.__setitem__(key, (m, tuple(out.shape[1:])))
            )
    with torch.no_grad():
        model(torch.randn(2, *INPUTS[axes]))
    for node in graph.nodes()[1:]:
        module, shape = seen[node.id]
        assert shape == node.shape, node.id
        if isinstance(module, torch.nn.modules.conv._ConvNd):
            # output elements x in_channels/groups x kernel volume: one weight row per output
            assert node.macs == module.weight[0].numel() * torch.Size(shape).numel(), node.id


def test_a_list_per_axis_must_fit_the_input():
    text = spec([3, 8, 16, 16], [{"conv": {"out": 4, "kernel": [3, 3]}}])
    (d,) = lint_text(text, "wrong.yaml").diagnostics
    assert d.code == "rank-mismatch"
    assert "2 values in `kernel`" in d.message and "3 spatial axes" in d.message
    lines = text.splitlines()  # at the list as written, under `kernel:`
    assert lines[d.span.line - 2].strip() == "kernel:" and lines[d.span.line - 1].strip() == "- 3"
    assert "[depth, height, width]" in (d.help or "")
    # one number serves every axis, and a list as long as the input's axes fits
    for kernel in (3, [1, 3, 3]):
        text = spec([3, 8, 16, 16], [{"conv": {"out": 4, "kernel": kernel, "padding": 1}}])
        assert not lint_text(text, "ok.yaml").diagnostics


def test_features_are_not_a_map():
    for layer in ({"conv": {"out": 4, "kernel": 1}}, {"maxpool": 2}, {"adaptive_avgpool": 1}):
        text = spec([3, 8, 8], ["flatten", layer])
        assert [d.code for d in lint_text(text, "f.yaml").diagnostics] == ["rank-mismatch"]


def test_summary_writes_one_size_per_axis():
    text = spec([3, 8, 16, 16], [{"conv": {"out": 4, "kernel": 3, "stride": [1, 2, 2]}}])
    (row,) = summarize(lint_text(text, "s.yaml").graph).rows
    assert row.op == "conv 3x3x3/1x2x2, 4"
    assert row.output_shape == (4, 6, 7, 7)


def test_3d_optimize_and_generated_code_keep_the_output(tmp_path):
    torch = pytest.importorskip("torch")
    from compiler import build, optimize, torchbuild
    from compiler.codegen import codegen_file

    text = spec(INPUTS[3], LAYERS[:9])
    model = build(yaml.safe_load(text))
    with torch.no_grad():  # batch statistics that are not the identity, for the folding
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 2)
    model.eval()
    x = torch.randn(2, *INPUTS[3])
    with torch.no_grad():
        want = model(x)
        fast = optimize(model)
        assert torch.allclose(fast(x), want, atol=1e-5)
        result = lint_text(text, "ranks.yaml")
        module = load_module(codegen_file(result, "ranks.yaml"), tmp_path, "ranks3d")
        generated = getattr(module, torchbuild.class_name("ranks"))()
        generated.load_state_dict(model.state_dict())
        assert torch.allclose(generated.eval()(x), want, atol=1e-6)


UPSAMPLE = [
    {"conv": {"name": "down", "out": 4, "kernel": 3, "stride": 2, "padding": 1}},
    {"upsample": 2},
    {"upsample": {"size": [5, 7], "mode": "bilinear", "align_corners": True}},
    {"upsample": {"scale": [1.5, 2], "mode": "bilinear"}},
    {"upsample": {"like": "input", "mode": "bilinear"}},
]


def test_upsample_shapes_are_pytorchs_and_like_reads_the_size_at_run_time(tmp_path):
    torch = pytest.importorskip("torch")
    from compiler import build, torchbuild
    from compiler.codegen import codegen_file

    for i in range(2, len(UPSAMPLE) + 1):
        text = spec([3, 13, 18], UPSAMPLE[:i])
        result = lint_text(text, "up.yaml")
        assert not result.diagnostics, [d.message for d in result.diagnostics]
        out = build(yaml.safe_load(text))(torch.randn(1, 3, 13, 18))
        assert tuple(out.shape[1:]) == result.graph.node(result.graph.order[-1]).shape
    # `like: input` is an input of the layer: the graph reads it, and other sizes work
    assert "input" in result.graph.node(result.graph.order[-1]).inputs
    model = build(yaml.safe_load(text))
    module = load_module(codegen_file(result, "up.yaml"), tmp_path, "up")
    generated = getattr(module, torchbuild.class_name("ranks"))()
    generated.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 31, 20)
    with torch.no_grad():
        assert model(x).shape == (2, 4, 31, 20)
        assert torch.allclose(generated(x), model(x))


@pytest.mark.parametrize(
    "layer, code, words",
    [
        ({"upsample": {"mode": "bilinear"}}, "invalid-value", "exactly one of"),
        ({"upsample": {"scale": 2, "size": 4}}, "invalid-value", "`scale` and `size`"),
        ({"upsample": {"scale": 2, "align_corners": True}}, "invalid-value", "`nearest`"),
        ({"upsample": {"scale": 2, "mode": "trilinear"}}, "rank-mismatch", "CxDxHxW"),
        ({"upsample": {"scale": 0.01}}, "spatial-collapse", "scales"),
        ({"upsample": {"like": "nowhere"}}, "undefined-reference", "nowhere"),
        ({"upsample": {"from": ["input", "input"], "scale": 2}}, "wrong-inputs", "`like:`"),
    ],
)
def test_upsample_diagnostics(layer, code, words):
    result = lint_text(spec([3, 8, 8], [layer]), "bad.yaml")
    assert [d.code for d in result.diagnostics] == [code]
    d = result.diagnostics[0]
    assert words in d.message + (d.help or ""), d.message
    assert d.span is not None
