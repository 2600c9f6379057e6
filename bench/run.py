"""yarch's benchmarks, in one run: lint against the torch route, lint scaling, a folder of specs,
build and forward overhead against hand-written PyTorch, GFLOP/s against a matmul's.

Prints a table of ratios (median of the rounds, with min and max, against the target) and the
measurements behind them, and writes both to bench/results.json (sorted keys). Contestants are
timed in rotating rounds, so that machine noise hits them alike. Not a test: CI times nothing.

    .venv/bin/python bench/run.py [--quick] [--only lint,scaling,linear,folder,build,forward,lsp]

`--only linear` runs only the rows of the paths that were quadratic (issue 13): undefined
references, a variant of a large base, building a long repeat, the largest accepted file.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from common import BENCH, Stat, machine, machine_busy, own_cpu

SECTIONS = ("lint", "scaling", "linear", "folder", "build", "forward", "optimize", "lsp")
SIZES = (1_000, 10_000, 100_000)


@dataclass
class Row:
    key: str
    label: str
    stat: Stat
    target: str = "-"
    holds: bool | None = None  # judged on the median; None: no target

    def as_dict(self) -> dict:
        return {"label": self.label, "target": self.target, "holds": self.holds} | (
            self.stat.as_dict()
        )


def _fmt(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.3f}"
    return f"{value:.4f}"


def render(title: str, rows: list[Row], with_target: bool) -> str:
    if not rows:  # `--only` a section that measures nothing of this kind
        return f"{title}: none in the sections run"
    width = max(len(r.label) for r in rows)
    head = f"{title:<{width}}  {'median':>9} {'min':>9} {'max':>9}  {'n':>2}"
    head += f"  {'target':<8} holds" if with_target else "  unit"
    lines = [head, "-" * len(head)]
    for r in rows:
        line = f"{r.label:<{width}}  " + " ".join(
            f"{_fmt(v):>9}" for v in (r.stat.median, r.stat.min, r.stat.max)
        )
        line += f"  {len(r.stat.values):>2}"
        if with_target:
            holds = "-" if r.holds is None else ("yes" if r.holds else "NO")
            line += f"  {r.target:<8} {holds}"
        else:
            line += f"  {r.stat.unit}"
        lines.append(line)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds: for trying changes")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (build, forward)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="forward clock")
    parser.add_argument("--output", type=Path, default=BENCH / "results.json")
    args = parser.parse_args()
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="yarch-bench-") as tmp:
        ratios, measured, settings = measure(args, only, Path(tmp))
    seconds = time.perf_counter() - started
    report(args, ratios, measured, settings, seconds)


class Section:
    """One section of the run: says what runs, and measures how busy the machine was with other
    processes meanwhile (CPU time of the whole machine, from /proc/stat, less this process's and
    its children's, as a share of all cores). On a 2-core machine other processes slow the
    threaded forward pass far more than they slow lint, so the reader needs this figure."""

    def __init__(self, settings: dict, name: str, message: str) -> None:
        self.settings, self.name = settings, name
        print(message, file=sys.stderr, flush=True)

    def __enter__(self) -> Section:
        self.start = (time.perf_counter(), machine_busy(), own_cpu())
        return self

    def __exit__(self, *exc: object) -> None:
        wall0, busy0, own0 = self.start
        wall = time.perf_counter() - wall0
        others = (machine_busy() - busy0) - (own_cpu() - own0)
        share = max(0.0, others) / (wall * len(os.sched_getaffinity(0)))
        self.settings.setdefault("other_load", {})[self.name] = round(share, 3)
        self.settings.setdefault("section_seconds", {})[self.name] = round(wall, 1)


def measure(args: argparse.Namespace, only: list[str], tmp: Path) -> tuple[list, list, dict]:
    q = args.quick
    ratios: list[Row] = []
    measured: list[Row] = []
    settings: dict = {"threads": args.threads, "quick": q, "sections": only}

    if {"lint", "scaling", "folder"} & set(only):
        import lint_speed

    if "lint" in only:
        rounds = 3 if q else 7
        settings["lint_rounds"] = rounds
        with Section(settings, "lint", f"lint vs torch route: {rounds} rounds ..."):
            w = lint_speed.whole_process(rounds)
        ratios += [
            Row(
                "lint_vs_torch_route",
                "torch route / yarch lint, whole process, wall",
                w["ratio_wall"],
                ">= 5",  # issue 14: networkx's import is the price of the design
                w["ratio_wall"].median >= 5,
            ),
            Row(
                "relint_googlenet",
                "GoogLeNet re-linted in-process (an editor's keystroke), s",
                w["relint"],
                "< 0.020",
                w["relint"].median < 0.020,
            ),
            Row(
                "lint_vs_torch_route_cpu",
                "torch route / yarch lint, whole process, CPU time",
                w["ratio_cpu"],
            ),
            Row(
                "summary_vs_torch_route",
                "torch route / yarch summary, whole process, wall",
                w["ratio_summary_wall"],
            ),
            Row(
                "floor_vs_torch_route",
                "torch route / click+yaml+pydantic floor (the ceiling)",
                w["ratio_floor_wall"],
            ),
        ]
        measured += [
            Row("lint_process", "yarch lint googlenet.yaml, whole process, wall", w["lint_wall"]),
            Row("lint_process_cpu", "yarch lint googlenet.yaml, whole process, CPU", w["lint_cpu"]),
            Row(
                "lint_imports",
                "  of which: import compiler.cli (in the process)",
                w["lint_imports"],
            ),
            Row(
                "networkx_import",
                "    of which: import networkx",
                w["networkx_import"],
            ),
            Row("lint_inprocess", "  of which: lint_file(googlenet.yaml)", w["lint_inprocess"]),
            Row("python_startup", "  of which: python -c pass", w["startup_wall"]),
            Row(
                "lint_floor",
                "floor: python, import click+yaml+pydantic, 1 model",
                w["floor_wall"],
            ),
            Row("torch_route", "torch route (import, build by hand, count), wall", w["torch_wall"]),
            Row("torch_route_cpu", "torch route, CPU", w["torch_cpu"]),
            Row(
                "summary_process",
                "yarch summary googlenet.yaml, whole process, wall",
                w["summary_wall"],
            ),
        ]

    if "scaling" in only:
        rounds = 1 if q else 3
        reps = {SIZES[0]: 3 if q else 5, SIZES[1]: 2 if q else 3}
        settings["scaling_rounds"] = rounds
        settings["scaling_reps"] = {str(k): v for k, v in reps.items()}
        with Section(settings, "scaling", f"lint scaling: {rounds} rounds ..."):
            sc = lint_speed.scaling(tmp, SIZES, rounds, reps)
        nodes = sc["nodes"]
        small, mid, large = SIZES
        settings["scaling_nodes"] = {str(k): v for k, v in nodes.items()}
        ratios += [
            Row(
                "lint_scaling_100k_1k",
                f"lint time per node, {nodes[large]:,} / {nodes[small]:,} nodes",
                sc["ratio"][large],
                "<= 1.5",
                sc["ratio"][large].median <= 1.5,
            ),
            Row(
                "lint_scaling_10k_1k",
                f"lint time per node, {nodes[mid]:,} / {nodes[small]:,} nodes",
                sc["ratio"][mid],
            ),
            Row(
                "lint_10k_seconds",
                f"lint of {nodes[mid]:,} nodes in-process, seconds",
                sc["seconds"][mid],
                "< 1 s",
                sc["seconds"][mid].median < 1,
            ),
        ]
        for size in SIZES:
            measured += [
                Row(
                    f"lint_{size}_seconds", f"lint_file, {nodes[size]:,} nodes", sc["seconds"][size]
                ),
                Row(f"lint_{size}_per_node", "  per node", sc["per_node"][size]),
            ]

    if "linear" in only:
        import linear

        rounds = 1 if q else 3
        settings["linear_rounds"] = rounds
        with Section(settings, "linear", f"quadratic paths, now linear: {rounds} rounds ..."):
            li = linear.measure(tmp, rounds, q)
            big = linear.largest(tmp, rounds)
        labels = {
            "undefined": "lint, undefined `from:` references",
            "undefined_params": "lint, undefined `$param`s among as many declared",
            "variant": "load + merge a variant changing 1/10 of its base's layers",
            "build_repeat": "compiler.build of a repeat",
        }
        for key, label in labels.items():
            small, large = li[key]["sizes"]
            ratio = li[key]["ratio"]
            ratios.append(
                Row(
                    f"linear_{key}",
                    f"{label}: time per item, {large:,} / {small:,}",
                    ratio,
                    "<= 2",
                    ratio.median <= 2,
                )
            )
            for n in (small, large):
                measured.append(Row(f"linear_{key}_{n}", f"{label}, {n:,}", li[key]["seconds"][n]))
        for shape, st in big.items():
            key = "largest_" + shape.replace(" ", "_")
            size = f"{st['bytes'].median / 2**20:.2f} MB"
            ratios += [
                Row(
                    f"{key}_wall",
                    f"yarch lint, largest accepted file ({shape}, {size}), wall s",
                    st["wall"],
                    "< 5",
                    st["wall"].median < 5,
                ),
                Row(
                    f"{key}_rss",
                    f"yarch lint, largest accepted file ({shape}), peak RSS MB",
                    st["rss"],
                    "< 1024",
                    st["rss"].median < 1024,
                ),
            ]
            measured.append(Row(f"{key}_cpu", f"yarch lint, {shape}, CPU s", st["cpu"]))

    if "folder" in only:
        copies, reps = 40, 1 if q else 3
        settings["folder_copies"] = copies
        with Section(settings, "folder", f"folder lint: {reps} runs ..."):
            fl = lint_speed.folder_lint(tmp, copies, reps)
        files = fl["files"]
        settings["folder_files"] = files
        ratios.append(
            Row(
                "folder_lint_cpu_per_wall",
                f"yarch lint DIR ({files} specs): CPU time / wall, {machine()['nproc']} cores",
                fl["cpu_per_wall"],
                ">= 1.6",
                fl["cpu_per_wall"].median >= 1.6,
            )
        )
        measured += [
            Row("folder_lint_wall", f"yarch lint DIR ({files} specs), wall", fl["wall"]),
            Row("folder_lint_cpu", f"yarch lint DIR ({files} specs), CPU", fl["cpu"]),
        ]

    if {"build", "forward", "optimize"} & set(only):
        import build_forward
        import torch

        torch.set_num_threads(args.threads)

    if "build" in only:
        rounds = 5 if q else 15
        settings["build_rounds"] = rounds
        with Section(settings, "build", f"build overhead: {rounds} rounds ..."):
            b = build_forward.build_overhead(rounds)
        ratios.append(
            Row(
                "build_vs_hand",
                "compiler.build(googlenet.yaml) / GoogLeNet() by hand",
                b["ratio"],
                "<= 1.10",
                b["ratio"].median <= 1.10,
            )
        )
        measured += [
            Row("build_seconds", "compiler.build(googlenet.yaml)", b["build"]),
            Row("build_lint_seconds", "  of which: lint_file(googlenet.yaml)", b["lint"]),
            Row("hand_construct_seconds", "GoogLeNet() by hand", b["hand"]),
        ]

    if "forward" in only:
        rounds, repeat = (3, 1) if q else (11, 2)
        settings |= {"forward_rounds": rounds, "forward_repeat": repeat}
        settings |= {"batch": args.batch, "forward_clock": args.clock}
        with Section(settings, "forward", f"forward: {rounds} rounds of {repeat} ..."):
            f = build_forward.forward_overhead(rounds, repeat, args.batch, args.clock)
        ratios += [
            Row(
                "forward_built_vs_hand",
                "forward, built / hand-written",
                f["ratio"],
                "<= 1.02",
                f["ratio"].median <= 1.02,
            ),
            Row(
                "forward_control",
                "forward, hand-written copy / hand-written (A/A)",
                f["control"],
            ),
            Row(
                "forward_gflops_vs_matmul",
                "GoogLeNet GFLOP/s / 2048x2048 matmul GFLOP/s",
                f["gflops_fraction"],
            ),
        ]
        shape = f"batch {args.batch}, {args.threads} threads, {args.clock}"
        measured += [
            Row("forward_built_seconds", f"forward, built ({shape})", f["built"]),
            Row("forward_hand_seconds", "forward, hand-written", f["hand"]),
            Row("gflops_built", "GoogLeNet GFLOP/s, built", f["gflops_built"]),
            Row("gflops_hand", "GoogLeNet GFLOP/s, hand-written", f["gflops_hand"]),
            Row("gflops_matmul", "2048x2048 float32 matmul GFLOP/s", f["gflops_matmul"]),
        ]
        settings["googlenet_macs"] = int(f["macs"].values[0])

    if "optimize" in only:
        rounds, repeat = (3, 1) if q else (9, 2)
        settings |= {"optimize_rounds": rounds, "optimize_repeat": repeat}
        with Section(settings, "optimize", f"optimize: {rounds} rounds of {repeat} ..."):
            o = build_forward.optimize_speedup(rounds, repeat, args.batch, args.clock)
        ratios += [
            Row(
                "optimize_speedup",
                "torchvision GoogLeNet, eager / compiler.optimize (throughput)",
                o["speedup"],
                ">= 1.5",
                o["speedup"].median >= 1.5,
            ),
            Row(
                "fusion_gain",
                "... without / with fuse_parallel_1x1 (horizontal fusion)",
                o["fusion_gain"],
            ),
        ]
        measured += [
            Row("optimize_eager_seconds", "torchvision GoogLeNet forward, eager", o["eager"]),
            Row("optimize_fast_seconds", "... optimised (compiler.optimize)", o["optimized"]),
            Row("optimize_unfused_seconds", "... optimised without fusion", o["unfused"]),
            Row("gflops_optimized", "GFLOP/s, optimised", o["gflops_optimized"]),
            Row("gflops_matmul_optimize", "2048x2048 float32 matmul GFLOP/s", o["gflops_matmul"]),
        ]
    if "lsp" in only:
        import lsp_speed

        edits = 1_000 if q else 10_000
        settings["lsp_edits"] = edits
        with Section(settings, "lsp", f"yarch lsp: {edits:,} edits of GoogLeNet ..."):
            r = lsp_speed.relint(edits)
        growth = r["rss_after_all_mib"] - r["rss_after_tenth_mib"]
        ratios += [
            Row(
                "lsp_relint_p50_ms",
                "yarch lsp, an edit of GoogLeNet to its diagnostics, p50 (ms)",
                Stat("ms", [r["p50_ms"]]),
                "<= 10",  # issue 18
                r["p50_ms"] <= 10,
            ),
            Row(
                "lsp_relint_p99_ms",
                "yarch lsp, an edit of GoogLeNet to its diagnostics, p99 (ms)",
                Stat("ms", [r["p99_ms"]]),
                "<= 30",
                r["p99_ms"] <= 30,
            ),
            Row(
                "lsp_memory_growth_mib",
                f"yarch lsp, resident memory from edit {edits // 10:,} to {edits:,} (MiB)",
                Stat("MiB", [growth]),
                "<= 5",  # flat: what one more lint's garbage may leave
                growth <= 5,
            ),
        ]
    return ratios, measured, settings


def report(
    args: argparse.Namespace, ratios: list[Row], measured: list[Row], settings: dict, seconds: float
) -> None:
    m = machine()
    title = (
        f"yarch benchmarks: {m['nproc']} cores, {m['cpu_model']}, torch {m['torch']}, "
        f"Python {m['python']}; {seconds:.0f} s"
    )
    print(title)
    load = ", ".join(f"{k} {v:.0%}" for k, v in settings.get("other_load", {}).items())
    print(f"other processes' share of the cores during each section: {load}")
    print()
    print(render("ratio", ratios, True))
    print()
    print(render("measurement", measured, False))
    results = {
        "command": "make bench  (.venv/bin/python bench/run.py)",
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": m,
        "settings": settings,
        "ratios": {r.key: r.as_dict() for r in ratios},
        "measurements": {r.key: r.as_dict() for r in measured},
        "seconds": round(seconds, 1),
    }
    args.output.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"\nwritten to {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
