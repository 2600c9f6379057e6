from __future__ import annotations

import copy
import importlib.util
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


def rename(graph: Any, old: str, new: str) -> None:
    """Give node `old` of a resolved graph the id `new` everywhere it is named: a way to
    feed the back ends ids no spec can produce (ids come from identifiers)."""
    node = copy.copy(graph.node(old))
    node.id = new
    graph.replace_node(old, node)


def load_module(source: str, folder: Path, name: str) -> Any:
    """Generated code, written to `folder` and imported as a module of its own."""
    file = folder / f"{name}.py"
    file.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"generated_{name}", file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def root() -> Path:
    return ROOT


def measured(fn: Callable[[], Any]) -> tuple[Any, float, int]:
    """`fn()`, the seconds it took and the most bytes Python had allocated meanwhile."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        value = fn()
        return value, time.perf_counter() - started, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """The `yarch` command line in this process, from the repository's root folder:
    `run("lint", "specs/")` gives click's result (output, exit code)."""
    from click.testing import CliRunner

    from compiler.cli import cli

    monkeypatch.chdir(ROOT)
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke


def buildable_library() -> list[Path]:
    """The library's specs that lint without errors (the posts whose mistakes lint reports
    do not build), variants included, the zoo left out: what deployment tests build."""
    from compiler import lint_file

    found = [*SPECS.glob("*.yaml"), *SPECS.glob("variants/*.yaml"), *SPECS.glob("posts/*.yaml")]
    return sorted(p for p in found if not lint_file(p).errors)
