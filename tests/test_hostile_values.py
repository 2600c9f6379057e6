"""Hostile values and expressions: each is a positioned diagnostic, found quickly and in bounded
memory, never a hang, a MemoryError or a Python exception (issue 13, parts 3 and 4).

Before these bounds, `${round(5, -100000000)}` never ended, `${'a'*900000000}` took 3.55 GB,
a 1,000-term sum or 1,000 `if: false` layers in a row raised RecursionError, and `int(1e999)`,
`width: .inf` or a 400-digit `out:` raised OverflowError.
"""

from __future__ import annotations

import subprocess
import sys
import time
from itertools import pairwise

import pytest

from compiler import lint_text
from compiler.expr import MAX_DEPTH, MAX_ITEMS, MAX_SOURCE, MAX_TEXT, fmt_number
from compiler.sizes import fmt_bytes

from .conftest import ROOT, measured

DIGITS_400 = "1" * 400
PARAMS = f"params:\n  xs: [1, 2, 3]\n  txt: {'x' * 3_000}\n  big: {DIGITS_400}\n"


def with_expression(expression: str) -> str:
    """A spec whose only problem is the expression, on line 7 (after the four lines of PARAMS)."""
    quoted = expression.replace("\\", "\\\\").replace('"', '\\"')
    return f'input: [3, 8, 8]\n{PARAMS}layers:\n  - conv: {{out: "${{{quoted}}}", kernel: 1}}\n'


# expression -> what the message says
EXPRESSIONS = {
    # evaluation that would never end or would fill memory
    "round(5, -100000000)": "`round` takes at most 30 digits, got -100000000",
    "'a' * 900000000": "would build a text of 900,000,000 characters; at most 4,096",
    "900000000 * 'a'": "would build a text of 900,000,000 characters",
    "(xs * 900000000)[0]": "would build a list of 2,700,000,000 items; at most 10,000",
    "'%900000000d' % 5": "formats text with `%`, which a spec expression does not do",
    "'%s' % xs": "formats text with `%`",
    "txt + txt": "would build a text of 6,000 characters",
    "(xs * 3000 + xs * 3000)[0]": "would build a list of 18,000 items",
    "2 ** 64": "evaluates to a number too large for a spec",
    "(10 ** 15) ** 64": "evaluates to a number too large for a spec",
    "10 ** 15 * 10": "evaluates to a number too large for a spec (1e+16)",
    # recursion: the expression's length and depth are bounded before evaluating
    "+".join(["1"] * 1_000): "is 1,999 characters long; an expression may have at most 1,000",
    "-" * 5_000 + "1": "is 5,001 characters long",
    "(" * 5_000 + "1" + ")" * 5_000: "is 10,001 characters long",
    "-" * 500 + "1": f"nests deeper than {MAX_DEPTH} levels",
    "not " * 200 + "1": "nests deeper than 100 levels",
    "(" * 300 + "1" + ")" * 300: "nests deeper than 100 levels",  # the parser's own limit is 200
    "xs[" * 120 + "0" + "]" * 120: "nests deeper than 100 levels",
    # numeric edges: 1e999 is read as inf
    "int(1e999)": "uses a number that is not finite (inf)",
    "ceil(1e999)": "uses a number that is not finite (inf)",
    "floor(-1e999)": "uses a number that is not finite (inf)",  # 1e999 before the minus
    "round(1e999)": "uses a number that is not finite (inf)",
    "int(1e999 - 1e999)": "uses a number that is not finite",
    "1 / 1e-320": "evaluates to a number that is not finite (inf)",
    DIGITS_400: "uses a number too large for a spec (a 400-digit number)",
    "big + 1": "uses a number too large for a spec (a 400-digit number)",
    "int('9' * 4000)": "evaluates to a number too large for a spec (a 4,000-digit number)",
}


@pytest.mark.parametrize("expression", list(EXPRESSIONS), ids=lambda e: e[:40])
def test_hostile_expression_is_a_positioned_diagnostic(expression):
    result, elapsed, peak = measured(lambda: lint_text(with_expression(expression), "x.yaml"))
    assert [(d.code, d.span.line) for d in result.diagnostics] == [("invalid-expression", 7)]
    message = result.diagnostics[0].message
    assert EXPRESSIONS[expression] in message, message
    assert len(message) < 200 and message.isprintable()  # the expression is cut and escaped
    assert elapsed < 10 and peak < 64 * 2**20


