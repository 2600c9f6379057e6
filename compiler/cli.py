"""The `yarch` command line. Exit codes: 0 success, 1 the spec has errors, 2 usage error or
unreadable input. A user mistake never shows a Python traceback."""

from __future__ import annotations

import contextlib
import gc
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from . import draw
from .config import Config, ConfigError, Configs
from .diagnostics import (
    SourceCache,
    colorize,
    render_concise,
    render_github,
    render_json,
    render_text,
    terminal_safe,
)
from .export import DEFAULT_OPSET, OPSETS
from .files import (
    folder_lock,
    generated_from,
    inside,
    matches_glob,
    project_root,
    regular_file_problem,
    spec_label,
    write_atomic,
)
from .loader import MAX_BYTES, LoadError, decode_input, load_value
from .params import CommandLineValues
from .pipeline import Job, Result, lint_for_report, lint_safely, not_a_spec
from .sizes import FLOAT_DTYPES
from .summary import DEFAULT_DEPTH, OPTIMIZERS, render, summarize
from .summary import FORMATS as SUMMARY_FORMATS
from .variants import extends_of, locate_base

FORMATS = ("text", "concise", "json", "github", "sarif")
SPEC_SUFFIXES = (".yaml", ".yml")
MAX_SHOWN = 200
# Folders `yarch lint DIR` never descends into, besides hidden ones and what git ignores.
SKIPPED_FOLDERS = frozenset({"node_modules", "venv", "__pycache__", "site-packages"})
BUILD_LOCK_WAIT = 600.0  # seconds a build waits for another one writing to the same folder


def echo(text: str = "", err: bool = False, nl: bool = True) -> None:
    """`click.echo`, with every character a terminal would act on escaped: file names and
    values from a spec reach the terminal."""
    click.echo(terminal_safe(text), err=err, nl=nl)


def use_color() -> bool:
    """Colour on a terminal, as ruff does: FORCE_COLOR (non-empty) forces it, NO_COLOR
    (non-empty, https://no-color.org) turns it off, else standard output being a TTY decides."""
    if os.environ.get("FORCE_COLOR"):
        return True
    if os.environ.get("NO_COLOR"):
        return False
    return sys.stdout.isatty()


