"""`init:`, the weight initialisation a spec states (`compiler/init.py`)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from compiler import lint_file
from compiler.codegen import codegen_file
from compiler.init import TORCHVISION, init_lines
from compiler.pipeline import lint_text

from .conftest import SPECS, load_module

torch = pytest.importorskip("torch")
from compiler.torchbuild import build, build_linted  # noqa: E402

SMALL = """\
name: small
class: {cls}
init: {init}
input: [3, 16, 16]
layers:
  - conv: {{out: 8, kernel: 3, padding: 1}}
  - bn
  - relu
  - adaptive_avgpool: 1
  - flatten
  - linear: {{out: 4}}
"""


def test_torchvision_resnet_scheme_is_what_build_draws():
    torch.manual_seed(0)
    model = build(SPECS / "resnet18.yaml")
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0), name
        if isinstance(m, torch.nn.Conv2d) and m.weight.numel() > 10_000:
            fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1]
            want = math.sqrt(2.0 / fan_out)  # He et al.: gain sqrt(2) for ReLU, fan-out mode
            assert abs(m.weight.std().item() / want - 1) < 0.1, name


def test_none_keeps_pytorchs_defaults():
    result = lint_text(SMALL.format(cls="Small", init="none"))
    torch.manual_seed(0)
    model = build_linted(result)
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert torch.all(bn.weight == 1)
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    bound = 1 / math.sqrt(3 * 3 * 3)  # PyTorch's kaiming_uniform_(a=sqrt(5)) bound
    assert conv.weight.abs().max().item() <= bound
    assert "nn.init" not in codegen_file(result, "small.yaml")


@pytest.mark.parametrize(
    "path",
    [
        SPECS / "resnet18.yaml",
        SPECS / "googlenet_torchvision.yaml",
        SPECS / "zoo" / "densenet121.yaml",
        SPECS / "zoo" / "mobilenet_v2.yaml",
        SPECS / "zoo" / "mnasnet0_5.yaml",
        SPECS / "zoo" / "convnext_tiny.yaml",
    ],
    ids=lambda p: p.stem,
)
def test_generated_code_draws_the_weights_build_draws(path: Path, tmp_path: Path):
    result = lint_file(path)
    assert result.graph.init == "torchvision"
    source = codegen_file(result, path.name)
    assert "for m in self.modules():" in source
    module = load_module(source, tmp_path, path.stem)
    torch.manual_seed(0)
    built = build_linted(result)
    torch.manual_seed(0)
    generated = getattr(module, result.graph.model_class)()
    want = built.state_dict()
    got = generated.state_dict()
    assert list(got) == list(want)
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_kaiming_works_for_any_class_and_torchvision_needs_a_known_one():
    assert not lint_text(SMALL.format(cls="Small", init="kaiming")).errors
    result = lint_text(SMALL.format(cls="Small", init="torchvision"))
    (d,) = result.diagnostics
    assert result.errors == 1
    assert d.code == "invalid-value" and "`Small`" in d.message and "`ResNet`" in d.message
    assert d.span is not None and d.span.line == 3
    assert "init: kaiming" in d.help
    result = lint_text(SMALL.format(cls="Small", init="xavier"))
    assert result.errors and "init" in result.diagnostics[0].message


@pytest.mark.parametrize("cls", sorted(TORCHVISION))
def test_every_known_scheme_runs(cls: str):
    result = lint_text(SMALL.format(cls=cls, init="torchvision"))
    assert not result.errors
    lines = init_lines("torchvision", cls, {"Conv2d", "BatchNorm2d", "Linear", "ReLU"})
    assert lines[0] == "for m in self.modules():"
    torch.manual_seed(0)
    model = build_linted(result)
    linear = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
    if any("nn.Linear" in line for line in lines):  # the scheme sets the linear's bias
        assert any("m.bias" in line for line in lines)
    assert torch.isfinite(linear.weight).all()