def test_values_at_the_limits_are_fine():
    spec = (
        f"input: [3, 8, 8]\n{PARAMS}layers:\n"
        f'  - conv: {{out: "${{(xs * {MAX_ITEMS // 3})[-1]}}", kernel: 1}}\n'
        f"  - conv: {{out: \"${{8 if 'a' * {MAX_TEXT} else 0}}\", kernel: 1}}\n"
        '  - conv: {out: "${10 ** 15 // 10 ** 14 + int(round(2.5, 30)) * 0}", kernel: 1}\n'
    )
    result = lint_text(spec, "x.yaml")
    assert result.diagnostics == []
    assert [n.args.out for n in result.graph.nodes() if n.op.name == "conv"] == [3, 8, 10]


def test_an_expression_as_long_as_allowed_is_evaluated():
    deep = "1" + "+1" * ((MAX_SOURCE - 1) // 2)  # 999 characters, 500 terms, 499 deep
    assert len(deep) <= MAX_SOURCE
    (d,) = lint_text(with_expression(deep), "x.yaml").diagnostics
    assert "nests deeper than 100 levels" in d.message  # its depth, not its length, stops it
    flat = "max(" + ", ".join(["1"] * 300) + ")"  # as long, but flat
    assert 900 < len(flat) <= MAX_SOURCE
    assert lint_text(with_expression(flat), "x.yaml").diagnostics == []


@pytest.mark.parametrize(("text", "shown"), [("1\\x001", "\\x00"), ("\\e[31m", "\\x1b[31m")])
def test_control_characters_in_an_expression_are_escaped_in_the_message(text, shown):
    spec = f'input: [3, 8, 8]\nlayers:\n  - conv: {{out: "${{{text}}}", kernel: 1}}\n'
    (d,) = lint_text(spec, "x.yaml").diagnostics
    assert d.code == "invalid-expression" and shown in d.message and d.message.isprintable()


# a spec value -> what the message says (no expression involved)
NUMBERS = {
    f"  - conv: {{out: {DIGITS_400}, kernel: 1}}": (
        3,
        "`out` must be <= 1,000,000,000,000,000, got a 400-digit number",
    ),
    f"  - flatten\n  - linear: {{out: {DIGITS_400}}}": (4, "got a 400-digit number"),
    f"  - conv: {{in: {DIGITS_400}, out: 8, kernel: 1}}": (3, "`in` must be <= 1,000,000,000"),
    f"  - conv: {{out: 8, kernel: {DIGITS_400}}}": (3, "got a 400-digit number"),
    f"  - reshape: {{shape: [-1, {DIGITS_400}]}}": (3, "got a 400-digit number"),
    "  - conv: {out: .inf, kernel: 1}": (3, "`out` must be a whole number, got inf"),
    "  - conv: {out: 8, kernel: .nan}": (3, "`kernel`"),
    "  - conv: {out: 8, kernel: 1, stride: -.inf}": (3, "`stride`"),
    "  - conv: {in: .nan, out: 8, kernel: 1}": (3, "`in` must be a whole number, got nan"),
    "  - dropout: .nan": (3, "`p` must be < 1.0, got nan"),
}


@pytest.mark.parametrize("layer", list(NUMBERS), ids=lambda s: s.strip()[:40])
def test_numeric_edge_in_a_field_is_invalid_value(layer):
    line, message = NUMBERS[layer]
    result = lint_text(f"input: [3, 8, 8]\nlayers:\n{layer}\n", "x.yaml")
    assert [(d.code, d.span.line) for d in result.diagnostics] == [("invalid-value", line)]
    assert message in result.diagnostics[0].message, result.diagnostics[0].message


@pytest.mark.parametrize("size", [DIGITS_400, ".inf", ".nan", "-.inf", "1000000000000001"])
def test_numeric_edge_in_the_input_is_invalid_value(size):
    result = lint_text(f"input: [3, {size}, 8]\nlayers: [relu]\n", "x.yaml")
    assert [(d.code, d.span.line) for d in result.diagnostics] == [("invalid-value", 1)]
    assert "input sizes must be whole numbers from 1 to 1,000,000,000,000,000" in (
        result.diagnostics[0].message
    )


SCALE = (
    "input: [3, 8, 8]\nscales:\n  n: {{{row}}}\nlayers:\n"
    '  - conv: {{out: "${{w(16)}}", kernel: 1, repeat: "${{d(3)}}"}}\n'
)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("width: .inf", "`scales.n.width` must be a finite number, got inf"),
        ("width: .nan", "`scales.n.width` must be a finite number, got nan"),
        ("depth: .inf", "`scales.n.depth` must be a finite number, got inf"),
        (f"divisor: {DIGITS_400}", "`scales.n.divisor` must be <= 1,000,000,000,000,000"),
        (f"max_channels: {DIGITS_400}", "got a 400-digit number"),
    ],
)
def test_numeric_edge_in_a_scale_row_is_invalid_value(row, message):
    result = lint_text(SCALE.format(row=row), "x.yaml")
    assert [(d.code, d.span.line) for d in result.diagnostics] == [("invalid-value", 3)]
    assert message in result.diagnostics[0].message


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("width: 1.0e+300", "`${w(16)}` evaluates to a number too large for a spec (a 302-digit"),
        ("depth: 1.0e+300", "`${d(3)}` evaluates to a number too large for a spec (a 301-digit"),
        ("width: 1.0e+308", "`${w(16)}` evaluates to a number too large for a spec"),
    ],
)
def test_a_huge_scale_is_reported_where_it_is_used(row, message):
    result = lint_text(SCALE.format(row=row), "x.yaml")
    assert [(d.code, d.span.line) for d in result.diagnostics] == [("invalid-expression", 5)]
    assert message in result.diagnostics[0].message, result.diagnostics[0].message


