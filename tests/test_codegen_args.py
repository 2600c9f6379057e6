"""Generated code is a model class that takes the spec's parameters (issue 17, item 2).

For every spec of the library, the posts and the zoo, the generated model class called with
arguments other than the spec's defaults (`num_classes=10`, one block fewer in each stage,
another growth rate or group width) builds what `compiler.build` builds with those
parameters: the same state_dict keys, in order, with the same shapes. For the models small
enough to run here, their outputs are equal too, with the built model's weights loaded into
the generated one. The zoo's families are checked one member each in CI and every member in
the slow profile (`make test-zoo`, `YARCH_ZOO=all`); the shapes are compared on the meta
device, where no weight is allocated.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from compiler import lint_file
from compiler.codegen import codegen_file

from .conftest import SPECS, load_module

torch = pytest.importorskip("torch")
from compiler.torchbuild import build_linted  # noqa: E402

ALL = os.environ.get("YARCH_ZOO") == "all"
# one member of each zoo family in CI: the rest of each family is written with `extends:`
ZOO_IN_CI = {
    "alexnet", "convnext_tiny", "deeplabv3_mobilenet_v3_large", "densenet121",
    "efficientnet_b0", "efficientnet_v2_s", "fcn_resnet50", "googlenet", "inception_v3",
    "lraspp_mobilenet_v3_large", "mnasnet0_5", "mobilenet_v2", "mobilenet_v3_small",
    "r3d_18", "regnet_x_400mf", "regnet_y_400mf", "resnet50", "resnext50_32x4d", "s3d",
    "shufflenet_v2_x1_0", "squeezenet1_1", "vgg11_bn",
}  # fmt: skip
RUN_OUTPUTS_UP_TO = 30_000_000  # parameters: larger models have their shapes compared only


def _specs() -> list[Path]:
    library = sorted(SPECS.glob("*.yaml")) + sorted((SPECS / "posts").glob("*.yaml"))
    zoo = sorted((SPECS / "zoo").glob("*.yaml"))
    return library + [p for p in zoo if ALL or p.stem in ZOO_IN_CI]


def _other_arguments(params: dict[str, Any]) -> list[dict[str, Any]]:
    """Values other than the defaults that still make a valid network."""
    out: list[dict[str, Any]] = []
    if "num_classes" in params:
        out.append({"num_classes": 10 if params["num_classes"] != 10 else 7})
    for name in ("layers", "block_config", "depths", "stages_repeats"):
        value = params.get(name)
        if isinstance(value, list) and all(type(v) is int for v in value):
            out.append({name: [max(1, v - 1) for v in value]})
    for name, value in (("growth_rate", 16), ("expand_ratio", 4), ("width_per_group", 32)):
        if name in params:
            out.append({name: value})
    return out


CASES = [
    pytest.param(path, arguments, id=f"{path.parent.name}/{path.stem}-{next(iter(arguments))}")
    for path in _specs()
    for arguments in _other_arguments(lint_file(path).graph.params)
]


def test_every_spec_with_parameters_is_checked():
    checked = {path for path, _ in (case.values for case in CASES)}
    with_params = [p for p in _specs() if lint_file(p).graph.params]
    assert set(with_params) == checked
    assert len(CASES) >= 20


@pytest.mark.parametrize(("path", "arguments"), CASES)
def test_generated_class_with_other_arguments_builds_what_build_builds(
    path: Path, arguments: dict[str, Any], tmp_path: Path
):
    default = lint_file(path)
    module = load_module(codegen_file(default, path.name), tmp_path, path.stem)
    model_class = getattr(module, default.graph.model_class)
    other = lint_file(path, arguments)
    assert not other.errors, [d.message for d in other.errors]
    with torch.device("meta"):
        built = build_linted(other, max_params=10**10)
        generated = model_class(**arguments)
    expected = [(k, tuple(v.shape)) for k, v in built.state_dict().items()]
    assert [(k, tuple(v.shape)) for k, v in generated.state_dict().items()] == expected
    # and not only because the arguments change nothing
    with torch.device("meta"):
        defaults = [(k, tuple(v.shape)) for k, v in model_class().state_dict().items()]
    assert defaults != expected
    if sum(v.numel() for v in built.parameters()) > RUN_OUTPUTS_UP_TO:
        return
    torch.manual_seed(0)
    built = build_linted(other)
    generated = model_class(**arguments)
    generated.load_state_dict(built.state_dict())
    built.eval()
    generated.eval()
    x = torch.randn(1, *other.graph.input_shape)
    with torch.no_grad():
        want, got = built(x), generated(x)
    if isinstance(want, tuple):  # a model of several outputs: None for training-only ones
        assert [w is None for w in want] == [g is None for g in got]
        assert all(torch.equal(g, w) for g, w in zip(got, want, strict=True) if w is not None)
    else:
        assert torch.equal(got, want)
