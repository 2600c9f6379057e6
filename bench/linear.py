"""Paths that were quadratic, now linear (yarch issue 13): undefined references, a variant of a
large base, building a long repeat, and the largest file the loader accepts.

Each measurement runs in a fresh process (`python -c`), so that one size's garbage or peak
memory does not reach the next; the child reports its own seconds, and its peak RSS comes from
`getrusage` of a wrapper that waited for it. Scaling shows as the time per item at the large
size over the time per item at the small one: about 1 when linear, 10 or 100 when quadratic.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from common import BIN, ROOT, Stat, child_env

from compiler.loader import MAX_BYTES, MAX_NODES

DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _name(i: int) -> str:
    """A short name (base 36): 100,000 references must fit in the file cap."""
    out = ""
    while True:
        i, r = divmod(i, 36)
        out = DIGITS[r] + out
        if not i:
            return out


def undefined_spec(n: int) -> str:
    """`n` layers, each `from:` a name no layer has."""
    rows = "".join(f"- bn: {{from: u{_name(i)}}}\n" for i in range(n))
    return f"name: undefined_{n}\ninput: [4, 8, 8]\nlayers:\n{rows}"


def undefined_params_spec(n: int) -> str:
    """`n` declared parameters and `n` layers, each using a parameter nobody declared."""
    params = "".join(f"  p{_name(i)}: 4\n" for i in range(n))
    rows = "".join(f"- conv: {{out: $q{_name(i)}, kernel: 1}}\n" for i in range(n))
    return f"name: params_{n}\ninput: [4, 8, 8]\nparams:\n{params}layers:\n{rows}"


def base_spec(n: int) -> str:
    rows = "".join(f"  - relu: {{name: r{i}}}\n" for i in range(n))
    return f"name: base_{n}\ninput: [4, 8, 8]\nlayers:\n{rows}"


def variant_spec(n: int) -> str:
    """Changes to a tenth of the base's layers: modified, replaced, deleted, inserted after."""
    step = 10
    targets = range(0, n, step)
    modify = "".join(f"  r{i}: {{expect: [4, 8, 8]}}\n" for i in targets)
    replace = "".join(f"  r{i + 1}: gelu\n" for i in targets)
    delete = "".join(f"  - r{i + 2}\n" for i in targets)
    insert = "".join(f"  - after: r{i + 3}\n    layers: [relu]\n" for i in targets)
    return (
        f"extends: base_{n}.yaml\nname: variant_{n}\nmodify:\n{modify}replace:\n{replace}"
        f"delete:\n{delete}insert:\n{insert}"
    )


