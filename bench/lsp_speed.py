"""`yarch lsp` in a running server: the time from an edit of GoogLeNet to its new diagnostics
(re-lint, conversion, JSON-RPC both ways), and the server's memory across many edits.

The server runs as an editor starts it (`python -m compiler lsp`, stdio) with its debounce set
to 0 through `initializationOptions`, so what is timed is the lint, not the wait.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "googlenet.yaml"


class _Server:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "compiler", "lsp"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        self.next_id = 0

    def send(self, message: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.process.stdin is not None
        self.process.stdin.write(f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        self.process.stdin.flush()

    def receive(self) -> dict:
        stream = self.process.stdout
        assert stream is not None
        length = 0
        while True:
            line = stream.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return json.loads(stream.read(length))

    def request(self, method: str, params: dict) -> dict:
        self.next_id += 1
        self.send({"id": self.next_id, "method": method, "params": params})
        while True:
            message = self.receive()
            if message.get("id") == self.next_id:
                return message

    def wait_diagnostics(self, version: int) -> list:
        while True:
            message = self.receive()
            params = message.get("params") or {}
            if (
                message.get("method") == "textDocument/publishDiagnostics"
                and params.get("version") == version
            ):
                return params["diagnostics"]

    def rss_mib(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(x for x in status.splitlines() if x.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024


def relint(edits: int = 10_000) -> dict:
    """Milliseconds from each edit to its diagnostics (p50, p99) and the server's resident
    memory after the first tenth of the edits and after all of them."""
    server = _Server()
    server.request(
        "initialize",
        {
            "processId": None,
            "rootUri": ROOT.as_uri(),
            "capabilities": {},
            "initializationOptions": {"debounce": 0},
        },
    )
    server.send({"method": "initialized", "params": {}})
    uri = SPEC.as_uri()
    text = SPEC.read_text()
    server.send(
        {
            "method": "textDocument/didOpen",
            "params": {
                "textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": text}
            },
        }
    )
    server.wait_diagnostics(1)
    times: list[float] = []
    rss_early = 0.0
    for i in range(edits):
        version = i + 2
        # one edit a keystroke makes: the dropout rate of the classifier changes
        edited = text.replace("dropout: 0.4", f"dropout: 0.{i % 9 + 1}")
        started = time.perf_counter()
        server.send(
            {
                "method": "textDocument/didChange",
                "params": {
                    "textDocument": {"uri": uri, "version": version},
                    "contentChanges": [{"text": edited}],
                },
            }
        )
        found = server.wait_diagnostics(version)
        times.append((time.perf_counter() - started) * 1000)
        assert not [d for d in found if d["severity"] == 1]
        if i + 1 == edits // 10:
            rss_early = server.rss_mib()
    rss_end = server.rss_mib()
    server.request("shutdown", {})
    server.send({"method": "exit", "params": {}})
    server.process.wait(timeout=30)
    times.sort()
    return {
        "edits": edits,
        "p50_ms": statistics.median(times),
        "p99_ms": times[int(len(times) * 0.99) - 1],
        "rss_after_tenth_mib": rss_early,
        "rss_after_all_mib": rss_end,
    }


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    print(json.dumps(relint(n), indent=2))
