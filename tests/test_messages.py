"""Messages that say what is wrong (issue 16): the quotes around a number, a `${` left open,
the grammar of what a stride drops."""

from __future__ import annotations

import pytest

from compiler import lint_text


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (
            '{conv: {in: "8", out: 4, kernel: 1}}',
            '`in` must be a whole number, got the text "8": write the number without quotes',
        ),
        ('{conv: {out: "${base * 2", kernel: 1}}', "`${base * 2` has no closing `}`"),
        (
            "{conv: {out: 4, kernel: 2, stride: 2}}",
            "stride 2 of `conv_1` does not tile its 8x7 input: the last column is never read",
        ),
    ],
)
def test_the_message_says_what_is_wrong(layer: str, message: str) -> None:
    text = f"name: t\ninput: [8, 8, 7]\nparams: {{base: 2}}\nlayers:\n  - {layer}\n"
    assert [d.message for d in lint_text(text).diagnostics] == [message]


def test_an_unknown_override_is_named_as_it_was_given() -> None:
    from click.testing import CliRunner

    from compiler.cli import cli
    from compiler.pipeline import lint_file

    from .conftest import SPECS

    googlenet = SPECS / "googlenet.yaml"
    (d,) = lint_file(googlenet, {"num_clases": 5}).diagnostics  # compiler.build's keywords
    assert d.message == "`num_clases=...`: the spec has no parameter `num_clases`"
    assert d.help == "did you mean `num_classes`?"
    out = CliRunner().invoke(cli, ["lint", str(googlenet), "--set", "num_clases=5"]).output
    assert "`--set num_clases=...`: the spec has no parameter `num_clases`" in out


def test_a_long_chain_of_extends_is_not_called_a_cycle(tmp_path) -> None:
    from compiler.pipeline import lint_file
    from compiler.variants import MAX_CHAIN

    (tmp_path / "s0.yaml").write_text(
        "name: s0\ninput: [3, 8, 8]\nlayers:\n  - relu\n", encoding="utf-8"
    )
    for i in range(1, MAX_CHAIN + 3):
        (tmp_path / f"s{i}.yaml").write_text(f"extends: s{i - 1}.yaml\n", encoding="utf-8")
    assert lint_file(tmp_path / f"s{MAX_CHAIN}.yaml").diagnostics == []
    (d,) = lint_file(tmp_path / f"s{MAX_CHAIN + 2}.yaml").diagnostics
    assert d.code == "extends-cycle" and "cycle" not in d.message
    assert f"a chain of more than {MAX_CHAIN} specs" in d.message


def test_flatten_mismatch_names_the_op_before_the_linear() -> None:
    text = (
        "name: t\ninput: [3, 8, 8]\nlayers:\n  - reshape: [N, -1]\n  - linear: {out: 10, in: 100}\n"
    )
    (d,) = lint_text(text).diagnostics
    assert d.message == "`linear_1` declares 100 input features but the reshape before it gives 192"


@pytest.mark.parametrize(
    ("text", "message", "help_start"),
    [
        ("layers:\n\t- relu\n", "a tab in the indentation", "replace the tab with spaces"),
        (
            "layers:\n  - conv: {out: 4, kernel: 1}\n   - relu\n",
            "invalid YAML: did not find expected '-' indicator (this line is indented unlike",
            "items of one list start in the same column",
        ),
        ("layers\n  - relu\n", "invalid YAML: a key without its `:`", "write `key: value`"),
        (
            "input: [3, 8, 8\nlayers:\n  - relu\n",
            "invalid YAML: a `[` opened at line 2, column 8 is not closed",
            "close it with `]`",
        ),
    ],
)
def test_a_yaml_syntax_error_says_what_was_likely_meant(
    text: str, message: str, help_start: str
) -> None:
    (d,) = lint_text("name: t\n" + text).diagnostics
    assert d.code == "yaml-syntax" and d.message.startswith(message), d.message
    assert d.help is not None and d.help.startswith(help_start)