def parse_sets(values: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = CommandLineValues()
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise click.BadParameter(
                terminal_safe(f"`{item[:100]}` is not of the form key=value"), param_hint="--set"
            )
        try:
            value = load_value(raw, f"--set {key.strip()}") if raw.strip() else ""
        except LoadError as exc:
            d = exc.diagnostic
            raise click.BadParameter(
                terminal_safe(f"`{key.strip()}`: {d.message}" + (f" ({d.help})" if d.help else "")),
                param_hint="--set",
            ) from None
        out[key.strip()] = value
    return out


def _seconds(_ctx: Any, param: click.Parameter, value: float) -> float:
    if not math.isfinite(value) or not 0 < value <= 86_400:
        raise click.BadParameter("must be a number of seconds above 0 and at most 86400")
    return value


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


# what a build of the library (no SPEC) leaves out: the zoo is built on demand
LIBRARY_EXCLUDE = ("zoo/*",)


def find_specs(
    paths: tuple[str, ...], exclude: tuple[str, ...] = (), configs: Configs | None = None
) -> list[tuple[Path, str, bool]]:
    """Files as given, and the specs under folders, in sorted order: (path, how diagnostics
    name it, whether it was found in a folder rather than named)."""
    found: list[tuple[Path, str, bool]] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            specs = discover(path, exclude, configs)
            if not specs:
                raise click.UsageError(terminal_safe(f"no spec files (*.yaml) under `{given}`"))
            found += [(p, str(p), True) for p in specs]
        else:
            found.append((path, given, False))
    return found


def variants_of(
    files: list[tuple[Path, str, bool]],
    exclude: tuple[str, ...] = (),
    configs: Configs | None = None,
) -> list[tuple[Path, str, bool]]:
    """The specs of the projects of `files` that extend one of them, directly or through other
    variants, and are not among them: a base's change is checked where it is used."""
    given = {path.resolve() for path, _, _ in files}
    roots = {project_root(path.resolve().parent) for path, _, _ in files}
    extends: dict[Path, list[Path]] = {}  # base -> the specs that extend it
    for root in sorted(roots):
        for spec in discover(root, exclude, configs):
            try:
                text = spec.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            found = extends_of(text, str(spec))
            if found is None:
                continue
            try:
                base = locate_base(spec, found[0])[0].resolve()
            except (OSError, RuntimeError, ValueError):  # a loop, a NUL: lint says so
                continue
            extends.setdefault(base, []).append(spec)
    out: list[tuple[Path, str, bool]] = []
    seen = set(given)
    todo = sorted(given)
    while todo:
        for spec in extends.get(todo.pop(0), []):
            if spec.resolve() not in seen:
                seen.add(spec.resolve())
                todo.append(spec.resolve())
                try:  # named as a path given from here would be
                    shown = str(spec.relative_to(Path.cwd()))
                except ValueError:
                    shown = str(spec)
                out.append((spec, shown, True))
    return out


def discover(
    folder: Path, exclude: tuple[str, ...] = (), configs: Configs | None = None
) -> list[Path]:
    """The `*.yaml` and `*.yml` files under `folder`, except: what git ignores, hidden files and
    folders, virtual environments and `node_modules`, paths matching an `exclude` glob, and
    files that are not regular or whose symbolic links lead out of the project (the same rule
    as for `extends:`: its git repository, else its `pyproject.toml` folder). A file with a
    configuration (`configs`) is taken when its `include` and `exclude` globs say so instead
    of by its suffix."""
    root = project_root(folder)
    listed = _git_files(folder)
    if listed is None:
        listed = []
        for dirpath, dirnames, filenames in os.walk(folder):  # symbolic links not followed
            dirnames[:] = [d for d in dirnames if not _skipped_folder(Path(dirpath) / d)]
            listed += [Path(dirpath) / name for name in filenames]
    specs = []
    for path in listed:
        relative = path.relative_to(folder)
        if any(part.startswith(".") or part in SKIPPED_FOLDERS for part in relative.parts):
            continue
        config = configs.of(path) if configs is not None else None
        if not (config.included(path) if config is not None else path.suffix in SPEC_SUFFIXES):
            continue
        if matches_glob(relative, exclude) or regular_file_problem(path) or not path.is_file():
            continue
        if not inside(path, root):
            echo(f"yarch: skipped `{path}`: it leads outside the project folder", err=True)
            continue
        specs.append(path)
    return sorted(specs)


def _skipped_folder(path: Path) -> bool:
    return (
        path.name.startswith(".")
        or path.name in SKIPPED_FOLDERS
        or (path / "pyvenv.cfg").is_file()  # a virtual environment by any name
    )


def _git_files(folder: Path) -> list[Path] | None:
    """The files under `folder` that git does not ignore (tracked, or untracked and not
    ignored), or None outside a git repository or without git."""
    git = shutil.which("git")
    if git is None:
        return None
    try:
        done = subprocess.run(
            [git, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "."],
            cwd=folder,
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    names = sorted({n for n in done.stdout.decode("utf-8", "surrogateescape").split("\0") if n})
    out = []
    for name in names:
        path = folder / name
        # git lists a deleted tracked file too; a virtual environment committed by mistake
        # is still a virtual environment
        if not any(_skipped_folder(folder / p) for p in Path(name).parents if p.parts):
            out.append(path)
    return out


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="yarch", prog_name="yarch")
def cli() -> None:
    """yarch: a declarative architecture-spec compiler for convolutional networks."""


@cli.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...", type=click.Path())
@click.option(
    "--format",
    "--output-format",  # ruff's and mypy's name
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
@click.option(
    "--exclude",
    multiple=True,
    metavar="GLOB",
    help="Skip files and folders found in a folder whose path or name matches GLOB"
    " (repeatable), e.g. --exclude 'old/*' --exclude '*_wip.yaml'.",
)
@click.option(
    "--stdin-filename",
    metavar="PATH",
    help="With `-`: the file the text on standard input stands for, named in diagnostics; "
    "its `extends:` is relative to that file's folder.",
)
@click.option(
    "--isolated",
    is_flag=True,
    help="Ignore configuration files (`[tool.yarch]` in pyproject.toml, yarch.toml).",
)
@click.option(
    "--variants",
    is_flag=True,
    help="Also lint the specs of the project that extend the given ones, directly or through"
    " other variants (a base's change can break them: the pre-commit hook uses this).",
)
@set_option
def lint(
    paths: tuple[str, ...],
    fmt: str,
    strict: bool,
    all_scales: bool,
    exclude: tuple[str, ...],
    stdin_filename: str | None,
    isolated: bool,
    variants: bool,
    sets: tuple[str, ...],
) -> None:
    """Check spec files and folders: schema, references, shapes and channels.

    In a folder, `*.yaml` files are found recursively, except what git ignores, hidden files
    and folders, virtual environments, node_modules and --exclude globs; YAML files that are
    not specs (no `layers`, `blocks` or `extends` key) are skipped with a note. `-` reads a
    spec from standard input (an editor's unsaved buffer), named by --stdin-filename.

    Settings come from the nearest `[tool.yarch]` in pyproject.toml, or yarch.toml, above each
    spec: include and exclude globs, strict, and a severity per diagnostic code.
    """
    configs = Configs(isolated)
    with _configuration_errors():
        overrides = parse_sets(sets)
        from_stdin = [_lint_stdin(stdin_filename, overrides)] if "-" in paths else []
        paths = tuple(p for p in paths if p != "-")
        files = find_specs(paths, exclude, configs) if paths else []
        if variants:
            files += variants_of(files, exclude, configs)
        jobs: list[Job] = [
            (p, overrides, display, chosen_scale(), found) for p, display, found in files
        ]
        config_of = {display: configs.of(p) for p, display, _found in files}
        if from_stdin:
            config_of[from_stdin[0].file] = configs.of(Path(stdin_filename or "stdin.yaml"))
        if all_scales:
            results = []
            for path, _overrides, display, _scale, found in jobs:
                reason = not_a_spec(path) if found else None
                if reason is not None:
                    results.append(Result(display, skipped=reason))
                    continue
                # the first lint uses the table's first row and tells which rows there are
                first = lint_safely(path, overrides, display)
                scales = [k for k, v in first.spec.scales.items() if v] if first.spec else []
                for scale in scales or [None]:
                    if scale is None or scale == scales[0]:
                        result = first
                    else:
                        result = lint_safely(path, overrides, display, scale)
                    if scale is not None:
                        result.diagnostics = [
                            d.with_note(f"with scale `{scale}`") for d in result.diagnostics
                        ]
                    results.append(result)
        else:
            results = lint_many(jobs)
        results = from_stdin + results
        skipped = [r for r in results if r.skipped]
        results = [r for r in results if not r.skipped]
        for r in results:
            if (config := config_of.get(r.file)) is not None:
                r.diagnostics = config.apply(r.diagnostics)
        strict_files = {r.file for r in results if strict or _strict(config_of.get(r.file))}
        diagnostics = [d for r in results for d in r.diagnostics]
        if fmt not in ("json", "sarif"):
            for r in skipped:
                echo(f"note: skipped `{r.file}`: {r.skipped}", err=True)
        if fmt == "sarif":
            from .sarif import render_sarif

            echo(render_sarif(diagnostics))
        elif fmt == "json":
            files = len({r.file for r in results})
            echo(render_json(diagnostics, files, {r.file: r.skipped or "" for r in skipped}))
        elif fmt == "github":
            if diagnostics:
                echo(render_github(diagnostics))
        elif fmt == "concise":
            if diagnostics:
                echo(render_concise(diagnostics))
            echo(_summary(results, len(skipped)))
        else:
            sources = SourceCache.of(*(r.sources for r in results))
            if diagnostics:
                text = render_text(diagnostics, sources, MAX_SHOWN) + "\n"  # terminal-safe
                if use_color():
                    click.echo(colorize(text), color=True)
                else:
                    echo(text)
            echo(_summary(results, len(skipped)))
        failed = [r for r in results if r.file in strict_files]
        sys.exit(max(exit_code(results), exit_code(failed, strict=True)))


def _strict(config: Config | None) -> bool:
    return config is not None and config.settings.strict


@contextlib.contextmanager
def _configuration_errors() -> Iterator[None]:
    """A mistake in a configuration file: one line naming it, and exit code 2."""
    try:
        yield
    except ConfigError as exc:
        echo(f"yarch: {exc}", err=True)
        sys.exit(2)


def _lint_stdin(stdin_filename: str | None, overrides: dict[str, Any]) -> Result:
    """The spec on standard input, linted as if it were at --stdin-filename (else in the
    current folder)."""
    name = stdin_filename or "<stdin>"
    stream = getattr(sys.stdin, "buffer", None)
    raw = stream.read(MAX_BYTES + 1) if stream is not None else b""
    try:
        text = decode_input(raw, name)
    except LoadError as exc:
        return Result(name, diagnostics=[exc.diagnostic])
    path = Path(stdin_filename) if stdin_filename else Path("stdin.yaml")
    return lint_safely(path, overrides, name, chosen_scale(), text)


class _Depth(click.ParamType):
    """`--depth N` (a whole number from 0) or `--depth all`."""

    name = "depth"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int) or value == "all":
            return value
        text = str(value).strip().lower()
        if text == "all":
            return "all"
        if text.isdigit() and len(text) <= 6:
            return int(text)
        self.fail(terminal_safe(f"`{str(value)[:100]}` is not a whole number from 0 or `all`"))


@cli.command("summary")
@click.argument("spec", metavar="SPEC", type=click.Path())
@click.option(
    "--format",
    "--output-format",  # ruff's and mypy's name
    "fmt",
    type=click.Choice(SUMMARY_FORMATS),
    default="text",
    show_default=True,
    help="How to print the summary.",
)
@click.option(
    "--depth",
    type=_Depth(),
    default=None,
    metavar="N|all",
    help=(
        "Hide rows nested deeper than N (0: top-level layers and blocks); `all` hides none. "
        f"Default: {DEFAULT_DEPTH} for text and markdown (three levels, as torchinfo's depth 3), "
        "all for json. Totals always count every layer."
    ),
)
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    metavar="N",
    help="Samples per batch: MACs, activations and the input size scale with it.",
)
@click.option(
    "--dtype",
    type=click.Choice(FLOAT_DTYPES),
    default="float32",
    show_default=True,
    help="Element type of parameters, activations and floating-point buffers.",
)
@click.option(
    "--optimizer",
    type=click.Choice(tuple(OPTIMIZERS)),
    default="none",
    show_default=True,
    help="Optimizer state counted in the training memory: sgd none, sgd-momentum one "
    "buffer per parameter, adam and adamw two.",
)
@set_option
def summary_command(
    spec: str,
    fmt: str,
    depth: int | str | None,
    batch: int,
    dtype: str,
    optimizer: str,
    sets: tuple[str, ...],
) -> None:
    """Per-layer table of a spec: shapes, parameters, MACs and memory, with totals
    (torchinfo's, and a training-memory estimate)."""
    result = lint_safely(spec, parse_sets(sets), spec, chosen_scale())
    code = report(result)  # on stderr, so that stdout stays the summary (`> out.json`)
    if code or result.graph is None:
        sys.exit(code or 1)
    if depth is None:  # json is a machine contract: every layer unless asked otherwise
        depth = "all" if fmt == "json" else DEFAULT_DEPTH
    summary = summarize(result.graph, batch=batch, dtype=dtype, optimizer=optimizer)
    echo(render(summary, fmt, None if depth == "all" else int(depth)))


