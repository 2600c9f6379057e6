"""The pipeline, top to bottom: load -> validate -> resolve -> infer shapes -> lint.

Every stage returns diagnostics instead of raising; a stage that cannot produce its product
stops the pipeline for that file, and the diagnostics so far are the result.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .codes import UNREADABLE  # what means exit code 2, not 1
from .diagnostics import (
    Diagnostic,
    SourceCache,
    Span,
    error,
    merge_duplicates,
    render_text,
    sort_key,
)
from .gcpause import no_cyclic_gc
from .graph import ArchGraph
from .lint import run_rules
from .loader import Document, LoadError, load_text, source_text
from .names import closest
from .ops.base import field_names
from .resolve import resolve
from .schema import BlockSpec, OutputSpec, Spec, VariantEdits, to_diagnostics
from .shapes import infer_shapes
from .suppress import suppress
from .variants import chain_note, load_spec


@dataclass
class Result:
    file: str
    text: str | None = None
    doc: Document | None = None
    spec: Spec | None = None
    graph: ArchGraph | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    texts: dict[str, str] | None = None  # the sources, when there is no document to hold them
    skipped: str | None = None  # why a file found in a folder was not linted (not a spec)

    def __repr__(self) -> str:
        # the file's text, its document and its graph are too big to show
        layers = f", layers={len(self.graph.graph) - 1}" if self.graph is not None else ""
        return f"Result(file={self.file!r}, errors={self.errors}, warnings={self.warnings}{layers})"

    def render(self) -> str:
        """The diagnostics as `yarch lint` prints them, with their source lines."""
        return render_text(self.diagnostics, SourceCache.of(self.sources))

    @property
    def sources(self) -> dict[str, str]:
        """The text of every file the diagnostics may point into (a variant and its bases)."""
        if self.doc is not None:
            return self.doc.sources
        if self.texts is not None:
            return self.texts
        return {self.file: self.text} if self.text is not None else {}

    @property
    def errors(self) -> int:
        return sum(d.is_error for d in self.diagnostics)

    @property
    def warnings(self) -> int:
        return len(self.diagnostics) - self.errors

    @property
    def unreadable(self) -> bool:
        return any(d.code in UNREADABLE for d in self.diagnostics)


class SpecError(ValueError):
    """The spec has errors (raised by `compiler.build`); the message is the rendered
    diagnostics. It needs no torch: code that catches it runs without torch too."""

    def __init__(self, result: Result, reason: str | None = None) -> None:
        sources = SourceCache.of(result.sources)  # a variant's bases too
        errors = [d for d in result.diagnostics if d.is_error]
        detail = reason or render_text(errors, sources, 20)
        super().__init__(f"{result.file} cannot be built:\n\n{detail}")
        self.result = result


def _known_fields(path: tuple) -> list[str]:
    if not path:
        return field_names(Spec)
    if len(path) == 2 and path[0] == "blocks":
        return field_names(BlockSpec)
    if len(path) == 2 and path[0] == "outputs":
        return field_names(OutputSpec)
    return []


def validate(doc: Document) -> tuple[Spec | None, list[Diagnostic]]:
    problems: list[Diagnostic] = []
    unknown: set[str] = set()
    try:
        spec = Spec.model_validate(doc.data)
    except ValidationError as exc:
        problems = to_diagnostics(exc, doc.data, doc.span, doc.key_span, "the spec", _known_fields)
        # a misspelt top-level key (`output:`) is reported, and the rest is still checked
        # without it: one mistake should not hide the others
        unknown = {
            e["loc"][0]
            for e in exc.errors()
            if e["type"] == "extra_forbidden" and len(e["loc"]) == 1
        }
        if not unknown or len(unknown) < len(exc.errors()) or not isinstance(doc.data, dict):
            return None, problems
        try:
            spec = Spec.model_validate({k: v for k, v in doc.data.items() if k not in unknown})
        except ValidationError:
            return None, problems
    if spec.is_variant:
        return spec, problems
    missing = [key for key in ("input", "layers") if getattr(spec, key) is None]
    # a misspelt `layer:` is reported as unknown, with `layers` as its did-you-mean: the
    # missing `layers` is the same mistake, not a second one
    misspelt = {near[0] for key in unknown if (near := closest(key, _known_fields(())))}
    missing = [key for key in missing if key not in misspelt]
    if missing or spec.input is None or spec.layers is None:
        return None, [
            *problems,
            *(
                error(
                    "missing-field",
                    f"the spec needs `{key}`",
                    Span(doc.file, 1, 1, 1, 1),
                    help="or name a base spec with `extends:`",
                )
                for key in missing
            ),
        ]
    return spec, problems


def _check_variant(doc: Document) -> list[Diagnostic]:
    """A variant's edits, before they are applied (the merged spec is validated once, after)."""
    try:
        VariantEdits.model_validate(doc.data)
    except ValidationError as exc:
        return to_diagnostics(exc, doc.data, doc.span, doc.key_span, "the spec", _known_fields)
    return []


