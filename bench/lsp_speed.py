"""`yarch lsp` in a running server: the time from an edit of GoogLeNet to its new diagnostics
(re-lint, conversion, JSON-RPC both ways), and the server's memory across many edits.

The server runs as an editor starts it (`python -m compiler lsp`, stdio) with its debounce set
to 0 through `initializationOptions`, so what is timed is the lint, not the wait.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "googlenet.yaml"
sys.path.insert(0, str(ROOT))

from tests.lspclient import Client  # noqa: E402 (the client the tests drive the server with)


def relint(edits: int = 10_000) -> dict:
    """Milliseconds from each edit to its diagnostics (p50, p99) and the server's resident
    memory after the first tenth of the edits and after all of them."""
    server = Client()
    server.initialize({"debounce": 0})
    uri = server.open(SPEC)
    text = SPEC.read_text()
    server.diagnostics(uri, 1)
    times: list[float] = []
    rss_early = 0.0
    for i in range(edits):
        version = i + 2
        # one edit a keystroke makes: the dropout rate of the classifier changes
        edited = text.replace("dropout: 0.4", f"dropout: 0.{i % 9 + 1}")
        started = time.perf_counter()
        server.change(uri, version, edited)
        found = server.diagnostics(uri, version)
        times.append((time.perf_counter() - started) * 1000)
        assert not [d for d in found if d["severity"] == 1]
        if i + 1 == edits // 10:
            rss_early = server.rss_mib()
    rss_end = server.rss_mib()
    server.close()
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
