"""`compiler.build`: names, state_dict, shapes equal to the static ones, outputs, and the
torch tools a module must work with (deepcopy, torch.export, torch.compile)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from compiler import lint_file
from compiler.summary import summarize

from .conftest import SPECS

torch = pytest.importorskip("torch")
from compiler import torchbuild  # noqa: E402  (imports torch)

FIXTURES = Path(__file__).parent / "fixtures"
CLEAN = sorted(
    p for p in [*SPECS.glob("*.yaml"), *(SPECS / "posts").glob("*.yaml")] if not lint_file(p).errors
)


@pytest.mark.parametrize("path", CLEAN, ids=lambda p: p.name)
def test_static_summary_equals_the_built_module(path):
    """Params equal sum(numel); every node's static shape equals the one a forward pass sees."""
    graph = lint_file(path).graph
    with torch.device("meta"):  # shapes without compute, so the VGGs stay cheap
        model = torchbuild.build(path)
    assert sum(p.numel() for p in model.parameters()) == summarize(graph).total_params
    seen: dict[str, tuple[int, ...]] = {}
    modules = dict(model.named_modules())
    for node in graph.nodes()[1:]:
        if node.id in modules:
            modules[node.id].register_forward_hook(
                lambda _m, _i, out, key=node.id: seen.__setitem__(key, tuple(out.shape[1:]))
            )
    model.train()  # training-only heads run too
    with torch.no_grad():
        model(torch.empty(2, *graph.input_shape, device="meta"))
    checked = 0
    for node in graph.nodes()[1:]:
        if node.id in seen:
            assert seen[node.id] == node.shape, node.id
            checked += 1
    assert checked >= len([n for n in graph.nodes() if n.op.torch_module is not None]) // 2


def test_torchvision_state_dict_keys_and_shapes_in_order():
    model = torchbuild.build(SPECS / "googlenet_torchvision.yaml")
    rows = [
        line.split("\t")
        for line in (FIXTURES / "torchvision_googlenet_state_dict.tsv").read_text().splitlines()
    ]
    expected = [(k, [int(d) for d in s.strip("[]").split(",") if d.strip()]) for k, s in rows]
    got = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    assert got == expected
    # a state_dict saved from it loads back strictly, into a fresh build
    other = torchbuild.build(SPECS / "googlenet_torchvision.yaml")
    other.load_state_dict(model.state_dict(), strict=True)
    assert sum(p.numel() for p in model.parameters()) == 13_004_888


def test_submodules_are_named_as_the_spec():
    model = torchbuild.build(SPECS / "googlenet.yaml")
    assert isinstance(model.inception4a.branch2, torch.nn.Sequential)
    assert isinstance(model.inception4a.branch2[2], torch.nn.Conv2d)
    assert model.inception4a.branch2[2].out_channels == 208
    assert type(model.inception4a).__name__ == "Inception"
    assert type(model.aux1).__name__ == "AuxHead"
    assert type(model.aux1) is type(model.aux2)  # one class per block type
    assert model.aux1.fc2.out_features == 1000


def test_training_only_heads_and_outputs():
    model = torchbuild.build(SPECS / "googlenet.yaml", num_classes=10)
    x = torch.randn(2, 3, 224, 224)
    model.eval()
    out = model(x)
    assert out._fields == ("logits", "aux1", "aux2")
    assert out.logits.shape == (2, 10) and out.aux1 is None and out.aux2 is None
    model.train()
    out = model(x)
    assert out.aux1.shape == (2, 10) and out.aux2.shape == (2, 10)


def test_deepcopy_and_export_and_compile():
    model = torchbuild.build(SPECS / "posts" / "mnist_inception.yaml").eval()
    x = torch.randn(4, 1, 28, 28)
    twin = copy.deepcopy(model)
    assert torch.equal(twin(x), model(x))
    exported = torch.export.export(model, (x,))
    assert torch.equal(exported.module()(x), model(x))
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    assert torch.allclose(compiled(x), model(x))