def lint_document(
    doc: Document,
    overrides: dict[str, Any] | None = None,
    scale: str | None = None,
    earlier: list[Diagnostic] | None = None,
) -> Result:
    """Validate, resolve and check a loaded spec; `earlier` are the loader's diagnostics."""
    result = Result(doc.file, doc.text, doc)
    spec, diags = validate(doc)
    diags = [*(earlier or []), *diags]
    result.spec = spec
    if spec is not None:
        graph, resolve_diags = resolve(doc, spec, overrides, scale)
        diags += resolve_diags
        result.graph = graph
        diags += infer_shapes(graph)
        diags += run_rules(graph)
    diags = [chain_note(doc, d) for d in suppress(diags, doc.sources, doc.file)]
    result.diagnostics = sorted(merge_duplicates(diags), key=sort_key)
    return result


def lint_file(
    path: str | Path,
    overrides: dict[str, Any] | None = None,
    display: str | None = None,
    scale: str | None = None,
    text: str | None = None,
) -> Result:
    """Load, validate, resolve and check one spec file. Never raises for bad input. `text`:
    the spec's text read elsewhere (`yarch lint -`), linted as if it were at `path`, whose
    folder its `extends:` is relative to."""
    with no_cyclic_gc():
        return _lint_file(path, overrides, display, scale, text)


def _lint_file(
    path: str | Path,
    overrides: dict[str, Any] | None,
    display: str | None,
    scale: str | None,
    text: str | None = None,
) -> Result:
    name = display or str(path)
    try:
        doc, problems = load_spec(Path(path), name, _check_variant, text=text)
    except LoadError as exc:
        shown = text if text is not None else source_text(path)
        return Result(name, shown, diagnostics=[exc.diagnostic])
    if doc is None:
        result = Result(name, text if text is not None else source_text(path))
        result.diagnostics = sorted(merge_duplicates(problems), key=sort_key)
        return result
    return lint_document(doc, overrides, scale, problems)


def lint_text(text: str, file: str = "<string>", overrides: dict[str, Any] | None = None) -> Result:
    with no_cyclic_gc():
        try:
            doc = load_text(text, file)
        except LoadError as exc:
            return Result(file, text, diagnostics=[exc.diagnostic])
        return lint_document(doc, overrides)


def lint_safely(
    path: str | Path,
    overrides: dict[str, Any] | None = None,
    display: str | None = None,
    scale: str | None = None,
    text: str | None = None,
) -> Result:
    """`lint_file`, with a failure of yarch itself (a bug) reported as an `internal-error`
    diagnostic on the file instead of raised, so that the files after it are still linted."""
    name = display or str(path)
    try:
        return lint_file(path, overrides, display, scale, text)
    except Exception as exc:
        if os.environ.get("YARCH_DEBUG"):
            raise
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return Result(
            name,
            diagnostics=[
                error(
                    "internal-error",
                    f"yarch failed on this file ({reason})",
                    Span(name, 1, 1, 1, 1),
                    help="this is a bug in yarch, not in your spec: please report it with the "
                    "spec (YARCH_DEBUG=1 shows the traceback)",
                )
            ],
        )


# A spec has at least one of these top-level keys (block style, or a flow mapping).
_SPEC_KEY = re.compile(r"""^(?:\{.*)?["']?\b(?:layers|blocks|extends)["']?[ \t]*:""", re.MULTILINE)
_SCHEMA_LINE = re.compile(r"^#\s*yaml-language-server:\s*\$schema=(\S+)", re.MULTILINE)


def not_a_spec(path: str | Path) -> str | None:
    """Why a YAML file found in a folder is not a yarch spec (a CI workflow, a Kubernetes
    manifest), or None when it may be one: it has no `layers`, `blocks` or `extends` key, or
    its schema line names another schema."""
    text = source_text(path)
    if text is None:
        return None  # unreadable: linting it says why
    return not_a_spec_text(text)


def not_a_spec_text(text: str) -> str | None:
    """`not_a_spec` of a text: what the language server asks of a YAML document an editor
    opens, so that an editor may start it for every YAML file."""
    schema = _SCHEMA_LINE.search(text[:4096])
    if schema and not schema.group(1).endswith("spec.schema.json"):
        return f"its schema line names another schema (`{schema.group(1)}`)"
    if _SPEC_KEY.search(text) is None:
        return "not a spec (no `layers`, `blocks` or `extends` key)"
    return None


Job = tuple[str | Path, dict[str, Any] | None, str, str | None, bool]


def lint_for_report(job: Job) -> Result:
    """`lint_safely` for the command line and its worker processes: the diagnostics and the
    texts they point into, without the graph (which the parent would otherwise have to
    receive). A file found in a folder (`discovered`) that is not a spec is skipped."""
    path, overrides, display, scale, discovered = job
    if discovered:
        reason = not_a_spec(path)
        if reason is not None:
            return Result(display, skipped=reason)
    full = lint_safely(path, overrides, display, scale)
    return Result(full.file, full.text, diagnostics=full.diagnostics, texts=full.sources)
