"""The `yarch` command line. Exit codes: 0 success, 1 the spec has errors, 2 usage error or
unreadable input. A user mistake never shows a Python traceback."""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from . import draw
from .diagnostics import SourceCache, render_concise, render_github, render_json, render_text
from .files import spec_label, write_atomic
from .pipeline import Result, lint_file, lint_for_report
from .summary import FORMATS as SUMMARY_FORMATS
from .summary import render, summarize

FORMATS = ("text", "concise", "json", "github")
SPEC_SUFFIXES = (".yaml", ".yml")
MAX_SHOWN = 200


def parse_sets(values: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise click.BadParameter(f"`{item}` is not of the form key=value", param_hint="--set")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        out[key.strip()] = value
    return out


_set = click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a spec parameter (repeatable), e.g. --set num_classes=10.",
)
_scale = click.option(
    "--scale",
    metavar="NAME",
    expose_value=False,
    callback=lambda ctx, _param, value: ctx.meta.__setitem__("yarch.scale", value),
    help="The row of the spec's `scales` table to use [default: its first].",
)


def set_option(command: Any) -> Any:
    """`--set key=value` and `--scale NAME`, for every command that reads a spec."""
    return _set(_scale(command))


def chosen_scale() -> str | None:
    return click.get_current_context().meta.get("yarch.scale")


def find_specs(paths: tuple[str, ...]) -> list[tuple[Path, str]]:
    """Files as given, and `*.yaml` / `*.yml` under folders (recursively), in sorted order."""
    found: list[tuple[Path, str]] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            specs = sorted(p for p in path.rglob("*") if p.suffix in SPEC_SUFFIXES and p.is_file())
            if not specs:
                raise click.UsageError(f"no spec files (*.yaml) under `{given}`")
            found += [(p, str(p)) for p in specs]
        else:
            found.append((path, given))
    return found


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="yarch", prog_name="yarch")
def cli() -> None:
    """yarch: a declarative architecture-spec compiler for convolutional networks."""


@cli.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="How to print diagnostics.",
)
@click.option("--strict", is_flag=True, help="Warnings make the exit code 1 too.")
@click.option(
    "--all-scales",
    is_flag=True,
    help="Lint a spec with `scales` once for every row of the table.",
)
@set_option
def lint(
    paths: tuple[str, ...], fmt: str, strict: bool, all_scales: bool, sets: tuple[str, ...]
) -> None:
    """Check spec files and folders: schema, references, shapes and channels."""
    overrides = parse_sets(sets)
    files = find_specs(paths)
    if all_scales:
        results = []
        for path, display in files:
            # the first lint uses the table's first row and tells which rows there are
            first = lint_file(path, overrides, display)
            scales = [k for k, v in first.spec.scales.items() if v] if first.spec else []
            for scale in scales or [None]:
                if scale is None or scale == scales[0]:
                    result = first
                else:
                    result = lint_file(path, overrides, display, scale)
                if scale is not None:
                    result.diagnostics = [
                        d.with_note(f"with scale `{scale}`") for d in result.diagnostics
                    ]
                results.append(result)
    else:
        jobs = [(path, overrides, display, chosen_scale()) for path, display in files]
        results = lint_many(jobs)
    diagnostics = [d for r in results for d in r.diagnostics]
    if fmt == "json":
        click.echo(render_json(diagnostics, len({r.file for r in results})))
    elif fmt == "github":
        if diagnostics:
            click.echo(render_github(diagnostics))
    elif fmt == "concise":
        if diagnostics:
            click.echo(render_concise(diagnostics))
        click.echo(_summary(results))
    else:
        sources = SourceCache.of(*(r.sources for r in results))
        if diagnostics:
            click.echo(render_text(diagnostics, sources, MAX_SHOWN) + "\n")
        click.echo(_summary(results))
    sys.exit(exit_code(results, strict))


@cli.command("summary")
@click.argument("spec", metavar="SPEC")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(SUMMARY_FORMATS),
    default="text",
    show_default=True,
    help="How to print the summary.",
)
@click.option(
    "--depth",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Hide rows nested deeper than N (0: top-level layers and blocks); totals are kept.",
)
@set_option
def summary_command(spec: str, fmt: str, depth: int | None, sets: tuple[str, ...]) -> None:
    """Per-layer table of a spec: shapes, parameters and MACs, with totals."""
    result = lint_file(spec, parse_sets(sets), spec, chosen_scale())
    code = report(result)  # on stderr, so that stdout stays the summary (`> out.json`)
    if code or result.graph is None:
        sys.exit(code or 1)
    click.echo(render(summarize(result.graph), fmt, depth))