@cli.command("draw")
@click.argument("spec", metavar="SPEC", type=click.Path())
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
    type=float,
    callback=_seconds,
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
@click.option(
    "--dpi",
    type=click.IntRange(*draw.DPI_RANGE),
    default=None,
    metavar="N",
    help="The resolution of a png (Graphviz's default: 96).",
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
    dpi: int | None,
    sets: tuple[str, ...],
) -> None:
    """Graphviz diagram of a spec: blocks as clusters, edges labelled with shapes.

    A spec with errors is still drawn, the layers they are about in red (exit code 1). Without
    Graphviz's `dot`, when it takes longer than --timeout, or for a diagram of more than
    --max-nodes nodes, the DOT source is written instead (exit code 2, except for --format dot).
    """
    if dpi is not None and fmt != "png":
        raise click.UsageError(f"--dpi is for --format png, not {fmt}")
    result = lint_safely(spec, parse_sets(sets), spec, chosen_scale())
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
        source=spec_label(Path(spec)),
    )
    path = Path(output) if output else Path(f"{result.graph.name}.{fmt}")
    try:
        problem = draw.render(source, path, fmt, timeout, max_nodes, dpi)
    except OSError as exc:
        echo(f"yarch: cannot write `{path}`: {exc.strerror or exc}", err=True)
        sys.exit(2)
    if problem:
        echo(f"yarch: {problem}", err=True)
        sys.exit(2)
    echo(f"wrote {path}", err=True)
    sys.exit(code)


