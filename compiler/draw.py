"""The architecture diagram (`yarch draw`): DOT source from the graph, rendered by Graphviz.

`to_dot` turns an `ArchGraph` into DOT text, written out directly rather than through the
`graphviz` package so that every byte is under our control: the output is deterministic (graph
order, ids from node names, never `id()`), and every label is escaped in one place (`_html`,
`_quote`). `render` runs Graphviz's `dot` on it with a timeout and writes the result atomically.
Nothing here imports torch.

What the diagram shows: one box per node, coloured by its op's kind, with the op's one-line
description and its parameter count; a labelled cluster per block instance, nested as the
instances are (an Inception module's four branches sit side by side in it); edges labelled with
the shape their source produces; the input and the named outputs as ovals, training-only outputs
dashed; nodes (or clusters) that lint errors are about in red, with the message.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import textwrap
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .diagnostics import Diagnostic
from .graph import ArchGraph, Shape

FORMATS = ("svg", "png", "pdf", "dot")
RANKDIRS = ("TB", "LR")
DOT_TIMEOUT = 60.0  # seconds; a diagram of a few hundred nodes takes well under one
INSTALL_HINT = (
    "Graphviz's `dot` was not found on PATH; install it with `apt-get install graphviz` "
    "(Debian, Ubuntu), `brew install graphviz` (macOS) or from https://graphviz.org/download/"
)

# Graphviz refuses strings longer than 16,384 characters; every piece of text that comes from a
# spec is cut far below that (`_clip`), so no label can approach it.
MAX_LABEL = 16_384
MAX_TEXT = 120  # one line of text taken from a spec: a name, a block type, a description line
MAX_MESSAGE = 100  # a diagnostic message, in the node it is about (the tooltip has it whole)
WRAP = 40

FONT = "Helvetica"
INK = "#333333"
MUTED = "#666666"
ERROR = "#CC0000"
ERROR_FILL = "#FFD6D6"

# Fill colours by op kind: Paul Tol's "light" scheme, designed for black text on coloured
# fills and distinguishable with the common colour-vision deficiencies
# (https://personal.sron.nl/~pault/#sec:qualitative). Red stays free for errors.
KINDS: dict[str, tuple[str, str]] = {
    # kind: (fill colour, legend text)
    "conv": ("#77AADD", "convolution"),
    "pool": ("#EE8866", "pooling"),
    "norm": ("#EEDD88", "normalisation"),
    "act": ("#BBCC33", "activation"),
    "dropout": ("#DDDDDD", "dropout"),
    "linear": ("#44BB99", "linear"),
    "reshape": ("#99DDFF", "flatten, reshape"),
    "merge": ("#FFAABB", "concat, add"),
    "block": ("#FFFFFF", "block (collapsed)"),
    "other": ("#FFFFFF", "other"),
}
TERMINAL_FILL = "#444444"  # the input and the outputs: dark ovals with white text


# --- escaping ----------------------------------------------------------------------------------


def _printable(text: str) -> str:
    """Control and other invisible characters as visible escapes (`\\x07`, `\\u2028`)."""
    if text.isprintable():
        return text
    return "".join(
        ch if ch.isprintable() else f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"
        for ch in text
    )


def _clip(text: str, limit: int = MAX_TEXT) -> str:
    """One line of at most `limit` characters: whitespace runs folded, the rest cut with `…`."""
    text = " ".join(_printable(part) for part in text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _html(text: str) -> str:
    """Text for an HTML-like label: `&`, `<`, `>` and quotes as entities, no control
    characters (XML forbids them), every character visible."""
    return (
        _printable(text)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
    )


def _quote(text: str) -> str:
    """A DOT double-quoted string (an id or an escString attribute such as a tooltip).

    DOT only unescapes `\\"`; Graphviz then reads backslash sequences in escStrings (`\\n`,
    `\\N`, `\\l`), so every backslash is doubled, which also keeps a trailing backslash from
    escaping the closing quote. A `:` inside quotes is part of the id, never a port.
    """
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return '"' + _printable(text) + '"'


def _attrs(**items: str | float | None) -> str:
    """`[a="x", label=<...>]`; a value already wrapped in `<...>` is an HTML label."""
    parts = []
    for key, value in items.items():
        if value is None:
            continue
        text = str(value)
        if not (text.startswith("<") and text.endswith(">")):
            text = _quote(text)
        parts.append(f"{key}={text}")
    return "[" + ", ".join(parts) + "]"


def fmt_shape(shape: Shape | None) -> str:
    """`480x28x28`, or `?` where inference could not tell."""
    return "?" if shape is None else "x".join(str(d) for d in shape)


def fmt_params(n: int) -> str:
    return f"{n:,} param" + ("" if n == 1 else "s")


# --- what is drawn -----------------------------------------------------------------------------


@dataclass
class _Layout:
    """The diagram's structure: which items sit in which cluster, in graph order."""

    # cluster (instance id, None for the top level) -> its items: ("node" | "block" |
    # "cluster", id), in the order of their first node
    children: dict[str | None, list[tuple[str, str]]] = field(default_factory=dict)
    drawn: dict[str, str] = field(default_factory=dict)  # node id -> DOT id of what shows it
    members: dict[str, list[str]] = field(default_factory=dict)  # instance -> node ids
    kinds: set[str] = field(default_factory=set)
    # instance -> the instances around it and itself, outermost first
    chains: dict[str, list[str]] = field(default_factory=dict)
    depth: int | None = None

    def add(self, item: tuple[str, str], parent: str | None) -> None:
        siblings = self.children.setdefault(parent, [])
        if item not in siblings:
            siblings.append(item)


