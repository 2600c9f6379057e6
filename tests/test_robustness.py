"""No input makes yarch print a traceback: broken YAML, wrong types, unknown ops, cycles,
missing references, truncated files, binary garbage."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from compiler import lint_text
from compiler.pipeline import lint_file

from .conftest import ROOT, SPECS, measured

BROKEN = {
    "syntax": "input: [3, 224, 224\nlayers: [relu]\n",
    "tabs": "input:\n\t- 3\n",
    "not a mapping": "- relu\n- conv\n",
    "scalar": "42\n",
    "empty": "",
    "comments only": "# nothing here\n",
    "layers not a list": "input: [3, 8, 8]\nlayers: relu\n",
    "input wrong type": "input: three\nlayers: [relu]\n",
    "input negative": "input: [3, -1, 8]\nlayers: [relu]\n",
    "wrong field type": "input: [3, 8, 8]\nlayers:\n  - conv: {out: sixty, kernel: 3}\n",
    "float kernel": "input: [3, 8, 8]\nlayers:\n  - conv: {out: 8, kernel: 2.5}\n",
    "bool stride": "input: [3, 8, 8]\nlayers:\n  - conv: {out: 8, kernel: 3, stride: true}\n",
    "list for int": "input: [3, 8, 8]\nlayers:\n  - linear: {out: [1, 2]}\n",
    "unknown op": "input: [3, 8, 8]\nlayers:\n  - conv2d: {out: 8, kernel: 3}\n",
    "unknown field": "input: [3, 8, 8]\nlayers:\n  - conv: {out: 8, kernal: 3}\n",
    "unknown top field": "input: [3, 8, 8]\nlayer: [relu]\n",
    "missing ref": "input: [3, 8, 8]\nlayers:\n  - relu: {from: nowhere}\n",
    "cycle": (
        "input: [3, 8, 8]\nlayers:\n  - relu: {name: a, from: b}\n  - relu: {name: b, from: a}\n"
    ),
    "self cycle": "input: [3, 8, 8]\nlayers:\n  - relu: {name: a, from: a}\n",
    "alias cycle": (
        "input: [3, 8, 8]\nlayers:\n  - relu: {name: a, from: b, if: false}\n"
        "  - relu: {name: b, from: a, if: false}\n  - relu: {from: a}\n"
    ),
    "duplicate key": "input: [3, 8, 8]\ninput: [3, 9, 9]\nlayers: [relu]\n",
    "python tag": "input: !!python/object/apply:os.system ['echo hi']\nlayers: [relu]\n",
    "bad timestamp": "input: [3, 8, 8]\nname: !!timestamp x\nlayers: [relu]\n",
    "undefined param": "input: [3, 8, 8]\nlayers:\n  - linear: $classes\n",
    "bad expression": "input: [3, 8, 8]\nlayers:\n  - linear: ${1/0}\n",
    "evil expression": "input: [3, 8, 8]\nlayers:\n  - linear: ${__import__('os')}\n",
    "huge power": "input: [3, 8, 8]\nlayers:\n  - linear: ${10 ** 10000}\n",
    "recursive block": ("input: [3, 8, 8]\nblocks:\n  B:\n    layers: [B]\nlayers: [B]\n"),
    "block without args": (
        "input: [3, 8, 8]\nblocks:\n  B:\n    layers: [relu]\nlayers:\n  - B: 3\n"
    ),
    "two op keys": "input: [3, 8, 8]\nlayers:\n  - conv: {out: 8, kernel: 3}\n    name: c\n",
    "null layer": "input: [3, 8, 8]\nlayers:\n  - ~\n",
    "number layer": "input: [3, 8, 8]\nlayers:\n  - 3\n",
    "nested junk": "input: [3, 8, 8]\nlayers:\n  - inception: [[[]], {}, 3]\n",
    "outputs to nothing": "input: [3, 8, 8]\nlayers: [relu]\noutputs: {x: y}\n",
    "repeat zero": "input: [3, 8, 8]\nlayers:\n  - relu: {repeat: 0}\n",
    "collapse": "input: [3, 4, 4]\nlayers:\n  - maxpool: 8\n",
    "mapping key": "input: [3, 8, 8]\n? [a, b]\n: c\nlayers: [relu]\n",
    "unknown alias": "input: *nothing\nlayers: [relu]\n",
    "two documents": "input: [3, 8, 8]\nlayers: [relu]\n---\ninput: [1]\n",
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_input_gives_diagnostics(name):
    result = lint_text(BROKEN[name], "broken.yaml")
    assert result.errors >= 1, (name, result.diagnostics)
    for d in result.diagnostics:
        assert d.span is None or d.span.line >= 1
        assert d.code and d.message


def test_anchors_and_aliases_are_fine():
    result = lint_text("input: &a [3, 8, 8]\nparams: {x: *a}\nlayers: [relu]\n")
    assert result.diagnostics == []


def test_truncated_googlenet_never_raises():
    # the file cut short at every byte: each prefix lints to diagnostics, or to a clean result
    # only where the cut falls between whole layers
    text = (SPECS / "googlenet.yaml").read_bytes()
    full = lint_text(text.decode("utf-8"), "truncated.yaml")
    assert not full.errors
    cut_clean = 0
    for end in range(len(text)):
        try:
            prefix = text[:end].decode("utf-8")
        except UnicodeDecodeError:  # pragma: no cover - the spec is ASCII
            continue
        result = lint_text(prefix, "truncated.yaml")
        for d in result.diagnostics:
            assert d.code and d.message and (d.span is None or d.span.line >= 1)
        cut_clean += not result.errors
    assert cut_clean < len(text) // 2  # most cuts leave a broken spec, and lint says so


DEEP = {
    "flow sequences": "params: {x: " + "[" * 100_000 + "]" * 100_000 + "}\n",
    "flow mappings": "params:\n  x: " + "{a: " * 100_000 + "1" + "}" * 100_000 + "\n",
    "unclosed": "params: " + "[" * 100_000 + "\n",
    # 1,000 levels: block nesting costs its indentation, and deeper is over the size limit
    "block": "params:\n  x:\n" + "".join("  " * (i + 2) + "- \n" for i in range(1_000)),
}


@pytest.mark.parametrize("name", sorted(DEEP))
def test_deep_nesting_is_refused_before_composing(name, tmp_path):
    # in a child process: PyYAML's C composer would crash the interpreter at ~30,000 levels
    path = tmp_path / "deep.yaml"
    path.write_text("input: [3, 8, 8]\nlayers: [relu]\n" + DEEP[name])
    out = subprocess.run(
        [sys.executable, "-m", "compiler", "lint", "--format", "concise", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert "error[yaml-too-deep] the document nests deeper than 100 levels" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr


def test_a_50_mb_file_is_refused_before_reading(tmp_path):
    path = tmp_path / "big.yaml"
    with path.open("wb") as f:
        f.write(b"input: [3, 8, 8]\nlayers:\n")
        f.write(b"  - relu\n" * (50 * 2**20 // 9))
    result, elapsed, peak = measured(lambda: lint_file(path))
    assert [d.code for d in result.diagnostics] == ["yaml-too-large"]
    assert "the file is 50.0 MB; a spec may be at most 2 MB" in result.diagnostics[0].message
    assert elapsed < 1 and peak < 2**20


def test_a_device_is_refused_before_reading():
    if not Path("/dev/zero").exists():  # pragma: no cover - not Linux
        pytest.skip("no /dev/zero")
    result = lint_file("/dev/zero")
    assert [d.code for d in result.diagnostics] == ["unreadable-file"]
    assert "is a device or a socket, not a regular file" in result.diagnostics[0].message


# values that make PyYAML's constructors raise something other than a YAML error
ODD = {
    "zero date": ("name: 0000-00-00", "invalid-value", "cannot read `0000-00-00` as !!timestamp"),
    "empty float": ("name: !!float", "invalid-value", "cannot read `` as !!float"),
    "bad timestamp": ("name: !!timestamp x", "invalid-value", "cannot read `x` as !!timestamp"),
    "5,000 digits": ("name: " + "7" * 5_000, "invalid-value", "as !!int"),
}


@pytest.mark.parametrize("name", sorted(ODD))
def test_values_safe_load_cannot_construct(name):
    line, code, message = ODD[name]
    result = lint_text(f"input: [3, 8, 8]\nlayers: [relu]\n{line}\n", "odd.yaml")
    assert [(d.code, d.span.line) for d in result.diagnostics] == [(code, 3)]
    assert message in result.diagnostics[0].message


# YAML 1.1 reads these differently from how they look (and from YAML 1.2): reported, not coerced
SURPRISES = {
    "no as a name": ("  - relu: {name: no}", "YAML 1.1 reads `no` as false", "write `false`"),
    "on as a flag": ("  - conv: {out: 8, kernel: 1, bias: on}", "reads `on` as true", None),
    "octal": ("  - conv: {out: 010, kernel: 1}", "reads `010` as 8 (octal)", "write `10`"),
    "base 60": ("  - linear: 12:30", "reads `12:30` as 750 (base 60)", None),
    "exponent": ("  - linear: 1e3", "reads `1e3` as text, not a number", None),
}


@pytest.mark.parametrize("name", sorted(SURPRISES))
def test_yaml_11_surprises_are_reported(name):
    line, message, fix = SURPRISES[name]
    result = lint_text(f"input: [3, 8, 8]\nlayers:\n{line}\n", "surprise.yaml")
    (d,) = result.diagnostics
    assert (d.code, d.span.line) == ("ambiguous-yaml", 3) and message in d.message
    assert fix is None or fix in d.help


def test_quoted_and_plain_ordinary_values_are_not_surprises():
    spec = "input: [3, 8, 8]\nname: 'no'\nlayers:\n  - conv: {out: 10, kernel: 1, bias: false}\n"
    assert lint_text(spec).diagnostics == []


def test_binary_garbage(tmp_path):
    path = tmp_path / "garbage.yaml"
    path.write_bytes(bytes(range(256)) * 4)
    result = lint_file(path)
    assert [d.code for d in result.diagnostics] == ["invalid-encoding"]
    assert result.unreadable


@pytest.mark.parametrize("name", ["syntax", "cycle", "unknown op", "python tag", "missing ref"])
def test_cli_prints_no_traceback(tmp_path, name):
    path = tmp_path / "spec.yaml"
    path.write_text(BROKEN[name])
    for fmt in ("text", "json", "concise", "github"):
        out = subprocess.run(
            [sys.executable, "-m", "compiler", "lint", "--format", fmt, str(path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert out.returncode == 1, out.stdout + out.stderr
        assert "Traceback" not in out.stdout + out.stderr


def test_cli_missing_file_and_bad_flag(tmp_path):
    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "compiler", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )

    for args in (
        ("lint", str(tmp_path / "missing.yaml")),
        ("lint", "--format", "xml", "specs/googlenet.yaml"),
        ("lint", "--set", "oops", "specs/googlenet.yaml"),
        ("lint",),
        ("lint", str(tmp_path)),  # a folder with no specs
    ):
        out = run(*args)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert "Traceback" not in out.stdout + out.stderr


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system",
        "!!python/object/apply:subprocess.call",
        "!!python/name:os.system",
    ],
)
def test_python_tags_are_refused_and_nothing_runs(tmp_path, tag):
    marker = tmp_path / "ran"
    spec = f"input: {tag} [[touch, '{marker}']]\nlayers: [relu]\n"
    result = lint_text(spec, "tagged.yaml")
    assert [(d.code, d.span.line) for d in result.diagnostics] == [("yaml-tag", 1)]
    assert not marker.exists()
