"""Deployment (issue 17, item 3): TorchScript and torch.export, for built modules and for
generated code, on every spec of the library that builds (the zoo's are in tests/test_zoo.py).

`torch.jit.script` compiles the built forward from its source (kept where `inspect` finds it)
and the generated classes from their file; a model with training-only outputs returns a typed
named tuple whose training-only fields are `torch.Tensor | None`. `torch.export.save` writes a
program that returns that tuple, since `build` registers it with torch's pytree; `load` reads it
back where the same spec has been built.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import pytest

from compiler import lint_file
from compiler.codegen import codegen_file

from .conftest import SPECS, buildable_library, load_module

torch = pytest.importorskip("torch")

LIBRARY = buildable_library()


def _outputs(value) -> list:
    return list(value) if isinstance(value, tuple) else [value]


def _same(a, b) -> bool:
    pairs = zip(_outputs(a), _outputs(b), strict=True)
    return all(
        (x is None and y is None) or (x is not None and y is not None and torch.equal(x, y))
        for x, y in pairs
    )


def _input(path: Path):
    shape = lint_file(path).graph.input_shape
    return torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))


def test_the_library_is_all_here():
    names = {p.stem for p in LIBRARY}
    assert {"googlenet", "googlenet_torchvision", "resnet50", "googlenet_keras5x5"} <= names
    assert "mnist_inception" in names and "inception_keras" not in names  # a post with errors


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: p.stem)
def test_built_and_generated_models_script(path, tmp_path):
    from compiler import build

    x = _input(path)
    model = build(path).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation notice
        scripted = torch.jit.script(model)
        source = codegen_file(lint_file(path), f"specs/{path.name}")
        module = load_module(source, tmp_path, f"deploy_{path.stem}")
        generated = getattr(module, lint_file(path).graph.model_class)()
        generated.load_state_dict(model.state_dict())
        generated_scripted = torch.jit.script(generated.eval())
    with torch.no_grad():
        expected = model(x)
        assert _same(scripted(x), expected)
        assert _same(generated_scripted(x), expected)
    # in training mode the training-only outputs are computed, not None
    scripted.train()
    out = _outputs(scripted(x))
    assert all(o is not None for o in out)


@pytest.mark.parametrize("name", ["googlenet", "resnet18"])
def test_an_exported_program_saves_and_loads(name, tmp_path):
    from compiler import build

    path = SPECS / f"{name}.yaml"
    model = build(path).eval()
    x = _input(path)
    program = torch.export.export(model, (x,))
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    buffer.seek(0)
    loaded = torch.export.load(buffer).module()
    with torch.no_grad():
        expected, got = model(x), loaded(x)
    assert type(got) is type(expected) and _same(got, expected)
    if name == "googlenet":  # the named tuple, its training-only fields None in eval mode
        assert got._fields == ("logits", "aux1", "aux2") and got.aux1 is None