def _chain(graph: ArchGraph, scope: Sequence[str]) -> list[str]:
    """The ids of the block instances around a scope, outermost first."""
    prefixes = (".".join(scope[:k]) for k in range(1, len(scope) + 1))
    return [p for p in prefixes if p in graph.instances]


def _block_id(instance: str) -> str:
    # names are identifiers joined by dots: a space and brackets cannot clash with a node id
    return f"{instance} [block]"


def _output_id(name: str) -> str:
    return f"{name} [output]"


def _layout(graph: ArchGraph, depth: int | None) -> _Layout:
    layout = _Layout(depth=depth)
    for node_id in graph.order:
        chain = _chain(graph, graph.node(node_id).scope)
        for k, inst in enumerate(chain):
            layout.members.setdefault(inst, []).append(node_id)
            layout.chains.setdefault(inst, chain[: k + 1])
        if depth is not None and len(chain) > depth:
            shown, item = chain[:depth], ("block", chain[depth])
            layout.drawn[node_id] = _block_id(chain[depth])
            layout.kinds.add("block")
        else:
            shown, item = chain, ("node", node_id)
            layout.drawn[node_id] = node_id
            layout.kinds.add(_kind(graph, node_id))
        for outer, inner in zip([None, *shown], shown, strict=False):
            layout.add(("cluster", inner), outer)
        layout.add(item, shown[-1] if shown else None)
    return layout


def _kind(graph: ArchGraph, node_id: str) -> str:
    kind = graph.node(node_id).op.kind
    return kind if kind in KINDS or kind == "input" else "other"


def _problems(
    graph: ArchGraph, diagnostics: Iterable[Diagnostic], layout: _Layout
) -> dict[str, list[str]]:
    """DOT id of a drawn node, or `cluster:<instance>` -> the error messages about it."""
    out: dict[str, list[str]] = {}
    for d in diagnostics:
        if not d.is_error or d.node is None:
            continue
        if d.node in layout.drawn:
            key = layout.drawn[d.node]
        elif d.node in layout.chains:
            chain = layout.chains[d.node]
            if layout.depth is None or len(chain) <= layout.depth:
                key = f"cluster:{d.node}"
            else:  # inside a block drawn as one node
                key = _block_id(chain[layout.depth])
        else:
            continue
        if d.message not in out.setdefault(key, []):
            out[key].append(d.message)
    return out


def _message_rows(messages: Sequence[str]) -> list[str]:
    rows = []
    for message in messages[:2]:
        text = _clip(message.replace("`", ""), MAX_MESSAGE)
        rows += textwrap.wrap(text, WRAP) or [""]
    if len(messages) > 2:
        rows.append(f"and {len(messages) - 2} more")
    return rows


