"""`yarch lsp`: a language server over stdio (pygls 2, lsprotocol).

What an editor shows while a spec is edited: every diagnostic of `yarch lint` with its range,
code, severity and related places, published when a spec is opened and, debounced, as it
changes (editing a base lints the open variants that extend it again); each layer's inferred
output shape, and its parameters, as an inlay hint at the end of its line, never written into
the file; a hover with a layer's op, input and output shapes, parameters and MACs, or a block
instance's; completion of ops and blocks after `- `, of an op's fields, of `$` parameters and
of layer names in `from:`; go to definition of block types, `$` parameters and layer names;
and the layers and blocks as document symbols. It lints with the same pipeline as `yarch
lint` (`lint_file` with the editor's text), so it never imports torch.
"""

from __future__ import annotations

import asyncio
import gc
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from .diagnostics import Diagnostic, Severity, Span
from .files import inside
from .graph import ArchGraph
from .ops.base import fmt_shape
from .pipeline import Result, lint_file, not_a_spec_text
from .variants import extends_of, locate_base

DEBOUNCE = 0.15  # seconds after the last change before a spec is linted again
IDLE_COLLECT = 1.0  # seconds without a lint before the cyclic garbage collector runs
COLLECT_EVERY = 100  # lints, at most, between two of its runs
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
    _lines: dict[int, tuple[str, str]] | None = None

    @property
    def graph(self) -> ArchGraph | None:
        return self.result.graph

    def release(self) -> None:
        """Let reference counting free this lint's graph when the server drops it."""
        if self.graph is not None:
            self.graph.release()

    @property
    def lines(self) -> dict[int, tuple[str, str]]:
        """Line (0-based) -> (what the hint says, hover text) for the layers and instances
        on it; made when an editor first asks, not at every lint of a change."""
        if self._lines is None:
            graph = self.graph
            self._lines = layer_lines(graph, self.path) if graph is not None else {}
        return self._lines


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
    return _protocol_diagnostic(where, message, d.severity, d.code, related)


def _protocol_diagnostic(
    where: types.Range,
    message: str,
    severity: Severity,
    code: str,
    related: list[types.DiagnosticRelatedInformation],
) -> types.Diagnostic:
    """The protocol's diagnostic; `code` is the code of one yarch made (and registered in
    `codes.py`), passed on."""
    return types.Diagnostic(
        range=where,
        message=message,
        severity=_SEVERITY.get(severity, types.DiagnosticSeverity.Information),
        code=code,
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
    more = len(distinct) > MAX_SHAPES_SHOWN
    shown = ", ".join(distinct[:MAX_SHAPES_SHOWN]) + (", ..." if more else "")
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
        # the last lint of each spec that resolved: names to complete while the text does not
        self.resolved: dict[str, Linted] = {}
        self.pending: dict[str, asyncio.TimerHandle] = {}
        self.debounce = DEBOUNCE  # `initializationOptions: {"debounce": seconds}` sets it
        self.lints = 0
        self.collection: asyncio.TimerHandle | None = None

    def lint(self, uri: str) -> None:
        self._forget_done_notifications()
        document = self.workspace.get_text_document(uri)
        path = to_fs_path(uri) or uri
        if not_a_spec_text(document.source) is not None:
            # a CI workflow, a manifest: an editor may start the server for every YAML file
            self.forget(uri)
            self.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(uri=uri, version=document.version, diagnostics=[])
            )
            return
        result = lint_file(path, text=document.source, display=path)
        graph = result.graph
        linted = Linted(result, path)
        # the last lint that resolved stays, for completion while the text does not
        self.forget(uri, keep_resolved=graph is None)
        self.linted[uri] = linted
        if graph is not None:
            self.resolved[uri] = linted
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(
                uri=uri,
                version=document.version,
                diagnostics=[to_lsp(d, path, uri) for d in result.diagnostics],
            )
        )
        self.collect_later()  # once the diagnostics are on their way

    def forget(self, uri: str, keep_resolved: bool = False) -> None:
        """Drop the lints of `uri` (but its last resolved one, if asked), releasing each."""
        kept = self.resolved.get(uri) if keep_resolved else None
        dropped = [self.linted.pop(uri, None)]
        if not keep_resolved:
            dropped.append(self.resolved.pop(uri, None))
        for old in dropped:
            if old is not None and old is not kept:
                old.release()

    def collect_later(self) -> None:
        """The cyclic garbage collector runs here, not in the middle of an edit's lint: when
        the editor has been quiet for `IDLE_COLLECT` seconds, and after every `COLLECT_EVERY`
        lints whatever happens (edits that never pause). Left to itself, it walks each lint's
        young objects as the lint returns: about 1.5 ms of GoogLeNet's 8."""
        self.lints += 1
        if self.collection is not None:
            self.collection.cancel()
            self.collection = None
        if self.lints % COLLECT_EVERY == 0:
            gc.collect()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not serving (a test calling in)
            return
        self.collection = loop.call_later(IDLE_COLLECT, gc.collect)

    def _forget_done_notifications(self) -> None:
        """pygls 2.1 keeps the future of every notification its generator handlers ran
        (`didChange` among them) and never drops it: 2 KB an edit, 18 MiB over 10,000 edits.
        A request's future leaves the table when its answer is sent, so what is done and still
        there is such a leftover."""
        table = getattr(self.protocol, "_request_futures", None)
        if isinstance(table, dict):
            for key in [k for k, f in table.items() if f.done()]:
                del table[key]

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
        self.pending[uri] = loop.call_later(self.debounce, self._due, uri)

    def _due(self, uri: str) -> None:
        self.pending.pop(uri, None)
        self.lint_with_variants(uri)


