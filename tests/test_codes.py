"""The registry of diagnostic codes (`compiler/codes.py`) and what derives from it.

- the README's table is the registry's rendering (`make generate` rewrites it);
- every code written at an emitting site in `compiler/` (`error(...)`, `warning(...)`,
  `ctx.error(...)`, `Diagnostic(...)`, any `code=`) is registered, at the severity its helper
  gives, and every registered code is written somewhere (or marked `dynamic`);
- a `Diagnostic` with an unregistered code raises, and the command line reports that as
  `internal-error`, not a traceback;
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
from compiler import readme as readme_sections
from compiler.codes import CODES, UnregisteredCode
from compiler.diagnostics import Diagnostic, Severity, error, warning

ROOT = Path(__file__).parent.parent
COMPILER = ROOT / "compiler"

# The callables that make a diagnostic from a code: the helpers of compiler.diagnostics and the
# ops' and shape inference's `ctx.error`/`ctx.warning`, all with the code first
EMITTERS = {"error": Severity.ERROR, "warning": Severity.WARNING, "Diagnostic": None}
# Sites ("compiler/x.py:function") allowed to compute a code at run time; each code they can
# emit is marked `dynamic=True` in the registry. None today: every code is written as a literal.
DYNAMIC_SITES: frozenset[str] = frozenset()


class _Sites(ast.NodeVisitor):
    """The codes written at the emitting sites of one module."""

    def __init__(self, path: Path) -> None:
        self.path = path.relative_to(ROOT).as_posix()
        self.functions: list[ast.FunctionDef | ast.AsyncFunctionDef] = []
        self.found: list[tuple[str, Severity | None, str]] = []  # (code, severity, place)
        self.computed: list[str] = []  # places whose code is neither a literal nor passed in

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.functions.append(node)
        self.generic_visit(node)
        self.functions.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        keyword = next((k.value for k in node.keywords if k.arg == "code"), None)
        if keyword is not None:
            self.code(keyword, EMITTERS.get(name or ""), node)
        elif name in EMITTERS and node.args:
            self.code(node.args[0], EMITTERS[name], node)
        self.generic_visit(node)

    def code(self, arg: ast.expr, severity: Severity | None, call: ast.Call) -> None:
        function = self.functions[-1].name if self.functions else "<module>"
        place = f"{self.path}:{call.lineno}"
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            self.found.append((arg.value, severity, place))
        elif isinstance(arg, ast.IfExp):  # `"a" if c else "b"`: both are written here
            self.code(arg.body, severity, call)
            self.code(arg.orelse, severity, call)
        elif (
            isinstance(arg, ast.Name)
            and self.functions
            and arg.id in _parameters(self.functions[-1])
        ):
            pass  # a helper passing its caller's code on: the callers are the sites checked
        elif f"{self.path}:{function}" not in DYNAMIC_SITES:
            self.computed.append(f"{place} ({function}): {ast.unparse(arg)}")


def _parameters(function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    a = function.args
    return {p.arg for p in [*a.posonlyargs, *a.args, *a.kwonlyargs]}


def _sites() -> _Sites:
    every = _Sites(COMPILER)
    for path in sorted(COMPILER.rglob("*.py")):
        sites = _Sites(path)
        sites.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        every.found += sites.found
        every.computed += sites.computed
    return every


def test_readme_table_is_the_registry():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert codes.BEGIN in readme and codes.END in readme, "the README lost its markers"
    assert readme_sections.current(readme, codes.BEGIN, codes.END) == codes.render(), (
        "the README's table of codes differs from compiler/codes.py: run `make generate`"
    )


def test_every_code_written_in_compiler_is_registered():
    sites = _sites()
    assert not sites.computed, (
        "a code computed at run time, which this test cannot read: write it as a literal (or "
        "`'a' if c else 'b'`), or list the site in DYNAMIC_SITES and mark its codes "
        f"`dynamic=True`: {sites.computed}"
    )
    unknown = sorted({f"{place}: `{code}`" for code, _, place in sites.found if code not in CODES})
    assert not unknown, f"codes not registered in compiler/codes.py: {unknown}"
    wrong = sorted(
        f"{place}: `{code}` as {severity.value}, registered as {CODES[code].severity}"
        for code, severity, place in sites.found
        if severity is not None and severity != CODES[code].severity
    )
    assert not wrong, f"codes emitted at a severity the registry does not give them: {wrong}"


def test_every_registered_code_is_emitted():
    written = {code for code, _, _ in _sites().found}
    unused = sorted(c.code for c in CODES.values() if c.code not in written and not c.dynamic)
    assert not unused, f"registered codes that nothing in compiler/ emits: {unused}"
    stale = sorted(c.code for c in CODES.values() if c.dynamic and c.code in written)
    assert not stale, f"codes marked `dynamic` that are written as literals: {stale}"


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
    assert shapes.RECEIVED is codes.RECEIVED
    assert {"channel-mismatch", "add-mismatch"} <= codes.RECEIVED
    assert pipeline.UNREADABLE is codes.UNREADABLE


def test_an_unregistered_code_raises():
    with pytest.raises(UnregisteredCode, match="`no-such-code` is not registered"):
        error("no-such-code", "a message")
    with pytest.raises(UnregisteredCode, match="registered as error, not warning"):
        warning("channel-mismatch", "a message")
    with pytest.raises(UnregisteredCode):
        Diagnostic("", "a message")
    assert error("channel-mismatch", "a message").code == "channel-mismatch"


def test_an_unregistered_code_is_an_internal_error_not_a_traceback(tmp_path, monkeypatch):
    """A bug that emits an unregistered code is reported like any failure of yarch itself."""
    spec = tmp_path / "s.yaml"
    spec.write_text("input: [3, 8, 8]\nlayers: [relu]\n")

    def buggy(doc):
        return None, [error("not-a-registered-code", "bug", None)]

    monkeypatch.delenv("YARCH_DEBUG", raising=False)
    monkeypatch.setattr(pipeline, "validate", buggy)
    result = pipeline.lint_safely(spec)
    assert [d.code for d in result.diagnostics] == ["internal-error"]
    assert "UnregisteredCode" in result.diagnostics[0].message
    assert result.unreadable  # exit code 2


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
