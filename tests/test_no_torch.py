"""The lint path never imports torch (design.md: lint stays usable where torch is missing)."""

from __future__ import annotations

import subprocess
import sys

from .conftest import ROOT

# Block torch outright: if anything on the lint path imported it, the lint would fail.
PROBE = """
import sys
sys.modules["torch"] = None
from compiler.cli import cli
try:
    cli(["lint", "specs/googlenet.yaml", "specs/posts/"])
except SystemExit as exc:
    code = exc.code
loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
print("exit", code, "torch", loaded[1:] if loaded[:1] == ["torch"] else loaded)
"""


def test_lint_never_imports_torch():
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert "Traceback" not in out.stderr, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "exit 1 torch []"


def test_lint_process_does_not_load_torch():
    # without blocking: the whole `python -m compiler lint` process, as a user runs it
    probe = (
        "import runpy, sys\n"
        "sys.argv = ['yarch', 'lint', 'specs/googlenet.yaml']\n"
        "try:\n    runpy.run_module('compiler', run_name='__main__')\n"
        "except SystemExit as exc:\n    print('exit', exc.code)\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert out.stdout.strip().splitlines()[-2:] == ["exit 0", "False"], out.stdout + out.stderr


def test_one_file_lint_does_not_import_multiprocessing():
    # one file is linted in the process: no worker pool (networkx is imported: the graph is a
    # networkx.DiGraph, issue 14)
    probe = (
        "import sys\n"
        "sys.argv = ['yarch', 'lint', 'specs/googlenet.yaml']\n"
        "from compiler.cli import main\n"
        "try:\n    main()\n"
        "except SystemExit as exc:\n    print('exit', exc.code)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules}"
        " & {'multiprocessing', 'concurrent', 'torch'}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert out.stdout.strip().splitlines()[-2:] == ["exit 0", "[]"], out.stdout + out.stderr