def _label(rows: Sequence[tuple[str, str]]) -> str:
    """An HTML-like label, one line per row: (style, text) with style in
    "b" (bold), "" (plain), "small", "error". The text is escaped here and nowhere else."""
    lines = []
    for style, text in rows:
        body = _html(text)
        if style == "b":
            body = f"<B>{body}</B>"
        elif style == "small":
            body = f'<FONT POINT-SIZE="8" COLOR="{MUTED}">{body}</FONT>'
        elif style == "error":
            body = f'<FONT POINT-SIZE="9" COLOR="{ERROR}">{body}</FONT>'
        lines.append(body)
    label = "<" + "<BR/>".join(lines) + ">"
    if len(label) > MAX_LABEL:  # pragma: no cover - every row is clipped far below this
        raise ValueError("label too long")
    return label


# --- DOT ---------------------------------------------------------------------------------------


def to_dot(
    graph: ArchGraph,
    diagnostics: Iterable[Diagnostic] = (),
    depth: int | None = None,
    rankdir: str = "TB",
    caption: str | None = None,
) -> str:
    """DOT source of the graph: the same graph gives the same bytes.

    `depth`: block instances nested deeper than `depth` are drawn as one node each (0: every
    top-level block). `caption`: text under the title (the spec's source or description).
    Errors among `diagnostics` whose `node` is drawn colour it red and show their message.
    """
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, not {rankdir!r}")
    diagnostics = list(diagnostics)
    layout = _layout(graph, depth)
    problems = _problems(graph, diagnostics, layout)
    out = [f"digraph {_quote(graph.name)} {{"]
    out += _header(graph, diagnostics, rankdir, caption, problems)
    out += _items(graph, layout, problems, None, 1)
    out += _terminals(graph, layout)
    out += _edges(graph, layout)
    out += _legend(layout)
    out.append("}")
    return "\n".join(out) + "\n"


def _header(
    graph: ArchGraph,
    diagnostics: Sequence[Diagnostic],
    rankdir: str,
    caption: str | None,
    problems: dict[str, list[str]],
) -> list[str]:
    rows = [("b", _clip(graph.name))]
    if caption:
        rows += [("small", line) for line in textwrap.wrap(_clip(caption, 300), 80)]
    errors = sum(d.is_error for d in diagnostics)
    if errors:
        shown = sum(len(m) for m in problems.values())
        rows.append(
            (
                "error",
                f"{errors} lint error{'s' if errors != 1 else ''}"
                + (f", {shown} shown in red" if shown else "")
                + ": run `yarch lint` for the details",
            )
        )
    title = _label(rows).replace("<B>", '<B><FONT POINT-SIZE="16">', 1).replace(
        "</B>", "</FONT></B>", 1
    )
    return [
        "  "
        + "graph "
        + _attrs(
            label=title,
            labelloc="t",
            rankdir=rankdir,
            fontname=FONT,
            fontsize=10,
            fontcolor=INK,
            nodesep=0.2,
            ranksep=0.3,
            newrank="true",
            bgcolor="white",
            pad=0.2,
        )
        + ";",
        "  node "
        + _attrs(
            shape="box",
            style="rounded,filled",
            fontname=FONT,
            fontsize=10,
            fontcolor=INK,
            color=INK,
            penwidth=0.8,
            margin="0.08,0.03",
            height=0.3,
        )
        + ";",
        "  edge "
        + _attrs(
            fontname=FONT, fontsize=8, fontcolor=MUTED, color=MUTED, arrowsize=0.6, penwidth=0.8
        )
        + ";",
    ]


def _local(instance: str, parent: str | None) -> str:
    """An instance's name within its parent (`branch2` inside `inception4a`)."""
    if parent and instance.startswith(parent + "."):
        return instance[len(parent) + 1 :]
    return instance


def _block_type(graph: ArchGraph, instance: str) -> str:
    inst = graph.instances[instance]
    return _clip(f"{inst.block} x{inst.repeat}" if inst.repeat else inst.block, 60)


