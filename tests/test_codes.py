"""The registry of diagnostic codes (`compiler/codes.py`) and what derives from it.

- the README's table is the registry's rendering (`make generate` rewrites it);
- the per-code facts other modules use are the registry's.

The fixture pairs of the codes that have them are checked by tests/test_rules.py, whose list of
codes is the registry's.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from compiler import codes, pipeline, shapes
from compiler.codes import CODES
from compiler.diagnostics import Severity

ROOT = Path(__file__).parent.parent
COMPILER = ROOT / "compiler"


def test_readme_table_is_the_registry():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert codes.BEGIN in readme and codes.END in readme, "the README lost its markers"
    assert codes.rewrite(readme) == readme, (
        "the README's table of codes differs from compiler/codes.py: run `make generate`"
    )


def test_entries_are_well_formed():
    for c in CODES.values():
        parts = c.code.split("-")
        assert len(parts) >= 2 and all(p.isascii() and p.isalnum() for p in parts), c.code
        assert c.code == c.code.lower(), c.code
        assert c.severity in (Severity.ERROR, Severity.WARNING), c
        # one table row: no line breaks, no cell separator, no trailing period
        assert c.summary and "\n" not in c.summary and "|" not in c.summary, c
        assert not c.summary.endswith("."), c
        assert c.summary[0] == "`" or not c.summary[0].isupper(), c
        assert bool(c.no_fixture) == bool(c.tested_in), f"`{c.code}`: say why and where"


@pytest.mark.parametrize("code", [c.code for c in CODES.values() if c.no_fixture])
def test_codes_without_fixtures_are_tested_where_they_say(code):
    path = ROOT / CODES[code].tested_in
    assert path.is_file(), f"`{code}` is said to be tested in {path}, which does not exist"
    assert f'"{code}"' in path.read_text(encoding="utf-8"), f"{path} never mentions `{code}`"


def test_other_modules_use_the_registrys_facts():
    assert shapes.RECEIVED == codes.RECEIVED
    assert {"channel-mismatch", "add-mismatch"} <= codes.RECEIVED
    # pipeline keeps its own set (not this change's module): it must agree
    assert pipeline.UNREADABLE == codes.UNREADABLE


def test_the_registry_is_a_cheap_leaf():
    """`diagnostics` imports it, so it imports nothing from compiler (no cycle) and nothing
    heavy (the lint path's start-up is benchmarked)."""
    tree = ast.parse((COMPILER / "codes.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0 and not (node.module or "").startswith("compiler"), node.module
        if isinstance(node, ast.Import):
            assert not any(a.name.startswith("compiler") for a in node.names)
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, compiler.codes; print(*sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.split()
    assert [m for m in loaded if m.startswith("compiler")] == ["compiler", "compiler.codes"]
    assert not {"yaml", "pydantic", "networkx", "jinja2", "torch"} & set(loaded)