@cli.command("draw")
@click.argument("spec", metavar="SPEC")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Where to write the diagram [default: <spec name>.<format> in the current folder].",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(draw.FORMATS),
    default="svg",
    show_default=True,
    help="The file format; `dot` is the Graphviz source and needs no Graphviz.",
)
@click.option(
    "--depth",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Draw blocks nested deeper than N as one node (0: every top-level block).",
)
@click.option(
    "--rankdir",
    type=click.Choice(draw.RANKDIRS, case_sensitive=False),
    metavar="[TB|LR]",
    default="TB",
    show_default=True,
    help="Top to bottom or left to right.",
)
@click.option(
    "--no-fold",
    is_flag=True,
    help="Draw every activation as a node of its own, not inside the layer it follows.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=draw.DOT_TIMEOUT,
    show_default=True,
    metavar="SECONDS",
    help="Give up on Graphviz's layout after this long and write the DOT source instead.",
)
@click.option(
    "--max-nodes",
    type=click.IntRange(min=1),
    default=draw.MAX_NODES,
    show_default=True,
    metavar="N",
    help="Do not lay out diagrams of more nodes than this (write the DOT source instead).",
)
@set_option
def draw_command(
    spec: str,
    output: str | None,
    fmt: str,
    depth: int | None,
    rankdir: str,
    no_fold: bool,
    timeout: float,
    max_nodes: int,
    sets: tuple[str, ...],
) -> None:
    """Graphviz diagram of a spec: blocks as clusters, edges labelled with shapes.

    A spec with errors is still drawn, the layers they are about in red (exit code 1). Without
    Graphviz's `dot`, when it takes longer than --timeout, or for a diagram of more than
    --max-nodes nodes, the DOT source is written instead (exit code 2, except for --format dot).
    """
    result = lint_file(spec, parse_sets(sets), spec, chosen_scale())
    code = report(result)
    if code == 2 or result.graph is None or result.spec is None:
        sys.exit(code or 1)  # nothing to draw: the spec did not get as far as a graph
    source = draw.to_dot(
        result.graph,
        result.diagnostics,
        depth,
        rankdir.upper(),
        draw.caption_of(result.spec),
        fold_activations=not no_fold,
    )
    path = Path(output) if output else Path(f"{result.graph.name}.{fmt}")
    try:
        problem = draw.render(source, path, fmt, timeout, max_nodes)
    except OSError as exc:
        click.echo(f"yarch: cannot write `{path}`: {exc.strerror or exc}", err=True)
        sys.exit(2)
    if problem:
        click.echo(f"yarch: {problem}", err=True)
        sys.exit(2)
    click.echo(f"wrote {path}", err=True)
    sys.exit(code)


@cli.command("codegen")
@click.argument("spec", metavar="SPEC")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the code to FILE instead of printing it.",
)
@click.option(
    "--optimize",
    type=click.Choice(["inference"]),
    default=None,
    help="Print the optimised inference graph (batch norm folded, no dropout, channels-last)"
    " that compiler.optimize builds.",
)
@set_option
def codegen_command(
    spec: str, output: str | None, optimize: str | None, sets: tuple[str, ...]
) -> None:
    """Standalone PyTorch code for a spec: one file that imports only torch."""
    result = lint_file(spec, parse_sets(sets), spec, chosen_scale())
    code = report(result)
    if code or result.graph is None:
        sys.exit(code or 1)
    from .codegen import codegen_file  # Jinja2 is not needed for linting

    text = codegen_file(result, spec_label(Path(spec)), optimize)
    if output is None:
        click.echo(text, nl=False)
        return
    _write(Path(output), text.encode())
    click.echo(f"wrote {output}", err=True)


@cli.command("build")
@click.argument("specs", nargs=-1, metavar="[SPEC...]")
@click.option(
    "-o",
    "--out-dir",
    type=click.Path(file_okay=False),
    default="generated",
    show_default=True,
    help="Where to write <name>.py and <name>.svg.",
)
@click.option(
    "--depth",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    metavar="N",
    help="Depth of the summary printed for each spec.",
)
@set_option
def build_command(specs: tuple[str, ...], out_dir: str, depth: int, sets: tuple[str, ...]) -> None:
    """The main job: lint, print the summary, write generated/<name>.py and <name>.svg.

    With no SPEC, every spec under specs/ is built, and files in the output folder that no
    spec produced any more are removed; specs with errors are reported, not built (exit 1).
    """
    from .codegen import codegen_file  # Jinja2 is not needed for linting

    out = Path(out_dir)
    paths = find_specs(specs or ("specs",))
    overrides = parse_sets(sets)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.UsageError(f"cannot create `{out}`: {exc.strerror or exc}") from None
    written: list[Path] = []
    broken: list[str] = []
    code = 0
    for path, display in paths:
        result = lint_file(path, overrides, display, chosen_scale())
        status = report(result)
        if status or result.graph is None or result.spec is None:
            broken.append(display)
            code = max(code, status or 1)
            continue
        click.echo(render(summarize(result.graph), "text", depth))
        stem = path.stem
        python = out / f"{stem}.py"
        _write(python, codegen_file(result, spec_label(path)).encode())
        diagram = out / f"{stem}.svg"
        dot = draw.to_dot(result.graph, result.diagnostics, caption=draw.caption_of(result.spec))
        problem = draw.render(dot, diagram, "svg")
        written.append(python)
        if problem:
            click.echo(f"yarch: {problem}", err=True)
            code = 2
        else:
            written.append(diagram)
        click.echo(f"wrote {python} and {diagram}\n")
    if not specs:  # the whole library: files no spec produces any more are stale
        for stale in sorted({*out.glob("*.py"), *out.glob("*.svg")} - set(written)):
            stale.unlink()
            click.echo(f"removed {stale} (no spec produces it any more)")
    built = len(paths) - len(broken)
    click.echo(f"Built {_plural(built, 'spec')} into {out}/.")
    if broken:
        click.echo(f"Not built, with errors: {', '.join(broken)}.")
    sys.exit(code)