server = YarchServer()


def _lines(ls: YarchServer, uri: str) -> list[str]:
    """The open document's lines, without their line ends."""
    return [line.rstrip("\r\n") for line in ls.workspace.get_text_document(uri).lines]


@server.feature(types.INITIALIZE)
def initialize(ls: YarchServer, params: types.InitializeParams) -> None:
    options = params.initialization_options
    if isinstance(options, dict):
        debounce = options.get("debounce")
        if isinstance(debounce, int | float) and not isinstance(debounce, bool):
            ls.debounce = min(max(float(debounce), 0.0), 5.0)


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
    ls.forget(uri)
    handle = ls.pending.pop(uri, None)
    if handle is not None:
        handle.cancel()
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))


@server.feature(types.TEXT_DOCUMENT_INLAY_HINT, types.InlayHintOptions(resolve_provider=False))
def inlay_hints(ls: YarchServer, params: types.InlayHintParams) -> list[types.InlayHint]:
    linted = ls.linted.get(params.text_document.uri)
    if linted is None:
        return []
    lines = _lines(ls, params.text_document.uri)
    first, last = params.range.start.line, params.range.end.line
    hints = []
    for line, (text, _) in sorted(linted.lines.items()):
        if not text or not first <= line <= last or line >= len(lines):
            continue
        end = len(lines[line].encode("utf-16-le")) // 2
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
    uri = params.text_document.uri
    linted = ls.linted.get(uri)
    if linted is None:
        return None
    lines = _lines(ls, uri)
    position = params.position
    if position.line < len(lines):
        word = _word(lines[position.line], position.character)
        if word.startswith("$") and linted.graph is not None:
            name = word.lstrip("${")
            if name in linted.graph.params:
                value = linted.graph.params[name]
                text = f"`${name}` = `{value!r}` (a parameter of the spec)"
                return types.Hover(types.MarkupContent(types.MarkupKind.Markdown, text))
        field = _field_at(lines, position)
        if field is not None:
            return types.Hover(types.MarkupContent(types.MarkupKind.Markdown, field))
    if position.line not in linted.lines:
        return None
    _, text = linted.lines[position.line]
    return types.Hover(types.MarkupContent(types.MarkupKind.Markdown, text))


def _field_doc(op: str, field: str) -> str | None:
    """`**stride** of `conv`: ...`, the field's description in the op's `Args` model."""
    from .ops import OPS

    if op not in OPS:
        return None
    for name, info in OPS[op].Args.model_fields.items():
        if (info.alias or name) == field:
            return f"**{field}** of `{op}`: {info.description or ''}".rstrip(": ")
    return None


def _field_at(lines: list[str], position: types.Position) -> str | None:
    """The documentation of the op field whose key is under the cursor (`kernel:` in
    `- conv: {out: 64, kernel: 3}` or in block style)."""
    line = lines[position.line]
    left = re.search(r"[\w-]*$", line[: position.character])
    start = left.start() if left else position.character
    key = re.match(r"([\w-]+)\s*:", line[start:])
    if key is None or not re.search(r"(^\s*|[{,]\s*)$", line[:start]):
        return None
    op = _op_under(lines, position.line, line[:start])
    return _field_doc(op, key.group(1)) if op is not None else None


def _fix(
    title: str, uri: str, d: types.Diagnostic, edit: types.TextEdit, preferred: bool = True
) -> types.CodeAction:
    """A quick fix of `d`: one edit of the document."""
    return types.CodeAction(
        title=title,
        kind=types.CodeActionKind.QuickFix,
        diagnostics=[d],
        edit=types.WorkspaceEdit(changes={uri: [edit]}),
        is_preferred=preferred,
    )