@pytest.mark.parametrize(
    ("line", "word"),
    [
        ("  - conv: {out: 4,\tkernel: 1, from: stemm}", "stemm"),  # a tab before the span
        ("  - conv: {out: 4, kernel: 1, from: stemm}  # 卷积层", "stemm"),  # wide after
        ('  - conv: {out: 4, kernel: 1, from: "卷积"}', '"卷积"'),  # wide in the span
    ],
)
def test_carets_are_placed_by_display_width(line: str, word: str) -> None:
    import unicodedata

    text = f"name: t\ninput: [3, 8, 8]\nlayers:\n{line}\n"
    (d,) = lint_text(text, "t.yaml").diagnostics
    shown = d.render(text).splitlines()
    source, carets = shown[3].split(" | ", 1)[1], shown[4].split(" | ", 1)[1]

    def columns(s: str) -> int:
        return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)

    assert "\t" not in source  # shown as spaces, so the terminal does not move it
    start = columns(source[: source.index(word)])
    assert carets == " " * start + "^" * columns(word)


@pytest.mark.parametrize(
    ("text", "codes"),
    [
        # a misspelt top-level key no longer hides a duplicate name
        (
            "input: [3, 8, 8]\noutput: {x: a}\nlayers:\n"
            "  - conv: {name: a, out: 4, kernel: 1}\n  - conv: {name: a, out: 4, kernel: 1}\n",
            ["unknown-field", "duplicate-name"],
        ),
        # `layer:` for `layers:` is one mistake, not also a missing `layers`
        ("input: [3, 8, 8]\nlayer:\n  - relu\n", ["unknown-field"]),
        # a pool's padding error no longer hides the conv's groups after it
        (
            "input: [4, 8, 8]\nlayers:\n  - maxpool: {kernel: 2, padding: 2}\n"
            "  - conv: {out: 6, kernel: 1, groups: 4}\n",
            ["pool-padding", "invalid-groups"],
        ),
    ],
)
def test_one_mistake_does_not_hide_another(text: str, codes: list[str]) -> None:
    assert [d.code for d in lint_text("name: t\n" + text).diagnostics] == codes


def test_a_bad_override_is_named_where_its_value_is_used() -> None:
    from click.testing import CliRunner

    from compiler.cli import cli
    from compiler.pipeline import lint_file

    from .conftest import SPECS

    googlenet = SPECS / "googlenet.yaml"
    diags = lint_file(googlenet, {"num_classes": "abc"}).diagnostics
    assert {d.code for d in diags} == {"invalid-value"}  # AuxHead is not also "unused"
    (out,) = [d for d in diags if d.message.startswith("`out`")]
    assert "`num_classes` is `abc`, given as `num_classes=...`" in out.notes
    out = CliRunner().invoke(cli, ["lint", str(googlenet), "--set", "num_classes=abc"]).output
    assert "= note: `num_classes` is `abc`, given as `--set num_classes=...`" in out


CONCAT_BY_SIZE = """\
input: [3, 225, 225]
layers:
  - conv: {name: a, out: 8, kernel: 3, stride: 2, padding: 1}
  - maxpool: {name: b, from: input, kernel: 2, stride: 2}
  - concat: [a, b]
"""


def test_a_concat_that_disagrees_for_this_input_size_says_which_sizes_agree() -> None:
    (d,) = [d for d in lint_text(CONCAT_BY_SIZE).diagnostics if d.code == "concat-mismatch"]
    assert d.help.startswith(
        "the inputs agree for an input of 3x224x224 or 3x226x226 (the spec's input is 3x225x225)"
    )
    # and those sizes do agree
    for size in (224, 226):
        fixed = CONCAT_BY_SIZE.replace("225, 225", f"{size}, {size}")
        assert not lint_text(fixed).errors


def test_a_concat_that_disagrees_for_every_size_keeps_its_advice() -> None:
    text = CONCAT_BY_SIZE.replace("kernel: 2, stride: 2", "kernel: 3, stride: 1")
    (d,) = [d for d in lint_text(text).diagnostics if d.code == "concat-mismatch"]
    assert "agree for an input" not in d.help and "padding and stride of each branch" in d.help


def test_trying_nearby_sizes_stays_within_its_budget(monkeypatch) -> None:
    from compiler import shapes

    relus = "".join(f"  - relu: {{name: r{i}}}\n" for i in range(4_000))
    text = CONCAT_BY_SIZE.replace("kernel: 2, stride: 2", "kernel: 3, stride: 1") + relus
    calls = []
    real = shapes.propagate
    monkeypatch.setattr(shapes, "propagate", lambda run: calls.append(1) or real(run))
    result = lint_text(text)
    assert "concat-mismatch" in [d.code for d in result.diagnostics]
    nodes = len(result.graph.order)
    assert 1 < len(calls) <= 1 + shapes.NEARBY_BUDGET // nodes  # the lint's own run, the tries