@cli.command("diff")
@click.argument("spec_a", metavar="A")
@click.argument("spec_b", metavar="B")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("text", "json")),
    default="text",
    show_default=True,
    help="How to print the differences.",
)
@set_option
def diff_command(spec_a: str, spec_b: str, fmt: str, sets: tuple[str, ...]) -> None:
    """What differs between two specs after resolution (parameters substituted, blocks
    expanded): nodes added, removed and changed, the shapes that changed as a consequence,
    parameters and MACs per node, per block instance and in total.

    The same --set applies to both. Exit code 0 when both resolve, whether or not they
    differ; 1 when either has errors (its diagnostics on stderr); 2 when one cannot be read.
    """
    from .diff import diff_graphs, render_diff

    overrides = parse_sets(sets)
    results = [lint_file(spec, overrides, spec, chosen_scale()) for spec in (spec_a, spec_b)]
    codes = [report(result) for result in results]  # on stderr: stdout stays the diff
    a, b = (result.graph for result in results)
    if any(codes) or a is None or b is None:
        sys.exit(max(codes) or 1)
    click.echo(render_diff(diff_graphs(a, b, spec_a, spec_b), fmt))


@cli.command("schema")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the schema to FILE instead of printing it.",
)
def schema_command(output: str | None) -> None:
    """The JSON Schema of the spec language, for editors (yaml-language-server)."""
    from .spec_schema import render_schema

    text = render_schema()
    if output is None:
        click.echo(text, nl=False)
        return
    _write(Path(output), text.encode())
    click.echo(f"wrote {output}", err=True)


PARALLEL_FROM = 8  # files: below this, starting worker processes costs more than it saves


def lint_many(jobs: list[tuple[Any, ...]]) -> list[Result]:
    """Lint many files on every core (processes forked after the imports), in order."""
    workers = min(os.cpu_count() or 1, 8)
    if len(jobs) >= PARALLEL_FROM and workers >= 2:
        import multiprocessing as mp  # here, not at the top: a one-file lint does not need it
        from concurrent.futures import ProcessPoolExecutor

        if "fork" in mp.get_all_start_methods():
            chunk = max(1, len(jobs) // (4 * workers))
            with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
                return list(pool.map(lint_for_report, jobs, chunksize=chunk))
    return [lint_for_report(job) for job in jobs]


def report(result: Result) -> int:
    """Print a spec's diagnostics on stderr, as lint's text format; return the exit code."""
    code = exit_code([result])
    if result.diagnostics:
        sources = SourceCache.of(result.sources)
        click.echo(render_text(result.diagnostics, sources, MAX_SHOWN) + "\n", err=True)
        if code:
            click.echo(_summary([result]), err=True)
    return code


def _write(path: Path, data: bytes) -> None:
    try:
        write_atomic(path, data)
    except OSError as exc:
        click.echo(f"yarch: cannot write `{path}`: {exc.strerror or exc}", err=True)
        sys.exit(2)


def exit_code(results: list[Result], strict: bool = False) -> int:
    if any(r.unreadable for r in results):
        return 2
    if any(r.errors for r in results) or (strict and any(r.warnings for r in results)):
        return 1
    return 0


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _summary(results: list[Result]) -> str:
    errors = sum(r.errors for r in results)
    warnings = sum(r.warnings for r in results)
    files = _plural(len({r.file for r in results}), "file")
    if not errors and not warnings:
        return f"All checks passed ({files})."
    bad = len({r.file for r in results if r.diagnostics})
    return (
        f"Found {_plural(errors, 'error')} and {_plural(warnings, 'warning')} in {bad} of {files}."
    )


def main() -> None:
    """Console entry point. A bug in yarch is reported in one line, not as a traceback
    (set YARCH_DEBUG=1 to see the traceback)."""
    try:
        cli(standalone_mode=True)
    except KeyboardInterrupt:  # pragma: no cover - interactive
        sys.exit(130)
    except Exception as exc:  # pragma: no cover - only reached through a bug
        if os.environ.get("YARCH_DEBUG"):
            raise
        click.echo(
            f"yarch: internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in yarch, not in your spec; please report it with the spec "
            "(YARCH_DEBUG=1 shows the traceback).",
            err=True,
        )
        sys.exit(2)
    finally:
        # the process ends next: spare the interpreter's last collection from walking every
        # object pydantic and the spec left behind (about 25 ms of a 0.25 s `yarch lint`)
        gc.freeze()
