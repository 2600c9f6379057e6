"""Where lint's time goes: cProfile of in-process `lint_file` on a generated spec (or a given one),
and the slowest imports of a whole `yarch lint` process (`python -X importtime`).

    .venv/bin/python bench/profile_lint.py [--nodes 10000 | --spec PATH] [--top 25]
    .venv/bin/python bench/profile_lint.py --imports [--top 25]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import BIN, ROOT, child_env
from specgen import chain_spec, units_for


def profile_lint(path: Path, top: int) -> None:
    from compiler import lint_file

    lint_file(ROOT / "specs" / "googlenet.yaml")  # warm up
    gc.collect()
    start = time.perf_counter()
    result = lint_file(path)
    plain = time.perf_counter() - start
    nodes = len(result.graph.order) if result.graph else 0
    del result
    gc.collect()
    gc.disable()
    start = time.perf_counter()
    lint_file(path)
    no_gc = time.perf_counter() - start
    gc.enable()
    gc.collect()
    profiler = cProfile.Profile()
    profiler.enable()
    lint_file(path)
    profiler.disable()
    print(f"{path}: {nodes:,} nodes; lint_file {plain:.3f} s ({plain / nodes * 1e6:.1f} us/node),")
    print(f"  {no_gc:.3f} s with the garbage collector off\n")
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(top)
        text = out.getvalue()
        print(f"--- by {order} ---")
        print(text[text.index("   ncalls") :])


def profile_imports(top: int) -> None:
    cmd = [str(BIN / "python"), "-X", "importtime", "-c", "import compiler.cli"]
    proc = subprocess.run(
        cmd, cwd=ROOT, env=child_env(), capture_output=True, text=True, check=True
    )
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cumulative_us, name = line.removeprefix("import time:").split("|")
        rows.append((int(cumulative_us), int(self_us), name.rstrip()))
    total = max(r[0] for r in rows)
    print(f"import compiler.cli: {total / 1e6:.3f} s (cumulative, self, module)")
    for cumulative, self_us, name in sorted(rows, reverse=True)[:top]:
        print(f"  {cumulative / 1e3:8.1f} ms {self_us / 1e3:8.1f} ms  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--spec", type=Path, help="profile this spec instead of a generated one")
    parser.add_argument("--imports", action="store_true", help="profile the imports instead")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    if args.imports:
        profile_imports(args.top)
        return
    if args.spec:
        profile_lint(args.spec, args.top)
        return
    with tempfile.TemporaryDirectory(prefix="yarch-profile-") as tmp:
        path = Path(tmp) / f"chain_{args.nodes}.yaml"
        path.write_text(chain_spec(units_for(args.nodes)), encoding="utf-8")
        profile_lint(path, args.top)


if __name__ == "__main__":
    sys.exit(main())
