"""Lint speed: whole-process `yarch lint` against the torch route, scaling with the number of
nodes, and a folder of many specs.
"""

from __future__ import annotations

import gc
import json
import shutil
import sys
import time
from pathlib import Path

from common import BENCH, BIN, ROOT, Stat, child_env, rotate, run_process
from specgen import chain_spec, units_for

from compiler import lint_file
from compiler.summary import summarize

GOOGLENET = "specs/googlenet.yaml"

# The least a process pays that parses YAML, has a click command line and validates with
# pydantic, as the design asks of lint: the three imports and one model (whose first build
# imports the rest of pydantic, its plugin lookup included). No spec is read.
FLOOR = """\
import click, yaml
from pydantic import BaseModel
class Layer(BaseModel):
    out: int
Layer.model_validate({"out": 64})
"""

# A child that says where its time goes: importing the CLI (networkx first, to see its share),
# then linting in-process, then linting again as an editor would after each edit (the median of
# 21 re-lints: the ops' validators and the caches are warm).
SPLIT = """\
import json, statistics, time
t0 = time.perf_counter()
import networkx
tn = time.perf_counter()
import compiler.cli
t1 = time.perf_counter()
from compiler import lint_file
r = lint_file("specs/googlenet.yaml")
t2 = time.perf_counter()
assert not r.errors
again = []
for _ in range(21):
    start = time.perf_counter()
    lint_file("specs/googlenet.yaml")
    again.append(time.perf_counter() - start)
print(json.dumps({"imports": t1 - t0, "networkx": tn - t0, "lint": t2 - t1,
                  "relint": statistics.median(again)}))
"""


def whole_process(rounds: int) -> dict[str, Stat]:
    """`yarch lint specs/googlenet.yaml` and the torch route, each as a fresh process, in
    rotating rounds; plus, for reading the figures, `yarch summary`, a bare interpreter and
    the lint process's own split between imports and linting."""
    env = child_env()
    python = str(BIN / "python")
    commands = {
        "lint": [str(BIN / "yarch"), "lint", GOOGLENET],
        "torch": [python, str(BENCH / "torch_route.py")],
        "summary": [str(BIN / "yarch"), "summary", GOOGLENET, "--format", "json"],
        "startup": [python, "-c", "pass"],
        "floor": [python, "-c", FLOOR],
        "split": [python, "-c", SPLIT],
    }
    expected_params = summarize(lint_file(ROOT / GOOGLENET).graph).total_params
    for name, cmd in commands.items():  # warm up: page cache, __pycache__; check the outputs
        out = run_process(cmd, env)
        if out.returncode:
            raise RuntimeError(f"{name}: exit code {out.returncode}")
        if name == "torch" and int(out.stdout) != expected_params:
            raise RuntimeError(f"the torch route counts {out.stdout} parameters")
        if name == "summary" and json.loads(out.stdout)["total_params"] != expected_params:
            raise RuntimeError("yarch summary counts other parameters")
    s = {
        "lint_wall": Stat("s"),
        "lint_cpu": Stat("s"),
        "torch_wall": Stat("s"),
        "torch_cpu": Stat("s"),
        "summary_wall": Stat("s"),
        "startup_wall": Stat("s"),
        "floor_wall": Stat("s"),
        "ratio_floor_wall": Stat("x"),
        "lint_imports": Stat("s"),
        "lint_inprocess": Stat("s"),
        "networkx_import": Stat("s"),
        "relint": Stat("s"),
        "ratio_wall": Stat("x"),
        "ratio_cpu": Stat("x"),
        "ratio_summary_wall": Stat("x"),
    }
    for i in range(rounds):
        times = {}
        for name in rotate(list(commands), i):
            times[name] = run_process(commands[name], env)
        s["lint_wall"].add(times["lint"].wall)
        s["lint_cpu"].add(times["lint"].cpu)
        s["torch_wall"].add(times["torch"].wall)
        s["torch_cpu"].add(times["torch"].cpu)
        s["summary_wall"].add(times["summary"].wall)
        s["startup_wall"].add(times["startup"].wall)
        s["floor_wall"].add(times["floor"].wall)
        s["ratio_floor_wall"].add(times["torch"].wall / times["floor"].wall)
        split = json.loads(times["split"].stdout)
        s["lint_imports"].add(split["imports"])
        s["lint_inprocess"].add(split["lint"])
        s["networkx_import"].add(split["networkx"])
        s["relint"].add(split["relint"])
        s["ratio_wall"].add(times["torch"].wall / times["lint"].wall)
        s["ratio_cpu"].add(times["torch"].cpu / times["lint"].cpu)
        s["ratio_summary_wall"].add(times["torch"].wall / times["summary"].wall)
    return s


