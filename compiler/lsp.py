"""`yarch lsp`: a language server over stdio (pygls 2, lsprotocol).

What an editor shows while a spec is edited: every diagnostic of `yarch lint` with its range,
code, severity and related places, published when a spec is opened and, debounced, as it
changes (editing a base lints the open variants that extend it again); each layer's inferred
output shape, and its parameters, as an inlay hint at the end of its line, never written into
the file; and a hover with a layer's op, input and output shapes, parameters and MACs, or a
block instance's. It lints with the same pipeline as `yarch lint` (`lint_file` with the
editor's text), so it never imports torch.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from .diagnostics import Diagnostic, Severity, Span
from .graph import ArchGraph
from .ops.base import fmt_shape
from .pipeline import Result, lint_file

DEBOUNCE = 0.15  # seconds after the last change before a spec is linted again
MAX_SHAPES_SHOWN = 3  # a block's layer, shared by its instances: its distinct shapes

_SEVERITY = {
    Severity.ERROR: types.DiagnosticSeverity.Error,
    Severity.WARNING: types.DiagnosticSeverity.Warning,
}


@dataclass
class Linted:
    """The last lint of an open spec, and where its layers are."""

    result: Result
    path: str
    # line (0-based) -> (what the hint says, hover text) for the layers and instances on it
    lines: dict[int, tuple[str, str]]


def _range(span: Span) -> types.Range:
    return types.Range(
        types.Position(max(span.line - 1, 0), max(span.column - 1, 0)),
        types.Position(max(span.end_line - 1, 0), max(span.end_column - 1, 0)),
    )


def _uri(span: Span, path: str, uri: str) -> str:
    """The document a span is in: this one, or a base it extends."""
    if span.file in (path, uri):
        return uri
    file = Path(span.file)
    if not file.is_absolute():
        file = Path(path).parent / file
    return from_fs_path(str(file)) or uri


def to_lsp(d: Diagnostic, path: str, uri: str) -> types.Diagnostic:
    """A yarch diagnostic as the protocol's: its notes and help after the message, and the
    places it points at besides its own as related information."""
    message = "\n".join([d.message, *d.notes, *([f"help: {d.help}"] if d.help else [])])
    related = [
        types.DiagnosticRelatedInformation(
            types.Location(_uri(span, path, uri), _range(span)), label or "related"
        )
        for span, label in d.related
    ]
    span = d.span
    in_this_file = span is not None and _uri(span, path, uri) == uri
    where = (
        _range(span)
        if in_this_file and span is not None
        else types.Range(types.Position(0, 0), types.Position(0, 0))
    )
    if span is not None and not in_this_file:  # in a base: said where, shown at the top
        related.insert(
            0,
            types.DiagnosticRelatedInformation(
                types.Location(_uri(span, path, uri), _range(span)), "here, in the spec it extends"
            ),
        )
    return types.Diagnostic(
        range=where,
        message=message,
        severity=_SEVERITY.get(d.severity, types.DiagnosticSeverity.Information),
        code=d.code,
        source="yarch",
        related_information=related or None,
    )


def _number(n: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def _hint(shapes: list[Any], params: int) -> str:
    distinct = list(dict.fromkeys(fmt_shape(s) for s in shapes if s))
    if not distinct:
        return ""
    shown = ", ".join(distinct[:MAX_SHAPES_SHOWN]) + (", ..." if len(distinct) > 3 else "")
    return f"→ {shown}" + (f" · {_number(params)} params" if params else "")


def layer_lines(graph: ArchGraph, file: str) -> dict[int, tuple[str, str]]:
    """For each line of `file` that holds a layer or a block instance: its inlay hint and its
    hover text. A line of a block's body stands for every instance of the block: its hint
    lists their distinct shapes."""
    nodes: dict[int, list[Any]] = defaultdict(list)
    for node_id in graph.order:
        if node_id == ArchGraph.INPUT:
            continue
        node = graph.node(node_id)
        span = node.span
        if span is not None and span.file == file:
            nodes[span.line - 1].append(node)
    out: dict[int, tuple[str, str]] = {}
    for line, found in nodes.items():
        # a block's layer: its parameters if every instance has as many
        params = found[0].params if len({n.params for n in found}) == 1 else 0
        text = _hint([n.shape for n in found], params)
        hover = [_hover_node(graph, n) for n in found[:MAX_SHAPES_SHOWN]]
        if len(found) > MAX_SHAPES_SHOWN:
            hover.append(f"... and {len(found) - MAX_SHAPES_SHOWN} more instances")
        out[line] = (text, "\n\n".join(hover))
    for inst in graph.instances.values():
        span = inst.span
        if span is None or span.file != file or inst.output not in graph.graph:
            continue
        line = span.line - 1
        if line in out and inst.repeat == 0 and inst.block == "seq":
            continue  # a seq on the line of its first layer: the layer says more
        members = [graph.node(n) for n in graph.members(inst.id)]
        params = sum(n.params for n in members)
        macs = sum(n.macs for n in members)
        shape = graph.node(inst.output).shape
        before = graph.node(inst.input).shape if inst.input in graph.graph else None
        text = _hint([shape], params)
        hover = (
            f"**{inst.block}** `{inst.id}`: {fmt_shape(before) if before else '?'} → "
            f"{fmt_shape(shape) if shape else '?'}\n\n{len(members)} layers, "
            f"{params:,} parameters, {macs:,} MACs"
        )
        out[line] = (text, hover)
    return out


def _hover_node(graph: ArchGraph, node: Any) -> str:
    inputs = ", ".join(fmt_shape(s) if s else "?" for s in node.input_shapes) or "?"
    out = fmt_shape(node.shape) if node.shape else "?"
    lines = [f"**{node.op.name}** `{graph.display(node.id)}`: {inputs} → {out}"]
    lines.append(f"{node.params:,} parameters, {node.macs:,} MACs")
    doc = (node.op.__doc__ or "").strip().splitlines()
    if doc:
        lines.append(doc[0])
    return "\n\n".join(lines)


class YarchServer(LanguageServer):
    """The server: the last lint of each open spec, and the lints scheduled after a change."""

    def __init__(self) -> None:
        from . import __version__

        super().__init__("yarch", __version__)
        self.linted: dict[str, Linted] = {}
        self.pending: dict[str, asyncio.TimerHandle] = {}

    def lint(self, uri: str) -> None:
        document = self.workspace.get_text_document(uri)
        path = to_fs_path(uri) or uri
        result = lint_file(path, text=document.source, display=path)
        graph = result.graph
        lines = layer_lines(graph, path) if graph is not None else {}
        self.linted[uri] = Linted(result, path, lines)
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(
                uri=uri,
                version=document.version,
                diagnostics=[to_lsp(d, path, uri) for d in result.diagnostics],
            )
        )

    def lint_with_variants(self, uri: str) -> None:
        """Lint `uri`, then the open specs that extend it (their diagnostics may change)."""
        self.lint(uri)
        name = Path(to_fs_path(uri) or uri).name
        for other in list(self.linted):
            if other != uri and name in self.workspace.get_text_document(other).source:
                self.lint(other)

    def schedule(self, uri: str) -> None:
        """Lint after `DEBOUNCE` seconds without another change."""
        handle = self.pending.pop(uri, None)
        if handle is not None:
            handle.cancel()
        loop = asyncio.get_event_loop()
        self.pending[uri] = loop.call_later(DEBOUNCE, self._due, uri)

    def _due(self, uri: str) -> None:
        self.pending.pop(uri, None)
        self.lint_with_variants(uri)


server = YarchServer()


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: YarchServer, params: types.DidOpenTextDocumentParams) -> None:
    ls.lint_with_variants(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: YarchServer, params: types.DidChangeTextDocumentParams) -> None:
    ls.schedule(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: YarchServer, params: types.DidSaveTextDocumentParams) -> None:
    ls.lint_with_variants(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: YarchServer, params: types.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    ls.linted.pop(uri, None)
    handle = ls.pending.pop(uri, None)
    if handle is not None:
        handle.cancel()
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))


@server.feature(types.TEXT_DOCUMENT_INLAY_HINT, types.InlayHintOptions(resolve_provider=False))
def inlay_hints(ls: YarchServer, params: types.InlayHintParams) -> list[types.InlayHint]:
    linted = ls.linted.get(params.text_document.uri)
    if linted is None:
        return []
    lines = ls.workspace.get_text_document(params.text_document.uri).lines
    first, last = params.range.start.line, params.range.end.line
    hints = []
    for line, (text, _) in sorted(linted.lines.items()):
        if not text or not first <= line <= last or line >= len(lines):
            continue
        end = len(lines[line].rstrip("\r\n").encode("utf-16-le")) // 2
        hints.append(
            types.InlayHint(
                position=types.Position(line, end),
                label=text,
                kind=types.InlayHintKind.Type,
                padding_left=True,
            )
        )
    return hints


@server.feature(types.TEXT_DOCUMENT_HOVER)
def hover(ls: YarchServer, params: types.HoverParams) -> types.Hover | None:
    linted = ls.linted.get(params.text_document.uri)
    if linted is None or params.position.line not in linted.lines:
        return None
    _, text = linted.lines[params.position.line]
    return types.Hover(types.MarkupContent(types.MarkupKind.Markdown, text))


def serve() -> None:
    """Run the server on stdin and stdout until the client asks it to exit."""
    server.start_io()
