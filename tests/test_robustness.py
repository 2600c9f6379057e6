"""No input makes yarch print a traceback: broken YAML, wrong types, unknown ops, cycles,
missing references, truncated files, binary garbage."""

from __future__ import annotations

import subprocess
import sys

import pytest

from compiler import lint_text
from compiler.pipeline import lint_file

from .conftest import ROOT, SPECS

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
    # every prefix of a real spec; every 7th byte keeps the test fast and still hits every line
    text = (SPECS / "googlenet.yaml").read_bytes()
    for end in range(0, len(text), 7):
        try:
            prefix = text[:end].decode("utf-8")
        except UnicodeDecodeError:
            continue
        lint_text(prefix, "truncated.yaml")


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
