"""A minimal LSP client over stdio, as an editor drives `yarch lsp`: JSON-RPC messages framed
by Content-Length headers. The language-server tests and `bench/lsp_speed.py` share it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 30.0


class Client:
    """`yarch lsp` in a child process: requests, notifications, and the server's messages as
    they come (the notifications that arrive while a request waits are kept)."""

    def __init__(self, command: list[str] | None = None, cwd: Path = ROOT) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        # a file, not a pipe: a server that logs much cannot block on a full pipe
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        self.process = subprocess.Popen(
            command or [sys.executable, "-m", "compiler", "lsp"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            cwd=cwd,
            env=env,
        )
        self.next_id = 0
        self.notifications: list[dict[str, Any]] = []

    def initialize(self, options: dict[str, Any] | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"processId": None, "rootUri": ROOT.as_uri(), "capabilities": {}}
        if options is not None:
            params["initializationOptions"] = options
        answer = self.request("initialize", params)
        self.notify("initialized", {})
        return answer

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
            if not line:
                raise AssertionError(f"the server closed its output; it said:\n{self.said()}")
            if line in (b"\r\n", b"\n"):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        assert length is not None
        return json.loads(stream.read(length))

    def said(self) -> str:
        """What the server wrote to its standard error."""
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

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

    def open(self, path: Path, text: str | None = None) -> str:
        """Open `path` (with `text` as its content, if given) and return its URI."""
        uri = path.resolve().as_uri()
        content = path.read_text() if text is None else text
        document = {"uri": uri, "languageId": "yaml", "version": 1, "text": content}
        self.notify("textDocument/didOpen", {"textDocument": document})
        return uri

    def change(self, uri: str, version: int, text: str) -> None:
        self.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": uri, "version": version},
                "contentChanges": [{"text": text}],
            },
        )

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

    def rss_mib(self) -> float:
        """The server's resident memory (Linux)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(x for x in status.splitlines() if x.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024

    def close(self) -> None:
        try:
            self.request("shutdown", {})
            self.notify("exit", {})
            self.process.wait(timeout=TIMEOUT)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self.stderr.close()
