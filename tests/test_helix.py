"""The Helix set-up (`editors/helix/`). Helix itself cannot be installed here (it is not in
Debian 12, and its releases and crates are outside the registries this machine reaches), so
this checks the files against the configuration Helix reads, transcribed from its source
(`helix-core/src/syntax/config.rs` and `helix-view/src/editor.rs`, commit 027fa463), and
starts the server the way Helix would, with the command and arguments the file gives."""

from __future__ import annotations

import os
import shutil
import sys
import tomllib
from pathlib import Path

import pytest

from .conftest import ROOT
from .lspclient import Client

pytest.importorskip("pygls")
HELIX = ROOT / "editors" / "helix"

# Helix's `LanguageServerConfiguration` (kebab-case, serde)
SERVER_KEYS = {"command", "args", "environment", "config", "timeout", "required-root-patterns"}
# the keys of Helix's `LanguageConfiguration` (`deny_unknown_fields`)
LANGUAGE_KEYS = {
    "name", "language-id", "scope", "file-types", "shebangs", "roots", "comment-tokens",
    "comment-token", "block-comment-tokens", "text-width", "soft-wrap", "auto-format",
    "formatter", "path-completion", "word-completion", "diagnostic-severity", "grammar",
    "injection-regex", "language-servers", "indent", "debugger", "auto-pairs", "rulers",
    "workspace-lsp-roots", "persistent-diagnostic-sources", "rainbow-brackets",
}  # fmt: skip
# what Helix's own languages.toml gives `yaml`: the user's list replaces it, so it keeps them
BUILTIN_YAML_SERVERS = ["yaml-language-server", "ansible-language-server"]


def _languages() -> dict:
    return tomllib.loads((HELIX / "languages.toml").read_text())


def test_the_languages_file_is_what_helix_reads():
    config = _languages()
    assert set(config) == {"language-server", "language"}
    server = config["language-server"]["yarch"]
    assert set(server) <= SERVER_KEYS
    assert isinstance(server["command"], str)
    assert all(isinstance(a, str) for a in server.get("args", []))
    (yaml,) = config["language"]
    assert set(yaml) <= LANGUAGE_KEYS
    assert yaml["name"] == "yaml"  # merged into Helix's own `yaml`: scope, file types, grammar
    names = [s if isinstance(s, str) else s["name"] for s in yaml["language-servers"]]
    assert "yarch" in names
    assert "yaml-language-server" in names  # the schema's completion and hovers stay
    assert all(n in config["language-server"] or n in BUILTIN_YAML_SERVERS for n in names)


def test_helix_shows_inlay_hints_when_the_editor_config_asks():
    config = tomllib.loads((HELIX / "config.toml").read_text())
    assert config == {"editor": {"lsp": {"display-inlay-hints": True}}}


def test_the_readme_gives_the_same_set_up():
    readme = (ROOT / "README.md").read_text()
    for line in (HELIX / "languages.toml").read_text().splitlines():
        if line and not line.startswith("#"):
            assert line in readme, line
    assert "display-inlay-hints = true" in readme


def test_the_command_helix_runs_serves(tmp_path):
    """`yarch lsp`, found on the PATH as Helix finds it (the environment's `bin`), answers
    initialize with what Helix asks for: diagnostics come pushed, hints and hovers served."""
    server = _languages()["language-server"]["yarch"]
    bin_dir = Path(sys.executable).parent
    path = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    command = shutil.which(server["command"], path=path)
    if command is None:
        pytest.skip("no `yarch` script beside this Python (the package is not installed)")
    client = Client([command, *server.get("args", [])], cwd=tmp_path)
    try:
        capabilities = client.initialize()["capabilities"]
        assert capabilities["inlayHintProvider"]
        assert capabilities["hoverProvider"]
        assert capabilities["definitionProvider"]
        assert "completionProvider" in capabilities
        spec = tmp_path / "net.yaml"
        spec.write_text("input: [3, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 3, in: 2}\n")
        uri = client.open(spec)
        assert [d["code"] for d in client.diagnostics(uri)] == ["channel-mismatch"]
    finally:
        client.close()