def _written(lines: list[str], r: types.Range) -> str | None:
    """The text a diagnostic's range covers, if it lies on one line."""
    if r.start.line != r.end.line or r.start.line >= len(lines):
        return None
    return lines[r.start.line][r.start.character : r.end.character]


_SET = re.compile(r"help: set `([\w-]+): ([^`]+)`")


def _set_value(uri: str, lines: list[str], d: types.Diagnostic) -> list[types.CodeAction]:
    """`help: set `in: 192``: the value the range covers becomes the one the help names."""
    found = _SET.search(d.message or "")
    written = _written(lines, d.range)
    if found is None or written is None:
        return []
    key, value = found.groups()
    before = lines[d.range.start.line][: d.range.start.character].rstrip()
    # the range must be the key's value as written: `in: 5`, a plain scalar
    if not before.endswith(f"{key}:") or not re.fullmatch(r"[\w.$+-]+", written):
        return []
    return [_fix(f"set `{key}: {value}`", uri, d, types.TextEdit(d.range, value))]


_MEANT = re.compile(r"help: did you mean ((?:`[^`]+`(?: or )?)+)\?")


def _respell(uri: str, lines: list[str], d: types.Diagnostic) -> list[types.CodeAction]:
    """`help: did you mean `kernel`?` on a misspelt name (an op, a field, a layer, a `$`
    parameter): a quick fix for each name suggested, the first preferred."""
    found = _MEANT.search(d.message or "")
    written = _written(lines, d.range)
    # the range is the name as written: `kernal`, `$widht`, `${widht}`
    if found is None or written is None or not re.fullmatch(r"\$?\{?[\w.-]+\}?", written):
        return []
    actions = []
    for i, name in enumerate(re.findall(r"`([^`]+)`", found.group(1))):
        edit = types.TextEdit(d.range, re.sub(r"[\w.-]+", lambda _, n=name: n, written, count=1))
        actions.append(_fix(f"change to `{name}`", uri, d, edit, preferred=i == 0))
    return actions


_ADD = re.compile(r"help: add `- (\w+)` before it")


def _reads_named_input(lines: list[str], line: int, indent: int) -> bool:
    """Whether the list item starting on `line` (its dash at `indent`) has a `from:` key, in
    flow style on its line or in block style on the more indented lines under it."""
    if re.search(r"[{,]\s*from\s*:", lines[line]):
        return True
    for below in lines[line + 1 :]:
        if below.strip() and len(below) - len(below.lstrip()) <= indent:
            return False
        if re.match(r"^\s*from\s*:", below):
            return True
    return False


def _add_before(uri: str, lines: list[str], d: types.Diagnostic) -> list[types.CodeAction]:
    """`help: add `- flatten` before it`: the layer, on a line of its own above the one the
    diagnostic is on, as a block-style list item at the same indent."""
    found = _ADD.search(d.message or "")
    line = d.range.start.line
    item = re.match(r"^(\s*)-\s", lines[line]) if line < len(lines) else None
    if found is None or item is None or d.range.start.character < len(item.group(0)):
        return []
    if _reads_named_input(lines, line, len(item.group(1))):
        return []  # it would still read what `from:` names, not the new layer
    start = types.Position(line, 0)
    edit = types.TextEdit(types.Range(start, start), f"{item.group(1)}- {found.group(1)}\n")
    return [_fix(f"add `- {found.group(1)}` before it", uri, d, edit)]


def code_actions(
    uri: str, lines: list[str], diagnostics: list[types.Diagnostic]
) -> list[types.CodeAction]:
    """A quick fix for each yarch diagnostic whose help is a mechanical edit: `set in: 192`,
    `did you mean `relu`?`, `add `- flatten` before it`."""
    out = []
    for d in diagnostics:
        if d.source == "yarch":
            for fixes in (_respell, _add_before, _set_value):
                out += fixes(uri, lines, d)
    return out