def test_export_of_a_model_with_training_only_heads():
    model = torchbuild.build(SPECS / "googlenet_torchvision.yaml").eval()
    x = torch.randn(1, 3, 224, 224)
    exported = torch.export.export(model, (x,))
    assert torch.equal(exported.module()(x).logits, model(x).logits)


def test_forward_is_straight_line_code():
    graph = lint_file(SPECS / "posts" / "mnist_residual.yaml").graph
    root = torchbuild.lower(graph)
    source = torchbuild.forward_source(root.child("rblock1"))
    # values read once, by the next layer, flow on in `x` or `out` and are freed at once
    assert source.splitlines() == [
        "def forward(self, x):",
        "    out = self.conv1(x)",
        "    out = self.relu_1(out)",
        "    conv2 = self.conv2(out)",
        "    x = x + conv2",
        "    x = self.relu_2(x)",
        "    return x",
    ]


def test_same_padding_with_stride_pads_like_keras():
    spec = {
        "input": [3, 9, 9],
        "layers": [
            {"conv": {"out": 4, "kernel": 3, "stride": 2, "padding": "same"}},
            {"maxpool": {"kernel": 3, "stride": 2, "padding": "same"}},
        ],
    }
    model = torchbuild.build(spec)
    assert model(torch.randn(1, 3, 9, 9)).shape == (1, 4, 3, 3)


def test_a_spec_with_errors_raises_with_the_diagnostics():
    with pytest.raises(torchbuild.SpecError) as info:
        torchbuild.build(SPECS / "posts" / "googlenet_pytorch.yaml")
    assert "error[invalid-value]: `stride` must be >= 1, got 0" in str(info.value)


def test_specs_with_the_same_code_keep_their_own_output_names():
    torch = pytest.importorskip("torch")
    import compiler

    layers = [
        {"linear": {"name": "p", "out": 2}},
        {"linear": {"name": "q", "out": 2, "from": "input"}},
    ]
    first = compiler.build({"input": [4], "layers": layers, "outputs": {"a": "p", "b": "q"}})
    second = compiler.build({"input": [4], "layers": layers, "outputs": {"c": "p", "d": "q"}})
    x = torch.zeros(1, 4)
    assert first(x)._fields == ("a", "b") and second(x)._fields == ("c", "d")


@pytest.mark.parametrize("groups", [1, 2, 3, 4, 6, 12])
def test_channel_shuffle_is_torchvisions_view_transpose_view(groups):
    """torchvision's `channel_shuffle` (shufflenetv2.py), transcribed, and the built module
    give the same tensor."""
    from compiler import build

    model = build({"input": [12, 3, 2], "layers": [{"channel_shuffle": groups}]})
    x = torch.randn(2, 12, 3, 2)
    n, c, h, w = x.shape
    reference = x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous().view(n, c, h, w)
    assert torch.equal(model(x), reference)


# a training-only head on a layer the main path reads too (computed in eval anyway), beside
# one computed only in training: the first is None in eval by a condition, not by `if`
TRAIN_ONLY = """
name: heads
input: [3, 8, 8]
layers:
  - conv: {out: 4, kernel: 3, padding: 1}
  - relu
  - conv: {out: 2, kernel: 1}
  - conv: {name: side, from: relu_1, out: 3, kernel: 1}
outputs:
  out: conv_2
  tap: {from: relu_1, train_only: true}
  side: {from: side, train_only: true}
"""


def test_a_training_only_output_the_eval_path_computes_anyway(tmp_path):
    import yaml

    from compiler import lint_text, torchbuild
    from compiler.codegen import codegen_file

    from .conftest import load_module

    model = torchbuild.build(yaml.safe_load(TRAIN_ONLY))
    code = codegen_file(lint_text(TRAIN_ONLY), "heads.yaml")
    generated = load_module(code, tmp_path, "heads").Heads()
    generated.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 8, 8)
    for module in (model, generated):
        out, tap, side = module.eval()(x)
        assert (out.shape, tap, side) == ((2, 2, 8, 8), None, None)
        out, tap, side = module.train()(x)
        assert (tap.shape, side.shape) == ((2, 4, 8, 8), (2, 3, 8, 8))
        assert torch.equal(tap, torch.relu(module.conv_1(x)))
