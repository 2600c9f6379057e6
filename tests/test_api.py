"""The Python API reads well: a `Diagnostic` prints as one line and renders as `yarch lint`
prints it; a `Result`'s repr is short and it renders its diagnostics."""

from __future__ import annotations

from compiler import lint_text

TEXT = "name: t\ninput: [3, 8, 8]\nlayers:\n  - conv: {name: stem, out: 4, kernel: 1}\n" + (
    "  - conv: {out: 4, kernel: 1, from: stemm}\n"
)


def test_a_diagnostic_prints_and_renders() -> None:
    result = lint_text(TEXT, "net.yaml")
    (d,) = result.diagnostics
    assert str(d) == "net.yaml:5:37: error[undefined-reference] no layer named `stemm`"
    shown = d.render(TEXT).splitlines()
    assert shown[0] == "error[undefined-reference]: no layer named `stemm`"
    assert shown[3] == "5 |   - conv: {out: 4, kernel: 1, from: stemm}"
    assert shown[-1] == "help: did you mean `stem`?"
    assert "|" not in d.render()  # without the source, no source line


def test_a_result_has_a_short_repr_and_renders() -> None:
    result = lint_text(TEXT, "net.yaml")
    assert repr(result) == "Result(file='net.yaml', errors=1, warnings=0, layers=2)"
    assert result.render() == result.diagnostics[0].render(TEXT)


def test_help_lists_the_public_functions_not_the_lazy_loader() -> None:
    import pydoc

    import compiler

    text = pydoc.render_doc(compiler, renderer=pydoc.plaintext)
    functions = text[text.index("FUNCTIONS") : text.index("DATA")]
    for name in ("build(", "optimize(", "lint_file(", "lint_text(", "data_path("):
        assert name in functions
    assert "__getattr__" not in functions and "__dir__" not in functions
    assert {"build", "optimize", "SpecError", "Result"} <= set(dir(compiler))
    assert set(compiler.__all__) <= set(dir(compiler))


def test_a_built_model_shows_its_forward_and_takes_no_arguments() -> None:
    import inspect

    import pytest

    pytest.importorskip("torch")
    import torch

    import compiler

    model = compiler.build(
        {"input": [3, 8, 8], "layers": [{"conv": {"name": "c", "out": 4, "kernel": 3}}, "relu"]}
    )
    assert not inspect.signature(type(model)).parameters
    source = inspect.getsource(model.forward)
    assert source.startswith("def forward(self, x):") and "self.c(x)" in source
    assert "compiler.build" in type(model).__doc__
    # a failure inside the built forward shows the line it is at
    try:
        model(torch.zeros(1, 5, 8, 8))
    except RuntimeError as exc:
        import traceback

        frames = traceback.extract_tb(exc.__traceback__)
        assert any(f.line == "x = self.c(x)" for f in frames), [f.line for f in frames]
    else:
        raise AssertionError("5 channels into a 3-channel conv ran")
