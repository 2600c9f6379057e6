"""The loader's spans and refusals, and the four renderings of diagnostics."""

from __future__ import annotations

import json

import pytest

from compiler import lint_text
from compiler.diagnostics import (
    SourceCache,
    Span,
    error,
    merge_duplicates,
    render_github,
    render_json,
    render_text,
    warning,
)
from compiler.loader import LoadError, load_text


def test_spans_are_one_based_for_keys_and_values():
    doc = load_text("input: [3, 8, 8]\nlayers:\n  - conv: {out: 8, kernel: 3}\n", "s.yaml")
    assert doc.spans[("layers", 0, "conv", "kernel")] == Span("s.yaml", 3, 28, 3, 29)
    assert doc.key_spans[("layers", 0, "conv")] == Span("s.yaml", 3, 5, 3, 9)
    assert doc.spans[("input", 2)] == Span("s.yaml", 1, 15, 1, 16)


def test_nested_duplicate_key_is_an_error():
    with pytest.raises(LoadError) as info:
        load_text("input: [3, 8, 8]\nlayers:\n  - conv: {out: 8, out: 9, kernel: 3}\n", "d.yaml")
    d = info.value.diagnostic
    assert (d.code, d.span.line, d.span.column) == ("duplicate-key", 3, 20)
    assert d.notes == ("first written at line 3, column 12",)


def test_byte_order_mark_is_accepted():
    assert lint_text("\ufeffinput: [3, 8, 8]\nlayers: [relu]\n").diagnostics == []


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("!!binary aGVsbG8=\n", "not-a-mapping"),
        ("input: !!set {a, b}\nlayers: [relu]\n", "yaml-tag"),
        ("input: !custom [1]\nlayers: [relu]\n", "yaml-tag"),
        ("a: &x [*x]\n", "yaml-syntax"),
    ],
)
def test_refusals(text, code):
    assert [d.code for d in lint_text(text).diagnostics][:1] == [code]


def test_text_rendering_has_source_caret_notes_and_help():
    sources = SourceCache()
    sources.add("f.yaml", "input: [3, 8, 8]\nlayers:\n  - conv: {in: 832, out: 8, kernel: 1}\n")
    d = error(
        "channel-mismatch",
        "`conv_1` declares 832 input channels but receives 3",
        Span("f.yaml", 3, 16, 3, 19),
        label="declared here",
        notes=("`input` outputs 3 channels",),
        help="set `in: 3`",
    )
    assert render_text([d], sources) == "\n".join(
        [
            "error[channel-mismatch]: `conv_1` declares 832 input channels but receives 3",
            " --> f.yaml:3:16",
            "  |",
            "3 |   - conv: {in: 832, out: 8, kernel: 1}",
            "  |                ^^^ declared here",
            "  |",
            "  = note: `input` outputs 3 channels",
            "help: set `in: 3`",
        ]
    )


def test_text_rendering_is_capped():
    ds = [warning("stride-remainder", f"m{i}", Span("f", i + 1, 1, i + 1, 2)) for i in range(5)]
    assert render_text(ds, SourceCache(), max_shown=2).endswith("... and 3 more")


def test_json_and_github():
    d = error("invalid-value", "bad: 50%, here", Span("dir/f.yaml", 2, 3, 2, 5), help="fix\nit")
    payload = json.loads(render_json([d, warning("unused-block", "meh")], files=2))
    assert payload["files"] == 2 and payload["errors"] == 1 and payload["warnings"] == 1
    assert payload["diagnostics"][0]["end_column"] == 5
    assert payload["diagnostics"][1]["line"] is None
    assert render_github([d]) == (
        "::error file=dir/f.yaml,line=2,col=3,endLine=2,endColumn=5,title=invalid-value::"
        "bad: 50%25, here%0Ahelp: fix%0Ait"
    )


def test_merge_duplicates_names_the_others():
    span = Span("f", 1, 1, 1, 2)
    merged = merge_duplicates(
        [
            error("invalid-value", "`a.x` is bad", span),
            error("invalid-value", "`b.x` is bad", span),
            error("invalid-value", "`a.x` is bad", span),
        ]
    )
    assert len(merged) == 1
    assert merged[0].notes == ("the same place also affects `b.x`",)