def _items(
    graph: ArchGraph,
    layout: _Layout,
    problems: dict[str, list[str]],
    cluster: str | None,
    level: int,
) -> Iterator[str]:
    pad = "  " * level
    for what, ident in layout.children.get(cluster, []):
        if what == "cluster":
            yield from _cluster(graph, layout, problems, ident, cluster, level)
        elif what == "block":
            yield pad + _quote(_block_id(ident)) + " " + _block_node(graph, layout, problems, ident)
        else:
            yield pad + _quote(ident) + " " + _node(graph, problems, ident)


def _cluster(
    graph: ArchGraph,
    layout: _Layout,
    problems: dict[str, list[str]],
    instance: str,
    parent: str | None,
    level: int,
) -> Iterator[str]:
    pad = "  " * level
    params = sum(graph.node(n).params for n in layout.members.get(instance, []))
    title = f"{_clip(_local(instance, parent))} ({_block_type(graph, instance)})"
    rows = [("b", title)]
    if params:
        rows.append(("small", fmt_params(params)))
    messages = problems.get(f"cluster:{instance}", [])
    rows += [("error", line) for line in _message_rows(messages)]
    nested = parent is not None
    style = {
        "label": _label(rows),
        "style": "rounded,dashed" if nested else "rounded,filled",
        "fillcolor": None if nested else "#F4F4F4",
        "color": ERROR if messages else "#999999",
        "penwidth": 2.5 if messages else 1,
        "fontname": FONT,
        "fontsize": 9 if nested else 10,
        "fontcolor": INK,
        "labeljust": "l",
        "margin": 6,
    }
    yield f"{pad}subgraph {_quote('cluster_' + instance)} {{"
    yield f"{pad}  graph {_attrs(**style)};"
    yield from _items(graph, layout, problems, instance, level + 1)
    yield f"{pad}}}"


def _node(graph: ArchGraph, problems: dict[str, list[str]], node_id: str) -> str:
    node = graph.node(node_id)
    kind = _kind(graph, node_id)
    messages = problems.get(node_id, [])
    tooltip = node_id + "".join(f"\nerror: {m}" for m in messages)
    if kind == "input":
        return _attrs(
            label=_label([("b", "input"), ("", fmt_shape(node.shape))]),
            shape="oval",
            style="filled",
            fillcolor=ERROR_FILL if messages else TERMINAL_FILL,
            fontcolor=INK if messages else "white",
            tooltip=tooltip,
        )
    rows = [("", _clip(node.op.describe(node.args)))]
    if node.name != node.op.name and not node.name.isdigit():
        rows.insert(0, ("b", _clip(node.name)))
    if node.params:
        rows.append(("small", fmt_params(node.params)))
    rows += [("error", line) for line in _message_rows(messages)]
    return _attrs(
        label=_label(rows),
        fillcolor=ERROR_FILL if messages else KINDS[kind][0],
        color=ERROR if messages else None,
        penwidth=2.5 if messages else None,
        tooltip=tooltip,
    )


def _block_node(
    graph: ArchGraph, layout: _Layout, problems: dict[str, list[str]], instance: str
) -> str:
    inside = layout.members.get(instance, [])
    params = sum(graph.node(n).params for n in inside)
    output = graph.instances[instance].output
    shape = graph.node(output).shape if output and graph.graph.has_node(output) else None
    messages = problems.get(_block_id(instance), [])
    rows = [
        ("b", _clip(instance)),
        ("", _block_type(graph, instance)),
        ("small", fmt_params(params)),
        ("small", fmt_shape(shape)),
    ]
    rows += [("error", line) for line in _message_rows(messages)]
    return _attrs(
        label=_label(rows),
        shape="box3d",
        style="filled",
        fillcolor=ERROR_FILL if messages else KINDS["block"][0],
        color=ERROR if messages else None,
        penwidth=2.5 if messages else None,
        tooltip=instance + "".join(f"\nerror: {m}" for m in messages),
    )


