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