def repeat_spec(n: int) -> str:
    """`n` layers as repeats (a repeat may have at most 100,000)."""
    rows = "".join(
        f"  - relu: {{name: r{i}, repeat: {min(100_000, n - i * 100_000)}}}\n"
        for i in range((n + 99_999) // 100_000)
    )
    return f"name: repeat_{n}\ninput: [4, 8, 8]\nlayers:\n{rows}"


def largest_files() -> dict[str, str]:
    """The worst shapes of file at the size cap, and aliases up to the node cap."""
    head = "name: largest\ninput: [4, 8, 8]\nlayers: [relu]\nx: ["
    fill = MAX_BYTES - len(head) - 3
    zeros = head + "0," * (fill // 2) + "0]\n"
    head_bn = "name: largest\ninput: [4, 8, 8]\nlayers: ["
    bn = head_bn + "bn," * ((MAX_BYTES - len(head_bn) - 4) // 3) + "bn]\n"
    maps = head + "{a: 1}," * (fill // 7) + "0]\n"
    width = 1000
    copies = MAX_NODES // (width + 1) - 1
    alias = (
        "name: largest\ninput: [4, 8, 8]\nlayers: [relu]\n"
        f"x: &a [{','.join(['0'] * width)}]\ny: [{','.join(['*a'] * copies)}]\n"
    )
    return {"flow list of numbers": zeros, "flow list of layers": bn, "flow maps": maps,
            "aliases": alias}  # fmt: skip


CHILD = """\
import json, sys, time
from pathlib import Path
kind, path = sys.argv[1], sys.argv[2]
# what every size pays once (lazy imports, torch's), outside the timing: the per-item ratio
# is then of the work that grows with the size
from compiler import lint_text
lint_text("input: [4, 8, 8]\\nlayers: [relu, {conv: {out: 4, kernel: 1}}]\\n")
if kind == "build":
    import compiler.torchbuild
t0 = time.perf_counter()
if kind == "lint":
    from compiler import lint_file
    r = lint_file(path)
    out = {"errors": r.errors}
elif kind == "merge":  # as lint_file does it: without the cyclic collector
    from compiler.gcpause import no_cyclic_gc
    from compiler.pipeline import _check_variant
    from compiler.variants import load_spec
    with no_cyclic_gc():
        doc, problems = load_spec(Path(path), path, _check_variant)
    out = {"errors": len(problems)}
else:
    import compiler
    m = compiler.build(path)
    out = {"modules": sum(1 for _ in m.modules())}
out["seconds"] = time.perf_counter() - t0
print(json.dumps(out))
"""

# runs a command, then says how long it took and the peak RSS of the one child it waited for
WRAP = """\
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
p = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - t0
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall": wall, "cpu": u.ru_utime + u.ru_stime, "rss": u.ru_maxrss * 1024,
                  "rc": p.returncode, "stdout": p.stdout, "stderr": p.stderr[-2000:]}))
"""


def _run(cmd: list[str]) -> dict:
    python = str(BIN / "python")
    out = subprocess.run(
        [python, "-c", WRAP, *cmd], cwd=ROOT, env=child_env(), capture_output=True, text=True
    )
    result = json.loads(out.stdout)
    if result["rc"] not in (0, 1):
        raise RuntimeError(f"{' '.join(cmd)} failed ({result['rc']}):\n{result['stderr']}")
    return result


def _child(kind: str, path: Path) -> float:
    """Seconds of the step itself (imports excluded), in a fresh process."""
    result = _run([str(BIN / "python"), "-c", CHILD, kind, str(path)])
    if result["rc"] != 0:
        raise RuntimeError(f"{kind} {path} failed:\n{result['stderr']}")
    return json.loads(result["stdout"])["seconds"]


def measure(tmp: Path, rounds: int, quick: bool) -> dict[str, dict]:
    """Per case: the seconds at each size, the per-item ratio large/small, and the sizes."""
    cases = {
        "undefined": ("lint", undefined_spec, (1_000, 100_000)),
        "undefined_params": ("lint", undefined_params_spec, (500, 5_000 if quick else 10_000)),
        "variant": ("merge", variant_spec, (1_000, 10_000)),
        "build_repeat": ("build", repeat_spec, (2_000, 150_000)),  # the most a spec may have
    }
    out: dict[str, dict] = {}
    for key, (kind, make, sizes) in cases.items():
        seconds = {n: Stat("s") for n in sizes}
        for n in sizes:
            path = tmp / f"{key}_{n}.yaml"
            if kind == "merge":
                (tmp / f"base_{n}.yaml").write_text(base_spec(n))
            path.write_text(make(n))
            assert path.stat().st_size <= MAX_BYTES, (key, n, path.stat().st_size)
        for _ in range(rounds):
            for n in sizes:
                seconds[n].add(_child(kind, tmp / f"{key}_{n}.yaml"))
        small, large = sizes
        ratio = Stat("x")
        for a, b in zip(seconds[small].values, seconds[large].values, strict=True):
            ratio.add((b / large) / (a / small))
        out[key] = {"sizes": sizes, "seconds": seconds, "ratio": ratio}
        print(f"  {key}: done", file=sys.stderr, flush=True)
    return out


def largest(tmp: Path, rounds: int) -> dict[str, dict[str, Stat]]:
    """`yarch lint FILE`, whole process, for each worst shape at the caps."""
    out = {}
    for shape, text in largest_files().items():
        path = tmp / f"largest_{shape.replace(' ', '_')}.yaml"
        path.write_text(text)
        stats = {"wall": Stat("s"), "cpu": Stat("s"), "rss": Stat("MB"), "bytes": Stat("B")}
        for _ in range(rounds):
            r = _run([str(BIN / "yarch"), "lint", "--format", "concise", str(path)])
            stats["wall"].add(r["wall"])
            stats["cpu"].add(r["cpu"])
            stats["rss"].add(r["rss"] / 2**20)
            stats["bytes"].add(path.stat().st_size)
        out[shape] = stats
    return out