@server.feature(
    types.TEXT_DOCUMENT_CODE_ACTION,
    types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]),
)
def quick_fixes(ls: YarchServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    uri = params.text_document.uri
    lines = _lines(ls, uri)
    return code_actions(uri, lines, params.context.diagnostics)


# --- completion, definition, symbols -----------------------------------------------------

_LAYER_START = re.compile(r"^\s*-\s+[\w-]*$")
_PARAM = re.compile(r"\$\{?([\w]*)$")
_FIELDS = re.compile(r"^\s*-\s+([\w-]+)\s*:\s*\{[^}]*$")
_BLOCK_STYLE_OP = re.compile(r"^(\s*)-\s+([\w-]+)\s*:\s*$")
_REFERENCE = re.compile(r"\b(from|outputs)\b")


def _names(linted: Linted | None) -> list[str]:
    """The layer and block instance names a `from:` or an output can read."""
    if linted is None or linted.graph is None:
        return []
    graph = linted.graph
    names = [graph.node(n).id for n in graph.order if n != ArchGraph.INPUT]
    return list(dict.fromkeys(["input", *names, *graph.instances]))


def _op_under(lines: list[str], line: int, before: str) -> str | None:
    """The op whose mapping the cursor is in: `- conv: {` before it on its line, or a
    block-style `- conv:` above it, less indented than the cursor's line."""
    text = lines[line]
    found = _FIELDS.match(before)
    if found:
        return found.group(1)
    indent = len(text) - len(text.lstrip())
    for above in range(line - 1, max(line - 50, -1), -1):
        match = _BLOCK_STYLE_OP.match(lines[above])
        if match and len(match.group(1)) < indent:
            return match.group(2)
        if lines[above].strip() and len(lines[above]) - len(lines[above].lstrip()) < indent - 2:
            return None
    return None


def _bases(spec: Path, typed: str) -> list[types.CompletionItem]:
    """What `extends:` may name, from what is typed: the specs and folders beside the spec
    or in the folder typed (`../zoo/`), or after `yarch:` the library's."""
    from .variants import BUNDLED_PREFIX

    if typed.startswith(BUNDLED_PREFIX):
        prefix, rest = BUNDLED_PREFIX, typed[len(BUNDLED_PREFIX) :]
    else:
        prefix, rest = "", typed
    folder_typed = rest[: rest.rfind("/") + 1]
    try:
        base, root = locate_base(spec, prefix + folder_typed + "x")
        folder = base.parent.resolve()
        if not inside(folder, root):  # a base must be in the project, as lint requires
            return []
        entries = sorted(folder.iterdir())
        here = spec.parent.resolve()
    except (OSError, RuntimeError, ValueError):
        return []
    items = [
        types.CompletionItem(
            prefix + folder_typed + e.name + ("/" if e.is_dir() else ""),
            kind=types.CompletionItemKind.Folder if e.is_dir() else types.CompletionItemKind.File,
        )
        for e in entries
        if not e.name.startswith(".")
        and e.name != "__pycache__"
        and (e.is_dir() or e.suffix in (".yaml", ".yml"))
        and not (e.name == spec.name and folder == here)
    ]
    if not typed:
        items.append(types.CompletionItem(BUNDLED_PREFIX, kind=types.CompletionItemKind.Module))
    return items


def completions(
    linted: Linted | None, lines: list[str], position: types.Position, path: str | None = None
) -> list[types.CompletionItem]:
    """What may be written at `position`."""
    from .ops import OPS
    from .ops.base import field_names

    if position.line >= len(lines):
        return []
    before = lines[position.line][: position.character]
    typed = re.match(r"^extends:\s*[\"']?([^\"'#]*)$", before)
    if typed and path is not None:
        return _bases(Path(path), typed.group(1).strip())
    spec = linted.result.spec if linted is not None else None
    blocks = [b for b, v in (spec.blocks if spec is not None else {}).items() if v is not None]
    param = _PARAM.search(before)
    if param:
        names: list[str] = []
        if linted is not None and linted.graph is not None:
            names += list(linted.graph.params)
            for params in linted.graph.block_params.values():
                names += params
        return [
            types.CompletionItem(n, kind=types.CompletionItemKind.Variable, detail="parameter")
            for n in dict.fromkeys(names)
        ]
    if _LAYER_START.match(before):
        items = [
            types.CompletionItem(
                name,
                kind=types.CompletionItemKind.Function,
                detail=(op.__doc__ or "").strip().splitlines()[0] if op.__doc__ else None,
            )
            for name, op in sorted(OPS.items())
        ]
        items += [
            types.CompletionItem(b, kind=types.CompletionItemKind.Class, detail="block")
            for b in blocks
        ]
        return items
    if _REFERENCE.search(before):
        return [
            types.CompletionItem(n, kind=types.CompletionItemKind.Reference) for n in _names(linted)
        ]
    op = _op_under(lines, position.line, before)
    if op is not None and op in OPS:
        return [
            types.CompletionItem(
                f,
                kind=types.CompletionItemKind.Field,
                documentation=types.MarkupContent(
                    types.MarkupKind.Markdown, _field_doc(op, f) or f
                ),
            )
            for f in field_names(OPS[op].Args)
            if f not in ("first", "names")
        ]
    return []


def _word(line: str, character: int) -> str:
    left = re.search(r"[\w.$-]*$", line[:character])
    right = re.match(r"[\w.-]*", line[character:])
    return (left.group(0) if left else "") + (right.group(0) if right else "")


def _base_at(path: str, lines: list[str], line: int) -> Path | None:
    """The base spec that an `extends:` on `line` names (block or flow style, `yarch:` too),
    found as lint finds it."""
    found = extends_of("\n".join(lines), path) if "extends" in lines[line] else None
    if found is None or found[1].line - 1 != line:
        return None
    return locate_base(Path(path), found[0])[0]


def definition(
    linted: Linted | None, lines: list[str], position: types.Position, uri: str
) -> types.Location | None:
    """Where the name under the cursor is defined: a block type, a `$` parameter or a layer."""
    if linted is None or linted.result.doc is None or position.line >= len(lines):
        return None
    base = _base_at(linted.path, lines, position.line)
    if base is not None:
        start = types.Position(0, 0)
        return types.Location(from_fs_path(str(base)) or uri, types.Range(start, start))
    word = _word(lines[position.line], position.character).strip("-")
    doc = linted.result.doc
    span = None
    if word.startswith("$"):
        name = word.lstrip("${")
        span = doc.key_span(("params", name))
        if span is None and linted.result.spec is not None:
            for block, spec in linted.result.spec.blocks.items():
                if spec is not None and name in spec.params:
                    span = doc.key_span(("blocks", block, "params", name))
                    break
    elif linted.result.spec is not None and word in linted.result.spec.blocks:
        span = doc.key_span(("blocks", word))
    elif linted.graph is not None:
        graph = linted.graph
        if word in graph.graph and word != ArchGraph.INPUT:
            span = graph.node(word).span
        elif word in graph.instances:
            span = graph.instances[word].span
    if span is None:
        return None
    return types.Location(_uri(span, linted.path, uri), _range(span))


def symbols(linted: Linted | None) -> list[types.DocumentSymbol]:
    """The spec's blocks and its top-level layers and block instances, as an outline."""
    if linted is None or linted.graph is None or linted.result.doc is None:
        return []
    graph, doc, path = linted.graph, linted.result.doc, linted.path
    out = []
    for block in graph.block_params:
        span = doc.key_span(("blocks", block))
        if span is not None and span.file == path:
            out.append(
                types.DocumentSymbol(
                    block, types.SymbolKind.Class, _range(span), _range(span), detail="block"
                )
            )
    for inst in graph.instances.values():
        if "." in inst.id or inst.span is None or inst.span.file != path:
            continue
        shape = graph.node(inst.output).shape if inst.output in graph.graph else None
        out.append(
            types.DocumentSymbol(
                inst.id,
                types.SymbolKind.Module,
                _range(inst.span),
                _range(inst.span),
                detail=f"{inst.block} → {fmt_shape(shape)}" if shape else inst.block,
            )
        )
    for node_id in graph.order:
        node = graph.node(node_id) if node_id != ArchGraph.INPUT else None
        if node is None or node.scope or node.span is None or node.span.file != path:
            continue
        detail = f"{node.op.name} → {fmt_shape(node.shape)}" if node.shape else node.op.name
        out.append(
            types.DocumentSymbol(
                node.id, types.SymbolKind.Field, _range(node.span), _range(node.span), detail=detail
            )
        )
    out.sort(key=lambda s: (s.range.start.line, s.range.start.character))
    return out


@server.feature(
    types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=["-", "$", " ", "{"])
)
def complete(ls: YarchServer, params: types.CompletionParams) -> list[types.CompletionItem]:
    uri = params.text_document.uri
    return completions(ls.resolved.get(uri), _lines(ls, uri), params.position, to_fs_path(uri))


@server.feature(types.TEXT_DOCUMENT_DEFINITION)
def goto_definition(ls: YarchServer, params: types.DefinitionParams) -> types.Location | None:
    uri = params.text_document.uri
    lines = _lines(ls, uri)
    return definition(ls.resolved.get(uri), lines, params.position, uri)


@server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
def document_symbols(
    ls: YarchServer, params: types.DocumentSymbolParams
) -> list[types.DocumentSymbol]:
    return symbols(ls.resolved.get(params.text_document.uri))


def serve() -> None:
    """Run the server on stdin and stdout until the client asks it to exit."""
    # what is loaded by now (pydantic, lsprotocol's converters, the ops) lives as long as the
    # server: out of the cyclic collector's way; and the collector runs between lints
    # (`collect_later`), not on its own
    gc.collect()
    gc.freeze()
    gc.disable()
    server.start_io()