def _timed_lint(path: Path) -> tuple[float, int]:
    gc.collect()
    start = time.perf_counter()
    result = lint_file(path)
    seconds = time.perf_counter() - start
    if result.errors or result.graph is None:
        raise RuntimeError(f"{path} has errors: {result.diagnostics[:3]}")
    nodes = len(result.graph.order)
    del result
    gc.collect()
    return seconds, nodes


def scaling(tmp: Path, sizes: tuple[int, ...], rounds: int, reps: dict[int, int]) -> dict:
    """In-process `lint_file` of generated specs of about `sizes` nodes. Each round lints every
    size (the smaller ones `reps[size]` times, their median standing for the round), so that a
    round's per-node ratio compares measurements taken under the same machine load."""
    if "torch" in sys.modules:  # its objects would slow every full garbage collection
        raise RuntimeError("measure lint scaling in a process that has not imported torch")
    paths = {}
    for size in sizes:
        path = tmp / f"chain_{size}.yaml"
        path.write_text(chain_spec(units_for(size)), encoding="utf-8")
        paths[size] = path
    _timed_lint(ROOT / GOOGLENET)  # warm up
    _timed_lint(paths[sizes[0]])
    nodes: dict[int, int] = {}
    seconds = {size: Stat("s") for size in sizes}
    per_node = {size: Stat("us/node") for size in sizes}
    ratio = {size: Stat("x") for size in sizes[1:]}
    for _ in range(rounds):
        round_per_node = {}
        for size in sizes:
            round_times = []
            for _ in range(reps.get(size, 1)):
                t, nodes[size] = _timed_lint(paths[size])
                round_times.append(t)
                seconds[size].add(t)
                per_node[size].add(t / nodes[size] * 1e6)
            round_per_node[size] = sorted(round_times)[len(round_times) // 2] / nodes[size]
        for size in sizes[1:]:
            ratio[size].add(round_per_node[size] / round_per_node[sizes[0]])
    return {"nodes": nodes, "seconds": seconds, "per_node": per_node, "ratio": ratio}


def library_copies(tmp: Path, copies: int) -> tuple[Path, int]:
    """`copies` copies of the spec library (`specs/*.yaml` and `specs/variants/`, not the
    blog posts' specs with their deliberate mistakes), each in its own folder, a project as
    specs/ is (its `yarch.toml`: a variant's `extends: ../base.yaml` may not leave its
    project)."""
    folder = tmp / "library"
    files = 0
    for k in range(copies):
        dest = folder / f"copy{k:02d}"
        (dest / "variants").mkdir(parents=True)
        shutil.copy(ROOT / "specs" / "yarch.toml", dest / "yarch.toml")
        for pattern, sub in (("*.yaml", ""), ("variants/*.yaml", "variants")):
            for spec in sorted((ROOT / "specs").glob(pattern)):
                shutil.copy(spec, dest / sub / spec.name)
                files += 1
    return folder, files


def folder_lint(tmp: Path, copies: int, reps: int) -> dict:
    """Whole-process `yarch lint DIR` of many specs: wall time, CPU time, CPU / wall."""
    folder, files = library_copies(tmp, copies)
    cmd = [str(BIN / "yarch"), "lint", "."]
    env = child_env()
    out = run_process(cmd, env, folder)  # warm up, and check that the copies lint clean
    if out.returncode or f"({files} files)" not in out.stdout:
        raise RuntimeError(f"yarch lint {folder}: {out.stdout[-500:]}")
    wall, cpu, util = Stat("s"), Stat("s"), Stat("x")
    for _ in range(reps):
        t = run_process(cmd, env, folder)
        wall.add(t.wall)
        cpu.add(t.cpu)
        util.add(t.cpu / t.wall)
    return {"files": files, "wall": wall, "cpu": cpu, "cpu_per_wall": util}


if __name__ == "__main__":
    sys.exit("run bench/run.py")