@cli.command("codegen")
@click.argument("spec", metavar="SPEC", type=click.Path())
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
    result = lint_safely(spec, parse_sets(sets), spec, chosen_scale())
    code = report(result)
    if code or result.graph is None:
        sys.exit(code or 1)
    text = _code(result, spec_label(Path(spec)), optimize)
    if output is None:
        echo(text, nl=False)
        return
    _write(Path(output), text.encode())
    echo(f"wrote {output}", err=True)


@cli.command("export")
@click.argument("spec", metavar="SPEC", type=click.Path())
@click.option(
    "--onnx",
    "onnx_path",
    type=click.Path(dir_okay=False),
    required=True,
    metavar="FILE",
    help="Write the model to FILE in ONNX.",
)
@click.option(
    "--opset",
    type=click.IntRange(*OPSETS),
    default=DEFAULT_OPSET,
    show_default=True,
    help="The ONNX opset to write.",
)
@click.option(
    "--dynamic-batch",
    is_flag=True,
    help="Leave the batch dimension free (named `batch`) instead of fixed at 2.",
)
@click.option(
    "--weights",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE",
    help="A state_dict saved with torch.save to load first [default: the initial weights].",
)
@set_option
def export_command(
    spec: str,
    onnx_path: str,
    opset: int,
    dynamic_batch: bool,
    weights: str | None,
    sets: tuple[str, ...],
) -> None:
    """The built model as an ONNX file, checked with onnx.checker and run with onnxruntime.

    Its input is named `input`, its outputs as the spec names them; training-only outputs
    are left out. Needs the torch and onnx extras: pip install 'yarch[torch,onnx]'.
    """
    from .export import ExportError, export_linted
    from .pipeline import SpecError

    result = lint_safely(spec, parse_sets(sets), spec, chosen_scale())
    code = report(result)
    if code or result.graph is None:
        sys.exit(code or 1)
    try:
        done = export_linted(
            result, onnx_path, weights=weights, opset=opset, dynamic_batch=dynamic_batch
        )
    except (ExportError, SpecError) as exc:
        echo(f"yarch: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:
        echo(f"yarch: cannot write `{onnx_path}`: {exc.strerror or exc}", err=True)
        sys.exit(2)
    echo(done.describe(), err=True)


@cli.command("build")
@click.argument("specs", nargs=-1, metavar="[SPEC...]", type=click.Path())
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

    With no SPEC, every spec under specs/ but the zoo (specs/zoo/, torchvision's models, whose
    names are the library's too: `yarch build specs/zoo -o generated/zoo` builds them) is
    built, and the files in the output folder that yarch generated (they say so at the top)
    and that no spec produces any more are removed;
    nothing else there is ever removed or overwritten. Specs with errors are reported, not
    built (exit 1). Two builds into one folder wait for each other.
    """
    out = Path(out_dir)
    paths = find_specs(specs or ("specs",), () if specs else LIBRARY_EXCLUDE)
    overrides = parse_sets(sets)
    if not specs:  # the library's build (specs/ of the working folder) stays in its project
        root = project_root(Path.cwd())
        if not inside(out, root):
            raise click.UsageError(
                terminal_safe(
                    f"`{out}` leads outside the project folder `{root}`: a build of every spec "
                    "writes and cleans only inside the project (name the folder with -o and the "
                    "specs to build, to write elsewhere)"
                )
            )
    targets: dict[str, str] = {}
    for path, display, _found in paths:
        other = targets.setdefault(path.stem, display)
        if other != display:
            raise click.UsageError(
                terminal_safe(
                    f"`{other}` and `{display}` would both be written to `{out / path.stem}.py`:"
                    " build them into different folders (-o), or rename one"
                )
            )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        message = f"cannot create `{out}`: {exc.strerror or exc}"
        raise click.UsageError(terminal_safe(message)) from None
    foreign = [
        target
        for stem in targets
        for target in (out / f"{stem}.py", out / f"{stem}.svg")
        if (target.exists() or target.is_symlink()) and generated_from(target) is None
    ]
    if foreign:
        raise click.UsageError(
            terminal_safe(
                f"`{foreign[0]}` exists and was not generated by yarch; it is not overwritten"
                + (f" (nor {len(foreign) - 1} more)" if len(foreign) > 1 else "")
                + ": move it, or build into another folder with -o"
            )
        )
    waiting = f"yarch: waiting for another `yarch build` writing to `{out}`"
    try:
        with folder_lock(out, lambda: echo(waiting, err=True), BUILD_LOCK_WAIT):
            code = _build_all(paths, out, depth, overrides, clean=not specs)
    except TimeoutError:
        echo(f"yarch: `{out}` stayed locked by another build for {BUILD_LOCK_WAIT:g} s", err=True)
        sys.exit(2)
    sys.exit(code)


def _remove_stale(out: Path, written: list[Path], built: set[str]) -> None:
    """Remove what yarch generated in `out` that no spec produces any more: files it did not
    write in this run whose spec (named at their top) is gone, or was built in this run and
    has errors now. A file yarch did not generate, and one made from a spec elsewhere that
    still exists (`yarch build other/net.yaml`), stay."""
    for path in sorted({*out.glob("*.py"), *out.glob("*.svg")} - set(written)):
        source = generated_from(path)
        if source is None or not inside(path, out.resolve()):
            continue
        if source and source not in built and _exists(source):
            continue
        path.unlink()
        echo(f"removed {path} (no spec produces it any more)")


def _exists(path: str) -> bool:
    try:
        return Path(path).is_file()
    except (OSError, ValueError):
        return False


def _build_all(
    paths: list[tuple[Path, str, bool]],
    out: Path,
    depth: int,
    overrides: dict[str, Any],
    clean: bool,
) -> int:
    written: list[Path] = []
    broken: list[str] = []
    code = 0
    for path, display, _found in paths:
        result = lint_safely(path, overrides, display, chosen_scale())
        status = report(result)
        if status or result.graph is None or result.spec is None:
            broken.append(display)
            code = max(code, status or 1)
            continue
        echo(render(summarize(result.graph), "text", depth))
        python = out / f"{path.stem}.py"
        _write(python, _code(result, spec_label(path)).encode())
        written.append(python)
        diagram = out / f"{path.stem}.svg"
        dot = draw.to_dot(
            result.graph,
            result.diagnostics,
            caption=draw.caption_of(result.spec),
            source=spec_label(path),
        )
        try:
            problem = draw.render(dot, diagram, "svg")
        except OSError as exc:
            problem = f"cannot write `{diagram}`: {exc.strerror or exc}"
        if problem:
            echo(f"yarch: {problem}", err=True)
            code = 2
            echo(f"wrote {python}\n")
        else:
            written.append(diagram)
            echo(f"wrote {python} and {diagram}\n")
    if clean:
        _remove_stale(out, written, {spec_label(path) for path, _, _ in paths})
    built = len(paths) - len(broken)
    echo(f"Built {_plural(built, 'spec')} into {out}/.")
    if broken:
        echo(f"Not built, with errors: {', '.join(broken)}.")
    return code


@cli.command("diff")
@click.argument("spec_a", metavar="A", type=click.Path())
@click.argument("spec_b", metavar="B", type=click.Path())
@click.option(
    "--format",
    "--output-format",  # ruff's and mypy's name
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
    results = [lint_safely(spec, overrides, spec, chosen_scale()) for spec in (spec_a, spec_b)]
    codes = [report(result) for result in results]  # on stderr: stdout stays the diff
    a, b = (result.graph for result in results)
    if any(codes) or a is None or b is None:
        sys.exit(max(codes) or 1)
    echo(render_diff(diff_graphs(a, b, spec_a, spec_b), fmt))


@cli.command("lsp")
@click.option(
    "--stdio",
    is_flag=True,
    help="Talk over stdin and stdout (the only transport, and the default); VS Code's client "
    "passes it.",
)
def lsp_command(stdio: bool) -> None:
    """A language server over stdin and stdout, for editors: yarch's diagnostics as you type,
    each layer's inferred shape as an inlay hint, hovers with shapes, parameters and MACs."""
    try:
        from .lsp import serve
    except ImportError as exc:  # the optional `lsp` extra is not installed
        echo(
            f"yarch: `yarch lsp` needs pygls ({exc.name} is missing): pip install 'yarch[lsp]'",
            err=True,
        )
        sys.exit(2)
    serve()


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
        echo(text, nl=False)
        return
    _write(Path(output), text.encode())
    echo(f"wrote {output}", err=True)


PARALLEL_FROM = 8  # files: below this, starting worker processes costs more than it saves


def lint_many(jobs: list[Job]) -> list[Result]:
    """Lint many files on every core (processes forked after the imports), in order."""
    workers = min(os.cpu_count() or 1, 8)
    if len(jobs) >= PARALLEL_FROM and workers >= 2:
        import multiprocessing as mp  # here, not at the top: a one-file lint does not need it

        if "fork" in mp.get_all_start_methods():
            chunk = max(1, len(jobs) // (4 * workers))
            pool = mp.get_context("fork").Pool(workers, initializer=_quiet_worker)
            try:
                results = list(pool.imap(lint_for_report, jobs, chunksize=chunk))
                pool.close()
            finally:
                pool.terminate()  # at once, on an interrupt too: workers hold no files
                pool.join()
            return results
    return [lint_for_report(job) for job in jobs]


def _quiet_worker() -> None:
    """Ctrl-C and SIGTERM are the parent's to handle: it stops the workers."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def report(result: Result) -> int:
    """Print a spec's diagnostics on stderr, as lint's text format; return the exit code."""
    code = exit_code([result])
    if result.diagnostics:
        sources = SourceCache.of(result.sources)
        echo(render_text(result.diagnostics, sources, MAX_SHOWN) + "\n", err=True)
        if code:
            echo(_summary([result]), err=True)
    return code


def _code(result: Result, label: str, optimize: str | None = None) -> str:
    """The generated code of a spec without errors; exit code 2 when it cannot be formatted
    (ruff missing, failing or hanging)."""
    from .codegen import FormatError, codegen_file  # Jinja2 is not needed for linting

    try:
        return codegen_file(result, label, optimize)
    except FormatError as exc:
        echo(f"yarch: {exc}", err=True)
        sys.exit(2)


def _write(path: Path, data: bytes) -> None:
    try:
        write_atomic(path, data)
    except OSError as exc:
        echo(f"yarch: cannot write `{path}`: {exc.strerror or exc}", err=True)
        sys.exit(2)


def exit_code(results: list[Result], strict: bool = False) -> int:
    if any(r.unreadable for r in results):
        return 2
    if any(r.errors for r in results) or (strict and any(r.warnings for r in results)):
        return 1
    return 0


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _summary(results: list[Result], skipped: int = 0) -> str:
    errors = sum(r.errors for r in results)
    warnings = sum(r.warnings for r in results)
    files = _plural(len({r.file for r in results}), "file")
    if skipped:
        files += f"; {skipped} not {'a spec' if skipped == 1 else 'specs'}, skipped"
    if not errors and not warnings:
        return f"All checks passed ({files})."
    bad = len({r.file for r in results if r.diagnostics})
    return (
        f"Found {_plural(errors, 'error')} and {_plural(warnings, 'warning')} in {bad} of {files}."
    )


def run() -> None:
    """The command line, with a bug in yarch reported in one line rather than a traceback
    (set YARCH_DEBUG=1 to see the traceback). `compiler.entry.main` calls it."""
    try:
        cli(standalone_mode=True)
    except Exception as exc:  # pragma: no cover - only reached through a bug
        if os.environ.get("YARCH_DEBUG"):
            raise
        echo(
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


def main() -> None:
    """The console entry point (kept for `compiler.cli:main`): see `compiler.entry`."""
    from .entry import main as entry_main

    entry_main()
