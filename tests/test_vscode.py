"""The VS Code extension (`editors/vscode/`) with its real language client: its locked
dependencies (vscode-languageclient) installed by `npm ci`, run in `tests/editors/
vscode_host.js`, which stands in for VS Code's extension host (the `vscode` module). It opens
specs as VS Code would and asks the providers the client registered. Skipped without Node.js
and npm, or when the npm registry cannot be reached."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from compiler import lint_file

from .conftest import ROOT, SPECS

pytest.importorskip("pygls")
NODE, NPM = shutil.which("node"), shutil.which("npm")
pytestmark = pytest.mark.skipif(not (NODE and NPM), reason="no Node.js and npm")
EXTENSION = ROOT / "editors" / "vscode"


@pytest.fixture(scope="module")
def extension(tmp_path_factory) -> Path:
    """The extension as `vsce package` would take it: its files and `npm ci`'s modules."""
    folder = tmp_path_factory.mktemp("vscode")
    for name in ("package.json", "package-lock.json", "extension.js"):
        shutil.copy(EXTENSION / name, folder / name)
    done = subprocess.run(
        [NPM, "ci", "--no-audit", "--no-fund", "--omit=dev"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        if "ENOTFOUND" in done.stderr or "EAI_AGAIN" in done.stderr:
            pytest.skip("the npm registry cannot be reached")
        raise AssertionError(done.stderr)
    return folder


def test_the_manifest_starts_the_server_for_yaml():
    manifest = json.loads((EXTENSION / "package.json").read_text())
    assert manifest["main"] == "./extension.js"
    assert manifest["activationEvents"] == ["onLanguage:yaml"]
    settings = manifest["contributes"]["configuration"]["properties"]
    assert settings["yarch.command"]["default"] == ["yarch", "lsp"]
    lock = json.loads((EXTENSION / "package-lock.json").read_text())
    assert lock["packages"][""]["dependencies"] == manifest["dependencies"]
    # `vsce package` packs what `files` lists and nothing else, its dependencies included
    # (a `files` of extension.js made a .vsix without vscode-languageclient): leave it out,
    # and let .vscodeignore drop only what the extension does not run
    assert "files" not in manifest
    ignored = (EXTENSION / ".vscodeignore").read_text().split()
    assert not [p for p in ignored if "node_modules" in p or "extension" in p or p == "*.js"]
    assert (EXTENSION / "LICENSE").exists()  # else `vsce package` stops to ask


def test_vs_codes_client_shows_diagnostics_hints_hovers_and_completion(extension):
    keras = SPECS / "posts" / "inception_keras.yaml"
    googlenet = SPECS / "googlenet.yaml"
    host = ROOT / "tests" / "editors" / "vscode_host.js"
    done = subprocess.run(
        [NODE, str(host), str(extension), sys.executable, str(keras), str(googlenet)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)

    # the Keras post's three errors, where `yarch lint` puts them (VS Code's lines from 0)
    found = results[str(keras)]["diagnostics"]
    expected = [d for d in lint_file(keras).diagnostics if d.severity.value == "error"]
    assert sorted((d["line"] + 1, d["character"] + 1, d["code"]) for d in found) == sorted(
        (d.span.line, d.span.column, d.code) for d in expected
    )
    assert all(d["severity"] == 0 for d in found)  # vscode.DiagnosticSeverity.Error

    seen = results[str(googlenet)]
    assert seen["diagnostics"] == []
    lines = googlenet.read_text().splitlines()
    conv1 = next(i for i, line in enumerate(lines) if "name: conv1" in line)
    hint = {"line": conv1, "character": len(lines[conv1]), "label": "→ 64x112x112 · 9.5K params"}
    assert hint in seen["hints"]
    assert "512x4x4 → 128x4x4" in seen["hover"]  # the first `- conv:`: the auxiliary head's
    assert {"conv", "inception", "AuxHead"} <= set(seen["completion"])


def test_the_command_setting_takes_a_list_or_a_program(extension):
    script = """
const Module = require("module");
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  return request === "vscode" ? "vscode" : resolve.call(this, request, ...rest);
};
// every name the client reads at import is a class; nothing is called
const exports = new Proxy({}, { get: () => class {} });
require.cache.vscode = { id: "vscode", filename: "vscode", loaded: true, exports };
const { serverOptions } = require(process.argv[1] + "/extension.js");
const config = (value) => ({ get: () => value });
console.log(JSON.stringify([
  serverOptions(config(["${workspaceFolder}/.venv/bin/yarch", "lsp"]), "/p"),
  serverOptions(config("/opt/yarch"), "/p"),
  serverOptions(config(undefined), "/p"),
  serverOptions(config([1, 2]), "/p"),
]));
"""
    done = subprocess.run(
        [NODE, "-e", script, str(extension)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    found = [(o["command"], o["args"]) for o in json.loads(done.stdout)]
    assert found == [
        ("/p/.venv/bin/yarch", ["lsp"]),
        ("/opt/yarch", ["lsp"]),
        ("yarch", ["lsp"]),
        ("yarch", ["lsp"]),
    ]