def _terminals(graph: ArchGraph, layout: _Layout) -> Iterator[str]:
    """The named outputs: dark ovals, training-only ones dashed and marked."""
    for name, node_id in graph.outputs.items():
        if node_id not in layout.drawn:
            continue
        shape = fmt_shape(graph.node(node_id).shape)
        if name in graph.train_only:
            rows = [("b", _clip(name)), ("", shape), ("small", "training only")]
            style = _attrs(
                label=_label(rows),
                shape="oval",
                style="dashed,filled",
                fillcolor="white",
                tooltip=f"output {name} (training only)",
            )
        else:
            rows = [("b", _clip(name)), ("", shape)]
            style = _attrs(
                label=_label(rows),
                shape="oval",
                style="filled",
                fillcolor=TERMINAL_FILL,
                fontcolor="white",
                tooltip=f"output {name}",
            )
        yield "  " + _quote(_output_id(name)) + " " + style


def _edges(graph: ArchGraph, layout: _Layout) -> Iterator[str]:
    seen: set[tuple[str, str]] = set()

    def edge(src: str, dst: str, label: str, **extra: str) -> Iterator[str]:
        if src != dst and (src, dst) not in seen:
            seen.add((src, dst))
            yield f"  {_quote(src)} -> {_quote(dst)} {_attrs(label=label, **extra)};"

    for node_id in graph.order:
        for source in graph.node(node_id).inputs:
            if source in layout.drawn:
                shape = fmt_shape(graph.node(source).shape)
                yield from edge(layout.drawn[source], layout.drawn[node_id], shape)
    for name, node_id in graph.outputs.items():
        if node_id in layout.drawn:
            shape = fmt_shape(graph.node(node_id).shape)
            extra = {"style": "dashed"} if name in graph.train_only else {}
            yield from edge(layout.drawn[node_id], _output_id(name), shape, **extra)


def _legend(layout: _Layout) -> Iterator[str]:
    kinds = [k for k in KINDS if k in layout.kinds]
    if not kinds:
        return
    cells = "".join(
        f'<TR><TD BGCOLOR="{KINDS[k][0]}" BORDER="1" WIDTH="14"> </TD>'
        f'<TD ALIGN="LEFT">{_html(KINDS[k][1])}</TD></TR>'
        for k in kinds
    )
    table = f'<<TABLE BORDER="0" CELLSPACING="2" CELLPADDING="1">{cells}</TABLE>>'
    yield '  subgraph "cluster_[legend]" {'
    yield "    graph " + _attrs(
        label="<<B>legend</B>>", style="rounded", color="#BBBBBB", fontsize=9, labeljust="l"
    ) + ";"
    yield '    "[legend]" ' + _attrs(label=table, shape="plain", fontsize=8) + ";"
    yield "  }"


# --- rendering ---------------------------------------------------------------------------------


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and `os.replace`, so a
    failure half-way leaves the old file (or none), never a truncated one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent or Path("."), prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def render(
    dot_source: str, path: str | Path, fmt: str, timeout: float = DOT_TIMEOUT
) -> str | None:
    """Write the diagram to `path` in `fmt` (svg, png, pdf or dot); None when it did.

    When Graphviz's `dot` is missing, times out or fails, the DOT source is written next to
    `path` (`path` with the suffix `.dot`) instead, and the returned message says why and
    where. Raises `OSError` only when the file itself cannot be written.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    path = Path(path)
    data = dot_source.encode("utf-8")
    if fmt == "dot":
        write_atomic(path, data)
        return None
    problem = _run_dot(data, fmt, timeout)
    if isinstance(problem, bytes):
        write_atomic(path, problem)
        return None
    fallback = path.with_suffix(".dot")
    write_atomic(fallback, data)
    return f"{problem}; wrote the DOT source to {fallback} instead"


def _run_dot(data: bytes, fmt: str, timeout: float) -> bytes | str:
    """The rendered bytes, or why there are none."""
    exe = shutil.which("dot")
    if exe is None:
        return INSTALL_HINT
    try:
        done = subprocess.run(
            [exe, f"-T{fmt}"], input=data, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return f"`dot` did not finish within {timeout:g} seconds"
    except OSError as exc:
        return f"`dot` could not be run: {exc.strerror or exc}"
    if done.returncode != 0 or not done.stdout:
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = f": {err[-1]}" if err else ""
        return f"`dot -T{fmt}` failed (exit code {done.returncode}){detail}"
    return done.stdout