@pytest.mark.parametrize("count", [1_000, 5_000])
def test_a_long_run_of_disabled_layers_lints(count):
    # each `if: false` layer stands for its input: a chain of `count` aliases to follow
    spec = "input: [3, 8, 8]\nlayers:\n  - relu: {name: a}\n" + "  - relu: {if: false}\n" * count
    spec += "  - conv: {name: c, out: 4, kernel: 1}\n"
    started = time.perf_counter()
    result = lint_text(spec, "x.yaml")
    assert result.diagnostics == [] and time.perf_counter() - started < 30  # 0.8 s for 5,000
    assert result.graph.node("c").inputs == ["a"]


def test_a_long_named_chain_of_disabled_layers_and_its_cycle():
    # `from:` can point forward, so the chain is followed at link time, in a loop
    n = 2_000
    names = [f"d{i}" for i in range(n)]
    lines = [f"  - relu: {{name: {a}, from: {b}, if: false}}" for a, b in pairwise(names)]
    good = "\n".join([*lines, f"  - relu: {{name: {names[-1]}, from: input, if: false}}"])
    spec = f"input: [3, 8, 8]\nlayers:\n{good}\n  - relu: {{name: out, from: d0}}\n"
    result = lint_text(spec, "x.yaml")
    assert result.diagnostics == []
    assert result.graph.node("out").inputs == ["input"]
    cyclic = "\n".join([*lines, f"  - relu: {{name: {names[-1]}, from: d0, if: false}}"])
    spec = f"input: [3, 8, 8]\nlayers:\n{cyclic}\n  - relu: {{name: out, from: d0}}\n"
    (d,) = lint_text(spec, "x.yaml").diagnostics
    assert d.code == "cyclic-reference"
    assert d.message.startswith("references form a cycle: `d0` -> `d1` -> `d2` -> ")
    assert d.message.endswith(f"`{names[-1]}` -> `d0`")


def test_fmt_bytes_and_fmt_number_take_any_whole_number():
    assert fmt_bytes(10**400) == "about 2^1328 B"
    assert fmt_bytes(2**70) == "1.07e+09 TiB"
    assert fmt_bytes(53_513_120) == "51.0 MiB"
    assert fmt_number(10**399) == "a 400-digit number"
    assert fmt_number(7**20_000) == "a number of about 16,902 digits"  # beyond str()'s 4,300
    assert fmt_number(10**16, ".3g") == "1e+16" and fmt_number(3) == "3"


HOSTILE_SPECS = {
    "repetition": with_expression("'a' * 900000000"),
    "round": with_expression("round(5, -100000000)"),
    "sum": with_expression("+".join(["1"] * 1_000)),
    "int inf": with_expression("int(1e999)"),
    "400 digits": f"input: [3, 8, 8]\nlayers:\n  - conv: {{out: {DIGITS_400}, kernel: 1}}\n",
    "scale inf": SCALE.format(row="width: .inf"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_SPECS))
def test_cli_reports_hostile_specs_with_exit_code_1(name, tmp_path):
    path = tmp_path / "hostile.yaml"
    path.write_text(HOSTILE_SPECS[name])
    commands = [
        ["lint", str(path)],
        ["lint", "--format", "json", str(path)],
        ["summary", str(path)],
        ["build", "-o", str(tmp_path / "out"), str(path)],
        ["draw", "--format", "dot", "-o", str(tmp_path / "x.dot"), str(path)],
    ]
    for args in commands if name in ("repetition", "400 digits") else commands[:1]:
        out = subprocess.run(
            [sys.executable, "-m", "compiler", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        both = out.stdout + out.stderr
        assert out.returncode == 1, (args, both)
        assert "Traceback" not in both and "internal error" not in both, (args, both)
        assert "error[" in both or '"code"' in both, (args, both)
