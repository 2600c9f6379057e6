"""`yarch lsp` under a real editor: Neovim from Debian's package, headless (`apt-get install
neovim`); skipped where there is no `nvim`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from compiler import lint_file

from .conftest import ROOT, SPECS

pytest.importorskip("pygls")
NVIM = shutil.which("nvim")
pytestmark = pytest.mark.skipif(NVIM is None, reason="no nvim (apt-get install neovim)")


def test_neovim_shows_yarchs_diagnostics_and_hovers(tmp_path: Path):
    spec = tmp_path / "keras.yaml"
    spec.write_text((SPECS / "posts" / "inception_keras.yaml").read_text())
    lines = spec.read_text().splitlines()
    hover_line = next(i for i, line in enumerate(lines) if "- conv:" in line)
    out = tmp_path / "out.txt"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "YARCH_OUT": str(out),
        "YARCH_LSP": f"{sys.executable} -m compiler lsp",
        "YARCH_SPEC": str(spec),
        "YARCH_HOVER_LINE": str(hover_line),
    }
    script = ROOT / "tests" / "editors" / "neovim_client.lua"
    done = subprocess.run(
        [NVIM, "--headless", "--clean", "-u", "NONE", "-c", f"luafile {script}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    got = out.read_text().splitlines()
    want = lint_file(spec).diagnostics
    assert [g for g in got if not g.startswith("hover")] == [
        f"{d.span.line}:{d.span.column} {1 if d.severity.name == 'ERROR' else 2} {d.code}"
        for d in want
    ]
    assert len(want) == 3
    (hover,) = [g for g in got if g.startswith("hover")]
    assert "**conv**" in hover and "parameters" in hover
