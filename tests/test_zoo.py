"""The zoo: every spec in specs/zoo/ is torchvision's model of its name, exactly (issue 15).

For each spec, against torchvision's facts (`tests/references/torchvision_zoo/<name>`, copied
from ../shared/references; see tests/zoo.py):
it lints with no diagnostic at all; its parameters and MACs are torchvision's; its state_dict
has torchvision's keys and shapes, in order; with the deterministic weights of `zoo_weights.py`
its eval output is the one torchvision gave, within 1e-4 of the output's largest magnitude; the
generated code gives the built module's output; `compiler.optimize` keeps it within 1e-4 (or,
for a model that amplifies rounding past that, within three times what one float32 rounding of
every weight moves its output).

The output checks of the largest models (more than `FAST_MACS` multiply-accumulates: VGG, the
deeper ResNets and ResNeXts) run in the slow profile only: `make test-zoo` (`YARCH_ZOO=all`).
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import pytest

from compiler import lint_file
from compiler.summary import summarize

from . import zoo
from .conftest import load_module

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs" / "zoo").glob("*.yaml"))
FAST_MACS = 5_000_000_000  # a model's output checks run in CI up to this many MACs
ALL = os.environ.get("YARCH_ZOO") == "all"


def _id(path: Path) -> str:
    return path.stem


@cache
def _lint(path: Path):
    return lint_file(path)


def _heavy(path: Path) -> bool:
    return zoo.reference(path.stem)["macs"] > FAST_MACS


def _outputs_checked(path: Path) -> None:
    if _heavy(path) and not ALL:
        pytest.skip(f"{path.stem}: over {FAST_MACS:,} MACs, in `make test-zoo` only")


def test_the_zoo_has_its_specs_and_their_references():
    assert len(SPECS) >= 26
    for path in SPECS:
        assert (zoo.ZOO / f"{path.stem}.json").is_file(), (
            f"{path.name}: copy its facts from ../shared/references/torchvision_zoo/ into "
            "tests/references/torchvision_zoo/"
        )
    copied = {p.stem for p in zoo.ZOO.glob("*.json")}
    assert copied == {p.stem for p in SPECS}, "tests/references holds facts no spec uses"


@pytest.mark.skipif(not zoo.SHARED.is_dir(), reason="../shared/references is not beside the clone")
def test_the_copied_references_are_the_shared_ones():
    for copy in sorted(zoo.REFERENCES.rglob("*")):
        if copy.is_file():
            shared = zoo.SHARED / copy.relative_to(zoo.REFERENCES)
            assert copy.read_bytes() == shared.read_bytes(), f"{copy} differs from {shared}"


@pytest.mark.parametrize("path", SPECS, ids=_id)
def test_lints_clean_and_counts_torchvisions_params_and_macs(path):
    result = _lint(path)
    assert result.diagnostics == [], [d.message for d in result.diagnostics]
    summary = summarize(result.graph)
    ref = zoo.reference(path.stem)
    assert (summary.total_params, summary.total_macs) == (ref["params"], ref["macs"])
    assert list(result.graph.input_shape) == ref["input"]
    header = path.read_text().split("\n", 6)
    assert any("torchvision" in line for line in header), "the header cites torchvision"


@pytest.mark.parametrize("path", SPECS, ids=_id)
def test_state_dict_is_torchvisions_in_order(path):
    pytest.importorskip("torch")
    from compiler import build

    model = build(path)
    got = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert got == zoo.state_dict_shapes(path.stem)


def _compare(output, name: str) -> float:
    """The largest difference from torchvision's recorded output, over its largest magnitude."""
    ref = zoo.reference(name)
    values = zoo.sampled(output[0] if isinstance(output, tuple) else output, name)
    assert len(values) == len(ref["output"])
    return (
        max(abs(a - b) for a, b in zip(values, ref["output"], strict=True)) / ref["output_abs_max"]
    )


@pytest.mark.parametrize("path", SPECS, ids=_id)
def test_outputs_equal_torchvisions_built_generated_and_optimized(path, tmp_path):
    """One model, three ways, each against the output torchvision recorded."""
    torch = pytest.importorskip("torch")
    _outputs_checked(path)
    from compiler import build, optimize
    from compiler.codegen import codegen_file

    name, weights = path.stem, zoo.weights()
    ref = zoo.reference(name)
    x = weights.zoo_input(ref["input"])
    model = build(path)
    model.load_state_dict(weights.zoo_state_dict(model.state_dict()), strict=True)
    model.eval()
    with torch.no_grad():
        assert _compare(model(x), name) <= 1e-4, "compiler.build"
        source = codegen_file(_lint(path), f"specs/zoo/{path.name}")
        module = load_module(source, tmp_path, f"zoo_{name}")
        generated = getattr(module, _lint(path).graph.model_class)()
        generated.load_state_dict(model.state_dict(), strict=True)
        assert _compare(generated.eval()(x), name) <= 1e-4, "generated code"
        error = _compare(optimize(model)(x), name)
        # Folding batch norm into the convs rounds each weight once more. A few models amplify
        # that much: with the zoo's weights, RegNetY-3.2GF's output moves by 1.7e-4 of its
        # largest value when its weights move by one float32 rounding, so no folded network can
        # keep it within 1e-4. Past 1e-4, the bound is three times what the model's own
        # sensitivity to one rounding of every weight gives, measured here.
        bound = 1e-4 if error <= 1e-4 else max(1e-4, 3 * _rounding_sensitivity(model, x, name))
        assert error <= bound, f"compiler.optimize: {error:.3g} > {bound:.3g}"


@pytest.mark.parametrize("path", SPECS, ids=_id)
def test_torchscript_gives_torchvisions_output(path):
    """`torch.jit.script` of the built module (issue 17): every zoo op scripts, and the
    scripted model gives torchvision's output."""
    torch = pytest.importorskip("torch")
    _outputs_checked(path)
    import warnings

    from compiler import build

    name, weights = path.stem, zoo.weights()
    x = weights.zoo_input(zoo.reference(name)["input"])
    model = build(path)
    model.load_state_dict(weights.zoo_state_dict(model.state_dict()), strict=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation notice
        scripted = torch.jit.script(model.eval())
    with torch.no_grad():
        assert _compare(scripted(x), name) <= 1e-4


def _rounding_sensitivity(model, x, name: str) -> float:
    """How far the output moves when every weight moves by one float32 rounding (relative
    noise of 2^-24, two draws, the larger)."""
    import torch

    state = model.state_dict()
    moved = []
    for seed in (0, 1):
        generator = torch.Generator().manual_seed(seed)
        noisy = {
            k: v * (1 + 2.0**-24 * torch.randn(v.shape, generator=generator))
            if v.is_floating_point()
            else v
            for k, v in state.items()
        }
        model.load_state_dict(noisy)
        moved.append(_compare(model(x), name))
    model.load_state_dict(state)
    return max(moved)


def test_the_readmes_table_of_the_zoo_is_current():
    from compiler import readme

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.current(text, readme.ZOO_BEGIN, readme.ZOO_END)
    assert table == readme.render_zoo(ROOT / "specs" / "zoo"), "run `make generate`"
