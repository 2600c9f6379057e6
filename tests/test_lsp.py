"""`yarch lsp`, driven over stdio as an editor drives it: JSON-RPC with Content-Length headers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from compiler import lint_file

from .conftest import ROOT, SPECS

pytest.importorskip("pygls")

TIMEOUT = 30.0


class Client:
    """A minimal LSP client: requests, notifications, and the server's messages as they come."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "compiler", "lsp"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env=env,
        )
        self.next_id = 0
        self.notifications: list[dict[str, Any]] = []

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.process.stdin is not None
        self.process.stdin.write(f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        self.process.stdin.flush()

    def receive(self) -> dict[str, Any]:
        stream = self.process.stdout
        assert stream is not None
        length = None
        while True:
            line = stream.readline()
            assert line, "the server closed its output"
            if line in (b"\r\n", b"\n"):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        assert length is not None
        return json.loads(stream.read(length))

    def request(self, method: str, params: dict[str, Any]) -> Any:
        self.next_id += 1
        self.send({"id": self.next_id, "method": method, "params": params})
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            message = self.receive()
            if message.get("id") == self.next_id and "method" not in message:
                assert "error" not in message, message
                return message["result"]
            if "method" in message:
                self.notifications.append(message)
        raise AssertionError(f"no answer to {method}")

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.send({"method": method, "params": params})

    def diagnostics(self, uri: str, version: int | None = None) -> list[dict[str, Any]]:
        """The diagnostics the server publishes next for `uri` (of `version`, if given)."""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            for i, message in enumerate(self.notifications):
                params = message.get("params", {})
                if (
                    message["method"] == "textDocument/publishDiagnostics"
                    and params["uri"] == uri
                    and (version is None or params.get("version") == version)
                ):
                    del self.notifications[: i + 1]
                    return params["diagnostics"]
            message = self.receive()
            if "method" in message:
                self.notifications.append(message)
        raise AssertionError(f"no diagnostics for {uri}")

    def close(self) -> None:
        self.request("shutdown", {})
        self.notify("exit", {})
        self.process.wait(timeout=TIMEOUT)


@pytest.fixture
def client():
    c = Client()
    c.request("initialize", {"processId": None, "rootUri": ROOT.as_uri(), "capabilities": {}})
    c.notify("initialized", {})
    yield c
    try:
        c.close()
    finally:
        if c.process.poll() is None:
            c.process.kill()


def _open(client: Client, path: Path, text: str | None = None) -> str:
    uri = path.resolve().as_uri()
    client.notify(
        "textDocument/didOpen",
        {
            "textDocument": {
                "uri": uri,
                "languageId": "yaml",
                "version": 1,
                "text": path.read_text() if text is None else text,
            }
        },
    )
    return uri


def test_the_keras_posts_shape_errors_are_published_with_their_ranges(client):
    path = SPECS / "posts" / "inception_keras.yaml"
    uri = _open(client, path)
    found = client.diagnostics(uri)
    errors = [d for d in found if d["severity"] == 1]
    assert sorted(d["code"] for d in errors) == [
        "shape-mismatch",
        "shape-mismatch",
        "unflattened-linear",
    ]
    lines = path.read_text().splitlines()
    for d in errors:
        assert d["source"] == "yarch"
        start = d["range"]["start"]
        assert 0 <= start["line"] < len(lines) and start["character"] < len(lines[start["line"]])
    # the same diagnostics as `yarch lint`, at the same places, with the same related spans
    want = lint_file(path).diagnostics
    assert [(d["code"], d["range"]["start"]["line"] + 1) for d in found] == [
        (d.code, d.span.line) for d in want
    ]
    assert [len(d.get("relatedInformation") or []) for d in found] == [len(d.related) for d in want]
    assert any("736x7x7" in d["message"] for d in errors)


def test_related_places_are_published(client, tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text(
        "input: [3, 8, 8]\nlayers:\n  - conv: {name: a, out: 4, kernel: 1}\n"
        "  - conv: {name: b, out: 6, kernel: 1, from: input}\n  - add: [a, b]\n"
    )
    uri = _open(client, path)
    (d,) = client.diagnostics(uri)
    related = d["relatedInformation"]
    assert {r["location"]["range"]["start"]["line"] for r in related} >= {2, 3}
    assert all(r["location"]["uri"] == uri for r in related)


def test_inlay_hints_show_each_layers_shape_and_a_hover_its_numbers(client):
    path = SPECS / "googlenet.yaml"
    uri = _open(client, path)
    assert [d for d in client.diagnostics(uri) if d["severity"] == 1] == []
    lines = path.read_text().splitlines()
    hints = client.request(
        "textDocument/inlayHint",
        {
            "textDocument": {"uri": uri},
            "range": {
                "start": {"line": 0, "character": 0},
                "end": {"line": len(lines), "character": 0},
            },
        },
    )
    by_line = {h["position"]["line"]: h for h in hints}
    conv1 = next(i for i, line in enumerate(lines) if "name: conv1" in line)
    assert by_line[conv1]["label"] == "→ 64x112x112 · 9.5K params"
    assert by_line[conv1]["position"]["character"] == len(lines[conv1])
    inception = next(i for i, line in enumerate(lines) if "name: inception3a" in line)
    assert by_line[inception]["label"].startswith("→ 256x28x28")
    text = "".join(lines)
    assert path.read_text().count("→") == 0 and "→" not in text  # hints are not in the file
    answer = client.request(
        "textDocument/hover",
        {"textDocument": {"uri": uri}, "position": {"line": conv1, "character": 4}},
    )
    value = answer["contents"]["value"]
    assert "**conv**" in value and "3x224x224 → 64x112x112" in value and "9,472 parameters" in value


def test_a_change_is_linted_again(client, tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text("input: [3, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 3}\n  - relu\n")
    uri = _open(client, path)
    assert client.diagnostics(uri) == []
    broken = path.read_text() + "  - conv: {in: 5, out: 2, kernel: 1}\n"
    client.notify(
        "textDocument/didChange",
        {
            "textDocument": {"uri": uri, "version": 2},
            "contentChanges": [{"text": broken}],
        },
    )
    found = client.diagnostics(uri, version=2)
    assert [d["code"] for d in found] == ["channel-mismatch"]
    assert found[0]["range"]["start"]["line"] == 4


def _at(lines: list[str], needle: str) -> tuple[int, int]:
    line = next(i for i, text in enumerate(lines) if needle in text)
    return line, lines[line].index(needle)


def test_completion_offers_ops_blocks_fields_parameters_and_names(client):
    path = SPECS / "googlenet.yaml"
    text = path.read_text()
    uri = _open(client, path)
    client.diagnostics(uri)
    lines = text.splitlines()

    def labels(line: int, character: int) -> set[str]:
        items = client.request(
            "textDocument/completion",
            {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}},
        )
        return {i["label"] for i in (items["items"] if isinstance(items, dict) else items)}

    # after `- ` at a layer's start: the ops and the spec's blocks
    line, col = _at(lines, "- conv: {name: conv1,")
    found = labels(line, col + 2)
    assert {"conv", "inception", "maxpool", "AuxHead"} <= found
    # inside an op's mapping: its fields
    line, col = _at(lines, "stride: 2, padding: 3")
    assert {"out", "kernel", "stride", "padding", "groups"} <= labels(line, col)
    # after `$`: the parameters
    line, col = _at(lines, "$num_classes}")
    assert "num_classes" in labels(line, col + 1)
    # in `from:`: the layers
    line, col = _at(lines, "from: inception4a")
    assert {"inception4a", "pool3", "conv1"} <= labels(line, col + len("from: "))


def test_definition_and_symbols(client):
    path = SPECS / "googlenet.yaml"
    lines = path.read_text().splitlines()
    uri = _open(client, path)
    client.diagnostics(uri)

    def where(needle: str, offset: int = 0) -> dict[str, Any]:
        line, col = _at(lines, needle)
        return client.request(
            "textDocument/definition",
            {"textDocument": {"uri": uri}, "position": {"line": line, "character": col + offset}},
        )

    block = where("- AuxHead: {name: aux1", 4)
    assert block["uri"] == uri and lines[block["range"]["start"]["line"]].strip() == "AuxHead:"
    param = where("$num_classes}", 2)
    assert lines[param["range"]["start"]["line"]].strip().startswith("num_classes:")
    layer = where("from: inception4a", len("from: ") + 2)
    assert "name: inception4a" in lines[layer["range"]["start"]["line"]]
    outline = client.request("textDocument/documentSymbol", {"textDocument": {"uri": uri}})
    names = [s["name"] for s in outline]
    assert names[:1] == ["AuxHead"] and "inception3a" in names and "classifier" in names
    detail = next(s["detail"] for s in outline if s["name"] == "inception3a")
    assert detail == "inception → 256x28x28"


def test_a_mechanical_help_is_a_quick_fix(client, tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text(
        "input: [3, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 3}\n"
        "  - conv: {in: 5, out: 2, kernel: 1}\n"
    )
    uri = _open(client, path)
    (d,) = client.diagnostics(uri)
    assert d["code"] == "channel-mismatch"
    actions = client.request(
        "textDocument/codeAction",
        {"textDocument": {"uri": uri}, "range": d["range"], "context": {"diagnostics": [d]}},
    )
    (action,) = actions
    assert action["title"] == "set `in: 4`" and action["kind"] == "quickfix"
    (edit,) = action["edit"]["changes"][uri]
    line = path.read_text().splitlines()[edit["range"]["start"]["line"]]
    start, end = edit["range"]["start"]["character"], edit["range"]["end"]["character"]
    assert line[start:end] == "5" and edit["newText"] == "4"
    fixed = line[:start] + edit["newText"] + line[end:]
    assert fixed == "  - conv: {in: 4, out: 2, kernel: 1}"


def test_parameters_and_bases_are_hovered_completed_and_followed(client, tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(
        "name: base\ninput: [3, 8, 8]\nparams: {width: 16}\nlayers:\n"
        "  - conv: {name: stem, out: $width, kernel: 3}\n"
    )
    variant = tmp_path / "variant.yaml"
    variant.write_text("extends: base.yaml\nname: variant\nparams: {width: 32}\n")
    uri = _open(client, variant)
    client.diagnostics(uri)
    found = client.request(
        "textDocument/definition",
        {"textDocument": {"uri": uri}, "position": {"line": 0, "character": 12}},
    )
    assert found["uri"] == base.resolve().as_uri()
    items = client.request(
        "textDocument/completion",
        {"textDocument": {"uri": uri}, "position": {"line": 0, "character": len("extends: ")}},
    )
    assert [i["label"] for i in items] == ["base.yaml"]
    base_uri = _open(client, base)
    client.diagnostics(base_uri)
    line = base.read_text().splitlines()[4]
    answer = client.request(
        "textDocument/hover",
        {
            "textDocument": {"uri": base_uri},
            "position": {"line": 4, "character": line.index("$width") + 2},
        },
    )
    assert answer["contents"]["value"] == "`$width` = `16` (a parameter of the spec)"
