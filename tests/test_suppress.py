"""Inline suppression, `# yarch: ignore[code]` (compiler/suppress.py): a warning meant by the
spec's author is dropped on its line only; errors are never dropped; a comment that names no
code, an unknown one or an error's is itself reported (`invalid-suppression`)."""

from __future__ import annotations

from pathlib import Path

from compiler import lint_file, lint_text

DROP = "name: t\ninput: [3, 224, 224]\nlayers:\n  - conv: {out: 8, kernel: 7, stride: 2}COMMENT\n"


def found(comment: str) -> list[tuple[str, str]]:
    result = lint_text(DROP.replace("COMMENT", comment))
    return [(d.code, d.message) for d in result.diagnostics]


def test_the_named_warning_is_dropped_on_its_line() -> None:
    assert [c for c, _ in found("")] == ["stride-remainder"]
    assert found("  # yarch: ignore[stride-remainder]") == []
    (unused,) = found("  # yarch:ignore[ unreachable-node , stride-remainder ]")
    assert unused[0] == "invalid-suppression" and "`unreachable-node` is not reported" in unused[1]
    # another line's comment does not reach it
    text = DROP.replace("COMMENT", "") + "  - relu  # yarch: ignore[stride-remainder]\n"
    codes = [d.code for d in lint_text(text).diagnostics]
    assert codes == ["stride-remainder", "invalid-suppression"]  # the relu's, unused


def test_a_comment_that_ignores_nothing_is_reported() -> None:
    (kept, bare) = found("  # yarch: ignore")
    assert kept[0] == "stride-remainder"
    assert bare == ("invalid-suppression", "`# yarch: ignore` names no code, so it ignores nothing")
    codes = found("  # yarch: ignore[stride-remainer]")
    assert codes[1] == ("invalid-suppression", "`stride-remainer` is not a warning yarch reports")


def test_errors_are_never_ignored() -> None:
    text = (
        "name: t\ninput: [3, 8, 8]\nlayers:\n"
        "  - conv: {out: 8, kernel: 3, expect: [8, 9, 9]}  # yarch: ignore[shape-mismatch]\n"
    )
    codes = sorted(d.code for d in lint_text(text).diagnostics)
    assert codes == ["invalid-suppression", "shape-mismatch"]


def test_a_comment_in_a_base_file_applies_to_its_variants(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(
        DROP.replace("COMMENT", "  # yarch: ignore[stride-remainder]"), encoding="utf-8"
    )
    (tmp_path / "variant.yaml").write_text("extends: base.yaml\nname: v\n", encoding="utf-8")
    assert lint_file(tmp_path / "variant.yaml").diagnostics == []


def test_an_unused_suppression_is_reported_in_the_spec_linted_only(tmp_path: Path) -> None:
    unused = "name: t\ninput: [3, 8, 8]\nlayers:\n  - relu  # yarch: ignore[stride-remainder]\n"
    ((code, message),) = [(d.code, d.message) for d in lint_text(unused).diagnostics]
    assert code == "invalid-suppression"
    assert message == "`stride-remainder` is not reported on this line, so ignoring it does nothing"
    # a base's comment may be for the base's own warnings, which a variant can remove
    (tmp_path / "base.yaml").write_text(
        DROP.replace("COMMENT", "  # yarch: ignore[stride-remainder]"), encoding="utf-8"
    )
    (tmp_path / "v.yaml").write_text(
        "extends: base.yaml\nname: v\ninput: [3, 225, 225]\n", encoding="utf-8"
    )
    assert lint_file(tmp_path / "v.yaml").diagnostics == []
    assert [d.code for d in lint_file(tmp_path / "base.yaml").diagnostics] == []
