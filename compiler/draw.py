"""The architecture diagram (`yarch draw`): DOT source from the graph, rendered by Graphviz.

`to_dot` builds the diagram with the `graphviz` package (a `Digraph`, a cluster subgraph per
block instance) and returns its DOT source. The package quotes ids and strings and writes each
attribute list sorted; what it leaves to its caller is done here, in one place: text inside
HTML-like labels is escaped (`_html`), plain strings get their backslashes, `&` and invisible
characters made literal (`_string`), and everything taken from a spec is cut to size. The output
is deterministic (graph order, ids from node names, never `id()`). `render` runs Graphviz's
`dot` on it under a timeout and a memory limit and writes the result atomically. Nothing here
imports torch, and graphviz is imported only once a diagram is made: the command line imports
this module, and `yarch lint` does not pay for the package.

What the diagram shows: one box per node, coloured by its op's kind, with the op's one-line
description and its parameter count; a labelled cluster per block instance, nested as the
instances are (an Inception module's four branches sit side by side in it); edges labelled with
the shape their source produces, except at a fork, where the shape is written once in the node
it leaves; the input and the named outputs as ovals, training-only outputs dashed; nodes (or
clusters) that lint errors are about in red, with the message. Left to right, the network is
wrapped into rows (see "rows" below). Text meets WCAG AA contrast on every fill (see INK).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import re
import resource
import shutil
import subprocess
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .diagnostics import Diagnostic, cap, terminal_safe
from .files import GENERATED_MARK, comment_safe, write_atomic
from .gcpause import no_cyclic_gc
from .graph import ArchGraph
from .ops import OPS
from .ops.base import BrokenOp
from .syntax import fmt_shape

if TYPE_CHECKING:
    from graphviz import Digraph

FORMATS = ("svg", "png", "pdf", "dot")
# `--dpi` for a PNG: 36 is a thumbnail, 1200 a print; a GoogLeNet at 1200 dpi is 12,000 x
# 50,000 pixels, near what cairo draws at all (32,767 a side: Graphviz scales a bigger one down)
DPI_RANGE = (36, 1200)
RANKDIRS = ("TB", "LR")
DOT_TIMEOUT = 60.0  # seconds; a diagram of a few hundred nodes takes well under one
# `dot` is not run at all on more nodes than this. Its layout time grows faster than the node
# count: on one core, a chain of 10,000 nodes takes 1.5 s, but 2,000 nodes in residual blocks
# (one cluster each) take 2.8 s, 4,000 take 10 s, 6,000 take 22 s and 10,000 take 176 s; 2,800
# nodes in Inception modules take 1.8 s and 5,600 take 10 s. A diagram that big is unreadable
# anyway: `--depth` draws blocks as single nodes.
MAX_NODES = 5_000
# Clusters cost `dot` far more than nodes: a block of four layers repeated 100, 200, 400 and
# 1,000 times (one cluster each) takes it 0.4, 1.1, 4.4 and 130 s; a 251-byte spec of 700
# nested blocks kept it busy 44 s, and a 408-byte spec took it to 3.2 GB. More clusters or
# deeper nesting than this is not laid out (the DOT source is written instead), and `dot` may
# not use more memory than DOT_MEMORY in any case. GoogLeNet draws 48 clusters, torchvision's
# GoogLeNet 98.
MAX_CLUSTERS = 500
MAX_CLUSTER_DEPTH = 24
DOT_MEMORY = 1 << 30
INSTALL_HINT = (
    "Graphviz's `dot` was not found on PATH; install it with `apt-get install graphviz` "
    "(Debian, Ubuntu), `brew install graphviz` (macOS) or from https://graphviz.org/download/"
)

# Graphviz refuses strings longer than 16,384 characters; every piece of text that comes from a
# spec is cut far below that (`_clip`), so no label can approach it.
MAX_LABEL = 16_384
MAX_TEXT = 120  # one line of text taken from a spec: a name, a block type, a description line
MAX_ID = 200  # longer ids (a 20,000-character layer name) are shortened with a hash
MAX_MESSAGE = 100  # a diagnostic message, in the node it is about (the tooltip has it whole)
WRAP = 40

FONT = "Helvetica"
# Text colours, chosen for WCAG 2.x contrast level AA (at least 4.5:1 for normal text) on every
# fill they are drawn on (`tests/test_draw_readable.py` measures each pair the DOT uses). Grey
# #666666 on the convolution blue was 2.4:1 (yarch issue 16): text on a coloured fill is INK,
# small or not; MUTED (7.0:1 on white, 6.4:1 on a cluster's grey) is for the edges' shapes.
INK = "#222222"
MUTED = "#595959"
ERROR = "#B00000"  # 5.6:1 on ERROR_FILL (#CC0000 was 4.4:1)
ERROR_FILL = "#FFD6D6"
CLUSTER_FILL = "#F4F4F4"

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
    # these two are named after the ops drawn of them (`concat, mul`)
    "reshape": ("#99DDFF", "flatten, reshape"),
    "merge": ("#FFAABB", "concat, add"),
    "block": (CLUSTER_FILL, "block (collapsed)"),
    "other": ("#FFFFFF", "other"),
}
TERMINAL_FILL = "#444444"  # the input and the outputs: dark ovals with white text (9.7:1)


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


def _string(text: str) -> str:
    """A plain string (an escString such as a tooltip, or an id), ready for the package to quote.

    The package puts it in double quotes and escapes the quotes in it; the rest is done here.
    Graphviz reads backslash sequences in escStrings (`\\n`, `\\N`, `\\l`) and the package
    leaves backslashes alone, so `graphviz.escape` doubles them, which also keeps a trailing
    backslash from escaping the closing quote, and marks the text as no HTML: `<b>x</b>` is not
    taken for an HTML-like label. Line breaks become `\\n`, other invisible characters visible
    escapes. A `:` stays part of the id (`_edge`). Graphviz reads HTML entities in strings and
    copies what looks like one into SVG as it is (`&#1;` would make the SVG invalid XML), so `&`
    is written `&amp;`. Graphviz rejects a string of more than 16,384 characters: a longer one
    is cut (ids never are: `_id` shortens them first, keeping them distinct).
    """
    import graphviz  # here, not at the top: see the module's docstring

    while True:
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        escaped = graphviz.escape(
            "\n".join(_printable(line).replace("&", "&amp;") for line in lines)
        )
        string = graphviz.nohtml(escaped.replace("\n", "\\n"))
        # quoted, it takes two quotes more and a backslash before each quote in it, at most
        if len(string) + string.count('"') + 2 <= MAX_LABEL - 64:
            return string
        text = text[: len(text) // 2] + "…"


@functools.lru_cache(maxsize=1 << 16)  # a node's id is written with each of its edges
def _id(ident: str) -> str:
    """A node, cluster or graph id, for the package to quote. Ids come from names (never
    `id()`); a name can be any length, so a very long one keeps its start and a hash of the
    whole."""
    if len(ident) > MAX_ID:
        digest = hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        ident = f"{ident[: MAX_ID - 20]}…{digest}"
    return _string(ident)


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
    ops: dict[str, set[str]] = field(default_factory=dict)  # kind -> the ops drawn of it
    depth: int | None = None
    folded: dict[str, list[str]] = field(default_factory=dict)  # node -> activations drawn in it
    placed: set[tuple[str | None, tuple[str, str]]] = field(default_factory=set)
    # the edges between drawn items, once each, in graph order: (tail, head, the node whose
    # value it carries, extra attributes); the outputs' edges last
    edges: list[tuple[str, str, str, dict[str, str]]] = field(default_factory=list)
    # drawn item -> the shapes of the values that leave it for several places (a fork): shown
    # in it once, their edges unlabelled (labels on every edge of a fork collide)
    forks: dict[str, list[str]] = field(default_factory=dict)
    forked: set[str] = field(default_factory=set)  # the node ids of those values
    labels: dict[str, str] = field(default_factory=dict)  # drawn item -> its label, as written

    def add(self, item: tuple[str, str], parent: str | None) -> None:
        # a set, not the list, answers "already there?": a cluster of 100,000 layers
        if (parent, item) not in self.placed:
            self.placed.add((parent, item))
            self.children.setdefault(parent, []).append(item)


def _block_id(instance: str) -> str:
    # names are identifiers joined by dots: a space and brackets cannot clash with a node id
    return f"{instance} [block]"


def _output_id(name: str) -> str:
    return f"{name} [output]"


def _foldable(graph: ArchGraph, node_id: str, chains: dict[str, list[str]]) -> str | None:
    """The node an activation is drawn inside (`conv 1x1, 64 + relu`), if any: its only input,
    when that feeds nothing else, is no output and sits in the same block. Halves the height of
    a GoogLeNet without hiding anything: an activation keeps its input's shape."""
    node = graph.node(node_id)
    if node.op.kind != "act" or len(node.inputs) != 1:
        return None
    source = node.inputs[0]
    if (
        source not in chains
        or source == ArchGraph.INPUT
        or graph.graph.out_degree(source) != 1
        or source in graph.outputs.values()
        or chains[source] != chains[node_id]
    ):
        return None
    return source


def _layout(graph: ArchGraph, depth: int | None, fold: bool) -> _Layout:
    layout = _Layout(depth=depth, members=graph.member_map())
    node_chains: dict[str, list[str]] = {}
    for node_id in graph.order:
        chain = node_chains[node_id] = graph.chain(graph.node(node_id).scope)
        if depth is not None and len(chain) > depth:
            shown, item = chain[:depth], ("block", chain[depth])
            layout.drawn[node_id] = _block_id(chain[depth])
            layout.kinds.add("block")
        elif fold and (host := _foldable(graph, node_id, node_chains)) is not None:
            host = layout.drawn[host]
            layout.drawn[node_id] = host
            layout.folded.setdefault(host, []).append(node_id)
            continue
        else:
            shown, item = chain, ("node", node_id)
            layout.drawn[node_id] = node_id
            if graph.node(node_id).op is not BrokenOp:  # drawn red, not in a kind's colour
                kind = _kind(graph, node_id)
                layout.kinds.add(kind)
                layout.ops.setdefault(kind, set()).add(graph.node(node_id).op.name)
        for outer, inner in zip([None, *shown], shown, strict=False):
            layout.add(("cluster", inner), outer)
        layout.add(item, shown[-1] if shown else None)
    _connect(graph, layout)
    return layout


def _connect(graph: ArchGraph, layout: _Layout) -> None:
    """The drawn edges and the forks among them (`_Layout.edges`, `forks`, `forked`)."""
    seen: set[tuple[str, str]] = set()
    heads: dict[str, set[str]] = {}

    def edge(src: str, dst: str, value: str, **extra: str) -> None:
        if src != dst and (src, dst) not in seen:
            seen.add((src, dst))
            layout.edges.append((src, dst, value, extra))
            heads.setdefault(value, set()).add(dst)

    for node_id in graph.order:
        for source in graph.node(node_id).inputs:
            if source in layout.drawn:
                edge(layout.drawn[source], layout.drawn[node_id], source)
    for name, node_id in graph.outputs.items():
        if node_id in layout.drawn:
            extra = {"style": "dashed"} if name in graph.train_only else {}
            edge(layout.drawn[node_id], _output_id(name), node_id, **extra)
    for tail, _head, value, _extra in layout.edges:
        if len(heads[value]) > 1 and value not in layout.forked:
            layout.forked.add(value)
            shape = fmt_shape(graph.node(value).shape)
            if shape not in layout.forks.setdefault(tail, []):
                layout.forks[tail].append(shape)


def _kind(graph: ArchGraph, node_id: str) -> str:
    kind = graph.node(node_id).op.kind
    return kind if kind in KINDS or kind == "input" else "other"


def _problems(
    graph: ArchGraph, diagnostics: Iterable[Diagnostic], layout: _Layout
) -> dict[str, list[str]]:
    """DOT id of a drawn node, or `cluster:<instance>` -> the error messages about it (each
    diagnostic names its node: resolve names the layer a schema error broke)."""
    out: dict[str, list[str]] = {}
    for node_id in layout.drawn:  # drawn red even if no error is traced to them
        if graph.node(node_id).op is BrokenOp:
            out[layout.drawn[node_id]] = []
    for d in diagnostics:
        if not d.is_error or d.node is None:
            continue
        if d.node in layout.drawn:
            key = layout.drawn[d.node]
        elif d.node in layout.members:
            chain = graph.chain(d.node.split("."))
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


def _label(rows: Sequence[tuple[str, str]], left: bool = False) -> str:
    """An HTML-like label, one line per row: (style, text) with style in "title", "b" (bold),
    "" (plain), "small", "error". The text is escaped here and nowhere else: the package
    writes a string in `<...>` as an HTML-like label, as it is.
    `left`: lines flush left (cluster titles), else centred."""
    lines = []
    for style, text in rows:
        body = _html(text)
        if style == "title":
            body = f'<B><FONT POINT-SIZE="16">{body}</FONT></B>'
        elif style == "b":
            body = f"<B>{body}</B>"
        elif style == "small":  # in the colour of the text around it: see INK
            body = f'<FONT POINT-SIZE="8">{body}</FONT>'
        elif style == "error":
            body = f'<FONT POINT-SIZE="9" COLOR="{ERROR}">{body}</FONT>'
        lines.append(body)
    while True:
        if left:
            label = "<" + "".join(line + '<BR ALIGN="LEFT"/>' for line in lines) + ">"
        else:
            label = "<" + "<BR/>".join(lines) + ">"
        # every row is clipped far below Graphviz's limit; should many rows add up to it, the
        # last ones give way to an ellipsis
        if len(label) <= MAX_LABEL - 64 or len(lines) < 2:
            return label
        lines = [*lines[: len(lines) // 2], "…"]


# --- DOT ---------------------------------------------------------------------------------------

# Every value the package writes is a string: numbers are given as text.
NODE_STYLE = {
    "shape": "box",
    "style": "rounded,filled",
    "fontname": FONT,
    "fontsize": "10",
    "fontcolor": INK,
    "color": INK,
    "penwidth": "0.8",
    "margin": "0.08,0.03",
    "height": "0.3",
}
EDGE_STYLE = {
    "fontname": FONT,
    "fontsize": "8",
    "fontcolor": MUTED,
    "color": MUTED,
    "arrowsize": "0.6",
    "penwidth": "0.8",
}


@no_cyclic_gc()
def to_dot(
    graph: ArchGraph,
    diagnostics: Iterable[Diagnostic] = (),
    depth: int | None = None,
    rankdir: str = "TB",
    caption: str | None = None,
    fold_activations: bool = True,
    source: str | None = None,
) -> str:
    """DOT source of the graph: the same graph gives the same bytes.

    `depth`: block instances nested deeper than `depth` are drawn as one node each (0: every
    top-level block). `caption`: text under the title (the spec's source or description).
    Errors among `diagnostics` whose `node` is drawn colour it red and show their message.
    `fold_activations`: an activation right after the only layer that feeds it is drawn in that
    layer's box (`conv 3x3 pad 1, 192 + relu`). `source`: the spec's path, named in the mark
    (an SVG comment) that tells `yarch build` the diagram is its own.
    """
    from graphviz import Digraph  # here, not at the top: see the module's docstring

    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, not {rankdir!r}")
    diagnostics = list(diagnostics)
    layout = _layout(graph, depth, fold_activations)
    problems = _problems(graph, diagnostics, layout)
    mark = GENERATED_MARK + (f" from {comment_safe(source)}" if source else "")
    header = _header(graph, diagnostics, rankdir, caption, problems, mark)
    if rankdir == "LR":
        _titled(header, layout)
    dot = Digraph(
        name=_id(graph.name), graph_attr=header, node_attr=NODE_STYLE, edge_attr=EDGE_STYLE
    )
    _items(dot, graph, layout, problems, None, header)
    _terminals(dot, graph, layout)
    # rows are for a diagram `dot` lays out: past MAX_NODES it is not given one (`render`)
    wrap = rankdir == "LR" and len(set(layout.drawn.values())) <= MAX_NODES
    cuts, inside = _wrapped(graph, layout) if wrap else ([], False)
    wraps = {(tail, head) for cut in cuts for tail, head in cut.edges}
    _edges(dot, graph, layout, wraps)
    _aligned(dot, graph, layout)
    if cuts:
        starts = [layout.drawn[graph.order[0]], *(cut.start for cut in cuts)]
        _row_starts(dot, starts, anchored=inside)
    if rankdir == "TB":
        _legend(dot, layout)
    return dot.source


def _header(
    graph: ArchGraph,
    diagnostics: Sequence[Diagnostic],
    rankdir: str,
    caption: str | None,
    problems: dict[str, list[str]],
    mark: str,
) -> dict[str, str]:
    """The graph's attributes: its title and caption, the lint errors counted, the layout."""
    rows = [("title", _clip(graph.name))]
    lines = [_clip(line, 300) for line in (caption or "").splitlines() if line.strip()]
    rows += [("small", part) for line in lines[:3] for part in textwrap.wrap(line, 100)]
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
    return {
        # the mark that tells `yarch build` a diagram is its own to replace or remove
        "comment": _string(mark),
        "label": _label(rows),
        "labelloc": "t",
        "rankdir": rankdir,
        "fontname": FONT,
        "fontsize": "10",
        "fontcolor": INK,
        "nodesep": "0.2",
        "ranksep": "0.3",
        "newrank": "true",
        "bgcolor": "white",
        "pad": "0.2",
    }


def _local(instance: str, parent: str | None) -> str:
    """An instance's name within its parent (`branch2` inside `inception4a`)."""
    if parent and instance.startswith(parent + "."):
        return instance[len(parent) + 1 :]
    return instance


def _block_type(graph: ArchGraph, instance: str) -> str:
    inst = graph.instances[instance]
    return _clip(f"{inst.block} x{inst.repeat}" if inst.repeat else inst.block, 60)


def _items(
    dot: Digraph,
    graph: ArchGraph,
    layout: _Layout,
    problems: dict[str, list[str]],
    cluster: str | None,
    inherited: dict[str, str],
) -> None:
    """The nodes, collapsed blocks and clusters directly inside `cluster`, added to `dot`;
    `inherited`: the graph attributes in force there (a subgraph inherits its parent's)."""
    for what, ident in layout.children.get(cluster, []):
        if what == "cluster":
            _cluster(dot, graph, layout, problems, ident, cluster, inherited)
            continue
        if what == "block":
            drawn = _block_id(ident)
            attrs = _block_node(
                graph, layout, problems, ident, cluster, layout.forks.get(drawn, ())
            )
        else:
            drawn = ident
            attrs = _node(graph, layout, problems, ident, layout.forks.get(drawn, ()))
        layout.labels[drawn] = attrs["label"] or ""
        dot.node(_id(drawn), **attrs)


def _cluster(
    dot: Digraph,
    graph: ArchGraph,
    layout: _Layout,
    problems: dict[str, list[str]],
    instance: str,
    parent: str | None,
    inherited: dict[str, str],
) -> None:
    from graphviz import Digraph

    params = sum(graph.node(n).params for n in layout.members.get(instance, []))
    title = f"{_clip(_local(instance, parent))} ({_block_type(graph, instance)})"
    rows = [("b", title)]
    if params:
        rows.append(("small", fmt_params(params)))
    messages = problems.get(f"cluster:{instance}", [])
    rows += [("error", line) for line in _message_rows(messages)]
    nested = parent is not None
    style = {
        "label": _label(rows, left=True),
        "style": "rounded,dashed" if nested else "rounded,filled",
        "fillcolor": None if nested else CLUSTER_FILL,
        "color": ERROR if messages else "#999999",
        "penwidth": "2.5" if messages else "1",
        "fontname": FONT,
        "fontsize": "9" if nested else "10",
        "fontcolor": INK,
        "labeljust": "l",
        "margin": "6",
    }
    # a Digraph of its own, added once filled: `dot.subgraph()` used as a context manager copies
    # the whole body of `dot` into each new subgraph first, quadratic in the clusters
    # only what differs from what the cluster inherits is written (a cluster of 25,000 nested
    # ones: the package quotes every attribute, and half the time went there); the drawing is
    # the same
    own = {k: v for k, v in style.items() if v is not None and inherited.get(k) != v}
    inner = Digraph(name=_id("cluster_" + instance), graph_attr=own)
    _items(inner, graph, layout, problems, instance, {**inherited, **own})
    dot.subgraph(inner)


def _node(
    graph: ArchGraph,
    layout: _Layout,
    problems: dict[str, list[str]],
    node_id: str,
    outputs: Sequence[str] = (),
) -> dict[str, str | None]:
    """A layer's box; `outputs`: the shapes of the values that leave it for several places,
    written once here instead of on each edge."""
    node = graph.node(node_id)
    kind = _kind(graph, node_id)
    messages = problems.get(node_id, [])
    red = node_id in problems
    # the ids of the layers drawn here (searchable in an SVG viewer), then the errors
    shown = " + ".join([node_id, *layout.folded.get(node_id, [])])
    tooltip = _string(shown + "".join(f"\nerror: {_clip(m, 1000)}" for m in messages))
    if kind == "input":
        return {
            "label": _label([("b", "input"), ("", fmt_shape(node.shape))]),
            "shape": "oval",
            "style": "filled",
            "fillcolor": ERROR_FILL if messages else TERMINAL_FILL,
            "fontcolor": INK if messages else "white",
            "tooltip": tooltip,
        }
    # a layer that failed validation: the op as written, marked
    described = [
        f"{node.layer.op} (invalid)"
        if node.op is BrokenOp
        else node.op.describe_at(node.args, node.input_shapes)
    ]
    folded = [graph.node(n) for n in layout.folded.get(node_id, [])]
    described += [n.op.describe_at(n.args, n.input_shapes) for n in folded]
    rows = [("", _clip(" + ".join(described)))]
    # a folded activation keeps its name (`conv1 + relu_1`): a diagnostic about it names it,
    # and the diagram must show where that is (yarch issue 16)
    names = [node, *folded]
    if not all(_generated_name(n.name, n.layer.op) for n in names):
        rows.insert(0, ("b", _clip(" + ".join(n.name for n in names))))
    if kind == "merge" and node.explain:
        rows.append(("small", _clip(_explained(node.explain))))
    if node.params:
        rows.append(("small", fmt_params(node.params)))
    rows += [("small", f"→ {shape}") for shape in outputs]
    rows += [("error", line) for line in _message_rows(messages)]
    return {
        "label": _label(rows),
        "fillcolor": ERROR_FILL if red else KINDS[kind][0],
        "color": ERROR if red else None,
        "penwidth": "2.5" if red else None,
        "tooltip": tooltip,
    }


def _explained(explain: str) -> str:
    """Where a concat's channels come from: `256 = 64 + 128 + 32 + 32`. The sum is taken here,
    not from the node's shape: an `expect:` that disagrees is trusted downstream, so the shape
    may say 832 where the branches give 736."""
    terms = explain.split(" + ")
    if len(terms) > 1 and all(t.isdigit() for t in terms):
        return f"{sum(int(t) for t in terms)} = {explain}"
    return explain


def _generated_name(name: str, op: str) -> bool:
    """A name yarch made up (`relu_1`, `flatten_2`, a `seq` member's `0`), not worth showing."""
    return name.isdigit() or name == op or re.fullmatch(re.escape(op) + r"_\d+", name) is not None


def _block_node(
    graph: ArchGraph,
    layout: _Layout,
    problems: dict[str, list[str]],
    instance: str,
    parent: str | None,
    outputs: Sequence[str] = (),
) -> dict[str, str | None]:
    """A block drawn as one node: its name, type (an anonymous `seq`: what is in it),
    parameters and output shape, and the shapes of other values that leave it for several
    places (`outputs`)."""
    inside = layout.members.get(instance, [])
    params = sum(graph.node(n).params for n in inside)
    output = graph.instances[instance].output
    shape = fmt_shape(graph.node(output).shape if output and graph.graph.has_node(output) else None)
    messages = problems.get(_block_id(instance), [])
    rows = [("b", _clip(_local(instance, parent))), ("", _block_type(graph, instance))]
    if graph.instances[instance].block == "seq":  # "seq" alone says nothing (yarch issue 16)
        rows.append(("", _summarised(graph, inside)))
    rows += [("small", fmt_params(params)), ("small", f"→ {shape}")]
    rows += [("small", f"→ {other}") for other in outputs if other != shape]
    rows += [("error", line) for line in _message_rows(messages)]
    return {
        "label": _label(rows),
        "shape": "box3d",
        "style": "filled",
        "margin": "0.12,0.06",
        "fillcolor": ERROR_FILL if messages else KINDS["block"][0],
        "color": ERROR if messages else None,
        "penwidth": "2.5" if messages else None,
        "tooltip": _string(instance + "".join(f"\nerror: {_clip(m, 1000)}" for m in messages)),
    }


# what a member of a collapsed `seq` is called in its summary: the op and its window, without
# the channels and padding (`conv 3x3/2`); activations, norms and dropout are left out
_QUIET_KINDS = ("act", "norm", "dropout")
SUMMARY_TEXT = 40


def _summarised(graph: ArchGraph, members: Sequence[str]) -> str:
    """What an anonymous block holds, clipped: `conv 1x1 → conv 3x3`."""
    parts: list[str] = []
    for node_id in members:
        node = graph.node(node_id)
        if node.op is BrokenOp or node.op.kind in _QUIET_KINDS:
            continue
        text = node.op.describe_at(node.args, node.input_shapes).split(",")[0]
        parts.append(re.sub(r" pad \S+", "", text))
        if sum(len(p) + 3 for p in parts) > SUMMARY_TEXT:
            break
    if not parts:  # only activations and the like: name the first
        parts = [graph.node(members[0]).op.name] if members else []
    return _clip(" → ".join(parts), SUMMARY_TEXT)


def _terminals(dot: Digraph, graph: ArchGraph, layout: _Layout) -> None:
    """The named outputs: dark ovals, training-only ones dashed and marked."""
    for name, node_id in graph.outputs.items():
        if node_id not in layout.drawn:
            continue
        shape = fmt_shape(graph.node(node_id).shape)
        if name in graph.train_only:
            rows = [("b", _clip(name)), ("", shape), ("small", "training only")]
            layout.labels[_output_id(name)] = _label(rows)
            dot.node(
                _id(_output_id(name)),
                label=_label(rows),
                shape="oval",
                style="dashed,filled",
                fillcolor="white",
                tooltip=_string(f"output {name} (training only)"),
            )
        else:
            rows = [("b", _clip(name)), ("", shape)]
            layout.labels[_output_id(name)] = _label(rows)
            dot.node(
                _id(_output_id(name)),
                label=_label(rows),
                shape="oval",
                style="filled",
                fillcolor=TERMINAL_FILL,
                fontcolor="white",
                tooltip=_string(f"output {name}"),
            )


def _edge(dot: Digraph, tail: str, head: str, label: str | None, **attrs: str) -> None:
    """`dot.edge` for ids made by `_id`. `Digraph.edge` reads `a:b` as node `a`, port `b`, but a
    name is never a port (a graph built by hand can have a `:` in one): such an edge is written
    here, its ids quoted whole by the package's `quote`, as `Digraph.node` quotes them."""
    if ":" not in tail and ":" not in head:
        dot.edge(tail, head, label=label, **attrs)
        return
    from graphviz.quoting import attr_list, quote

    dot.body.append(f"\t{quote(tail)} -> {quote(head)}{attr_list(label, kwargs=attrs)}\n")


def _edges(dot: Digraph, graph: ArchGraph, layout: _Layout, wraps: set[tuple[str, str]]) -> None:
    """Each edge labelled with the shape it carries, except at a fork: the shape is in the node
    it leaves, and the edges have it as their tooltip only. `wraps`: the edges from one row to
    the next, which do not rank their head."""
    for tail, head, value, extra in layout.edges:
        label: str | None = fmt_shape(graph.node(value).shape)
        if value in layout.forked:
            extra, label = {**extra, "tooltip": _string(label)}, None
        if (tail, head) in wraps:
            extra = {**extra, "constraint": "false"}
        _edge(dot, _id(tail), _id(head), label, **extra)


def _aligned(dot: Digraph, graph: ArchGraph, layout: _Layout) -> None:
    """Parallel branches start on one rank: inside a block, the sub-blocks and layers that read
    the same tensor (an Inception module's four branches, a residual block's downsample next to
    its first conv) begin side by side, not wherever the edge lengths would put them."""
    from graphviz import Digraph

    def entry(what: str, ident: str) -> tuple[str, str] | None:
        """(drawn source, first drawn node) of a child of a cluster."""
        if what == "node":
            inputs = graph.node(ident).inputs
            source = inputs[0] if len(inputs) == 1 else None
            first = ident
        else:
            source = graph.instances[ident].input
            first = layout.drawn[layout.members[ident][0]]
        if source is None or source not in layout.drawn:
            return None
        return layout.drawn[source], first

    for cluster, items in layout.children.items():
        if cluster is None:
            continue
        groups: dict[str, list[str]] = {}
        nested: dict[str, bool] = {}
        for what, ident in items:
            found = entry(what, ident)
            if found is not None and found[1] not in groups.get(found[0], []):
                groups.setdefault(found[0], []).append(found[1])
                nested[found[0]] = nested.get(found[0], False) or what != "node"
        for source, firsts in groups.items():
            if len(firsts) > 1 and nested[source]:
                same = Digraph()  # an anonymous subgraph: `{ rank=same; a; b }`
                same.attr(rank="same")
                for first in firsts:
                    same.node(_id(first))
                dot.subgraph(same)


# --- rows: a left-to-right diagram wrapped like text -------------------------------------------
#
# Left to right, a network is a strip: GoogLeNet at depth 0 was 3,704 x 257 points (14:1), a
# full ResNet-50 71:1 (yarch issue 16). So the chain is cut into rows, stacked top to bottom:
# each row starts on the first rank (its first item shares a rank with the input), and the
# edges from one row into the next do not rank their heads (`constraint=false`), so Graphviz
# lays out each row from the left again (`_row_starts` keeps the rows in order). A cut goes
# where the items before it reach those after it through one value only (between two blocks,
# never through an Inception module or a residual block), and the number of rows is the one
# whose estimated page comes closest to ASPECT. The estimate is made here, from the labels, so
# the DOT does not depend on Graphviz.

# The page a wrapped diagram aims at, width / height, as estimated: Graphviz makes it about 1.3
# times as wide (the rows share their ranks: a rank is as wide as its widest item in any row)
# and 0.8 times as high, so 1.1 gives about 16:10, the shape of a screen or a slide.
ASPECT = 1.3
MAX_ROWS = 24
DOMINANT = 0.6
# Estimates in points, for `dot`'s Helvetica and the attributes above: a character is about
# 0.55 of the font size wide, a line 1.2 of it high; ranks are RANK_GAP apart plus the edge
# label between them; nodes NODE_GAP apart; a cluster adds its title and margins.
CHAR = 0.55
RANK_GAP = 43.0
NODE_GAP = 14.0
CLUSTER_PAD = 34.0
ROW_GAP = 30.0
TITLE = 40.0


@dataclass
class _Cut:
    """Where a row ends: its first item after the cut, and the edges that cross it."""

    start: str
    edges: list[tuple[str, str]]


_POINT_SIZE = re.compile(r'POINT-SIZE="(\d+)"')
_TAG = re.compile(r"<[^>]*>")


def _extent(label: str) -> tuple[float, float]:
    """About how wide and high (points) a node with this HTML-like label is drawn."""
    width = height = 0.0
    for line in re.split(r"<BR[^>]*>", label):
        sizes = [int(size) for size in _POINT_SIZE.findall(line)]
        size = min(sizes) if sizes else 10
        text = _TAG.sub("", line)
        text = re.sub(r"&[a-z]+;|&#\d+;", "x", text)
        width = max(width, len(text) * size * CHAR * (1.1 if "<B>" in line else 1.0))
        height += size * 1.2
    return width + 20.0, max(height, 14.0) + 10.0


def _wrapped(graph: ArchGraph, layout: _Layout) -> tuple[list[_Cut], bool]:
    """The cuts of a left-to-right diagram into rows (none: one row is closest to ASPECT), and
    whether they are inside a block (then the rows' first items share its cluster)."""
    drawn = list(dict.fromkeys(layout.drawn[n] for n in graph.order))
    known = set(drawn)
    edges = [(t, h, v) for t, h, v, _ in layout.edges if t in known and h in known]
    sequence = _side_branches_first(drawn, edges)
    index = {item: i for i, item in enumerate(sequence)}
    extent = {item: _extent(label) for item, label in layout.labels.items()}
    # the unwrapped layout, estimated: where each item starts and ends along the rows
    start: dict[str, float] = {}
    end: dict[str, float] = {}
    into: dict[str, list[tuple[str, str]]] = {}
    for tail, head, value in edges:
        into.setdefault(head, []).append((tail, value))
    for item in sequence:
        gaps = [
            end[tail] + RANK_GAP + _label_width(graph, layout, value)
            for tail, value in into.get(item, [])
            if tail in end
        ]
        start[item] = max(gaps, default=0.0)
        end[item] = start[item] + extent.get(item, (40.0, 30.0))[0]
    # a cut before sequence[k] is possible where one item's value is all that crosses it
    reach: dict[str, int] = {}
    for tail, head, _value in edges:
        if index[head] > index[tail]:
            reach[tail] = max(reach.get(tail, 0), index[head])
    opened = [0] * (len(sequence) + 2)
    tails = [0] * (len(sequence) + 2)  # the sum of the live tails' indices: the one, if one
    for tail, last in reach.items():
        opened[index[tail] + 1] += 1
        opened[last + 1] -= 1
        tails[index[tail] + 1] += index[tail]
        tails[last + 1] -= index[tail]
    after: dict[str, list[str]] = {}
    feeds: dict[str, set[str]] = {}
    for tail, head, _value in edges:
        after.setdefault(tail, []).append(head)
        feeds.setdefault(head, set()).add(tail)
    parent = {
        _block_id(ident) if what == "block" else ident: cluster
        for cluster, items in layout.children.items()
        for what, ident in items
    }
    outer = {
        ident: cluster
        for cluster, items in layout.children.items()
        for what, ident in items
        if what == "cluster"
    }

    def clusters(item: str) -> list[str]:
        """The clusters around an item, innermost first."""
        chain, cluster = [], parent.get(item)
        while cluster is not None:
            chain.append(cluster)
            cluster = outer.get(cluster)
        return chain

    crossing: dict[int, list[tuple[str, str]]] = {}
    live = tail_sum = 0
    for k in range(len(sequence)):
        live += opened[k]
        tail_sum += tails[k]
        if k == 0 or live != 1:
            continue
        tail = sequence[tail_sum]
        heads = [h for h in after[tail] if index[h] >= k]
        # a head other than the row's first item must be held in place: by an edge from within
        # the row (a residual add) or by being in a block with the first item (a downsample
        # branch); a free one would float to the first rank, out of its row
        first = sequence[k]
        if all(
            h == first or len(feeds[h]) > 1 or set(clusters(h)) & set(clusters(first))
            for h in heads
        ):
            crossing[k] = [(tail, h) for h in heads]
    candidates = list(crossing)
    if not candidates:
        return [], False
    # what each item adds to the height of its row: itself, an output's oval after it, and
    # the title and margins of every cluster around it (counted once per row)
    spans: list[list[tuple[float, float, float]]] = [[] for _ in sequence]
    for item in sequence:
        spans[index[item]].append((start[item], end[item], extent.get(item, (40.0, 30.0))[1]))
    for tail, head, _value, _extra in layout.edges:
        if head not in index and tail in end:  # an output's oval, after its layer
            width, height = extent.get(head, (60.0, 36.0))
            left = end[tail] + RANK_GAP
            spans[index[tail]].append((left, left + width, height))
    around = [clusters(item) for item in sequence]

    def page(bounds: Sequence[int]) -> tuple[float, float]:
        width = height = 0.0
        for low, high in itertools.pairwise(bounds):
            row = [span for k in range(low, high) for span in spans[k]]
            boxes: dict[str, tuple[float, float]] = {}
            for k in range(low, high):
                for cluster in around[k]:
                    left, right = boxes.get(cluster, (start[sequence[k]], end[sequence[k]]))
                    boxes[cluster] = (min(left, start[sequence[k]]), max(right, end[sequence[k]]))
            row += [(left, right, CLUSTER_PAD) for left, right in boxes.values()]
            width = max(width, max(s[1] for s in row) - min(s[0] for s in row))
            height += _breadth(row) + ROW_GAP
        return width, height

    # The rows are cut in one scope: the top level, or, when one block takes up most of it
    # (MobileNet's `features`: DOMINANT of the length or more), inside that block, between its
    # children. Cuts in several scopes split clusters across rows, and the items beside a block
    # in its first and last row are pushed out of its way: ResNet-50 came out as a staircase.
    box: dict[str, tuple[float, float]] = {}
    for k, item in enumerate(sequence):
        for cluster in around[k]:
            left, right = box.get(cluster, (start[item], end[item]))
            box[cluster] = (min(left, start[item]), max(right, end[item]))
    scope: str | None = None
    left, right = 0.0, max(end.values())
    while True:
        inner = [c for what, c in layout.children.get(scope, []) if what == "cluster" and c in box]
        widest = max(inner, key=lambda c: box[c][1] - box[c][0], default=None)
        if widest is None or box[widest][1] - box[widest][0] < DOMINANT * (right - left):
            break
        scope, (left, right) = widest, box[widest]

    def common(k: int) -> str | None:
        """The innermost cluster around both sides of the cut before `sequence[k]`."""
        outer = set(around[index[crossing[k][0][0]]])
        return next((c for c in around[k] if c in outer), None)

    candidates = [k for k in candidates if common(k) == scope]
    best: tuple[float, list[int]] = (_misfit(*page([0, len(sequence)])), [])
    for rows in range(2, min(len(candidates) + 1, MAX_ROWS) + 1):
        cuts: list[int] = []
        for i in range(1, rows):
            goal = left + (right - left) * i / rows
            options = [k for k in candidates if not cuts or k > cuts[-1]]
            if not options:
                break
            cuts.append(min(options, key=lambda k, goal=goal: (abs(start[sequence[k]] - goal), k)))
        misfit = _misfit(*page([0, *cuts, len(sequence)]))
        if misfit < best[0]:
            best = (misfit, cuts)
    return [_Cut(sequence[k], crossing[k]) for k in best[1]], scope is not None


def _side_branches_first(items: Sequence[str], edges: Sequence[tuple[str, str, str]]) -> list[str]:
    """The items in an order where every edge points forward (as far as the graph is acyclic)
    and a branch that leaves the main path comes right after the item it leaves: the reverse
    postorder of a depth-first walk that takes the successors in graph order. GoogLeNet's
    auxiliary heads are written last, but `aux1` is drawn beside `inception4a`; in graph order
    its edge from there would span every place to cut the rows after it."""
    after: dict[str, list[str]] = {}
    for tail, head, _value in edges:
        after.setdefault(tail, []).append(head)
    done: set[str] = set()
    postorder: list[str] = []
    for root in items:
        if root in done:
            continue
        done.add(root)
        stack = [(root, iter(after.get(root, ())))]
        while stack:
            item, successors = stack[-1]
            for successor in successors:
                if successor not in done:
                    done.add(successor)
                    stack.append((successor, iter(after.get(successor, ()))))
                    break
            else:
                stack.pop()
                postorder.append(item)
    return postorder[::-1]


def _label_width(graph: ArchGraph, layout: _Layout, value: str) -> float:
    if value in layout.forked:
        return 0.0
    return len(fmt_shape(graph.node(value).shape)) * 8 * CHAR


def _breadth(spans: Sequence[tuple[float, float, float]]) -> float:
    """The most room, across a row, that the items side by side at one place take: `spans`
    are (from, to, height) along the row."""
    events = sorted(
        [(s[0], 1, s[2]) for s in spans] + [(s[1], 0, s[2]) for s in spans],
        key=lambda e: (e[0], e[1]),
    )
    live = most = 0.0
    for _at, opening, height in events:
        live += (height + NODE_GAP) if opening else -(height + NODE_GAP)
        most = max(most, live)
    return most


def _misfit(width: float, height: float) -> float:
    """How far a page of this size is from ASPECT (0: exactly; 1: e times too wide or high)."""
    return abs(math.log(max(width, 1.0) / max(height + TITLE, 1.0) / ASPECT))


def _row_starts(dot: Digraph, starts: Sequence[str], anchored: bool) -> None:
    """The rows in order, top to bottom: their first items on one rank, invisible edges between
    them in order. Graphviz 2.43 turns such a line of flat edges upside down inside a cluster
    when it lays out left to right (rows cut inside MobileNet's `features` came out bottom up),
    so rows cut inside a block (`anchored`) get an invisible anchor each, outside every
    cluster, and the anchors are lined up instead, each with an edge to its row's first item.
    Not always: an anchor also pulls the edge from the row above towards itself, and rows of
    few items (GoogLeNet at depth 0) got their wrapping edges tangled."""
    if len(starts) < 2:
        return
    from graphviz import Digraph

    anchors = [f"[row {i}]" for i in range(1, len(starts) + 1)] if anchored else list(starts)
    same = Digraph()  # an anonymous subgraph at the top level
    same.attr(rank="same")
    for anchor in anchors:
        if anchored:
            same.node(_id(anchor), label="", shape="point", style="invis", width="0", height="0")
        else:
            same.node(_id(anchor))
    for upper, lower in itertools.pairwise(anchors):
        same.edge(_id(upper), _id(lower), style="invis")
    dot.subgraph(same)
    if anchored:
        for anchor, first in zip(anchors, starts, strict=True):
            dot.edge(_id(anchor), _id(first), style="invis")


def _legend_text(kind: str, layout: _Layout) -> str:
    if kind not in ("reshape", "merge") or not layout.ops.get(kind):
        return KINDS[kind][1]
    drawn = layout.ops[kind]
    return ", ".join(name for name in OPS if name in drawn)  # in the registry's order


def _legend_table(layout: _Layout, per_row: int, border: str = "0") -> str | None:
    """The kinds drawn as swatches, `per_row` to a row, as an HTML-like table (None: none)."""
    kinds = [k for k in KINDS if k in layout.kinds]
    if not kinds:
        return None
    cells = [
        f'<TD BGCOLOR="{KINDS[k][0]}" BORDER="1" WIDTH="12" HEIGHT="12"></TD>'
        f'<TD ALIGN="LEFT">{_html(_legend_text(k, layout))}</TD>'
        for k in kinds
    ]
    lines = [cells[i : i + per_row] for i in range(0, len(cells), per_row)]
    title = f'<TD ROWSPAN="{len(lines)}" VALIGN="TOP"><B>legend</B></TD>'
    rows = "".join(
        "<TR>" + (title if i == 0 else "") + "".join(line) + "</TR>" for i, line in enumerate(lines)
    )
    # a border round the table only, not round every cell (CELLBORDER follows BORDER)
    style = ' CELLBORDER="0" COLOR="#BBBBBB" STYLE="ROUNDED"' if border != "0" else ""
    return f'<TABLE BORDER="{border}"{style} CELLSPACING="3" CELLPADDING="1">{rows}</TABLE>'


def _legend(dot: Digraph, layout: _Layout) -> None:
    """Top to bottom, the kinds drawn, four to a row, in a cluster of its own: a single flat
    node, so it takes little more height than the input beside it. (Left to right, the legend
    is under the title instead, see `_titled`: on the first rank it would widen the first
    column of every row.)"""
    from graphviz import Digraph

    table = _legend_table(layout, 4)
    if table is None:
        return
    legend = Digraph(
        name="cluster_[legend]",
        graph_attr={"label": "", "style": "rounded", "color": "#BBBBBB", "margin": "4"},
    )
    legend.node(
        "[legend]", label=f"<{table}>", shape="plain", style="", fontsize="8", tooltip="legend"
    )
    dot.subgraph(legend)


def _titled(header: dict[str, str], layout: _Layout) -> None:
    """The legend under the title, in the graph's label (left to right)."""
    table = _legend_table(layout, 4, border="1")
    if table is not None:
        title = header["label"][1:-1]  # an HTML-like label: `<...>`
        legend = f'<FONT POINT-SIZE="8">{table}</FONT>'
        header["label"] = (
            f'<<TABLE BORDER="0" CELLSPACING="4"><TR><TD>{title}</TD></TR>'
            f"<TR><TD>{legend}</TD></TR></TABLE>>"
        )


# --- rendering ---------------------------------------------------------------------------------


def caption_of(spec: object) -> str:
    """The text under a diagram's title: the spec's `source:` and `description:`."""
    parts = [getattr(spec, "source", None), getattr(spec, "description", None)]
    return "\n".join(p for p in parts if p)


def count_nodes(dot_source: str) -> int:
    """The nodes a DOT source declares, as `to_dot` writes them: one statement a line."""
    return len(_NODE_STATEMENT.findall(dot_source))


# An id as the package writes it: quoted, or bare when it is an identifier or a number. A bare
# `graph`, `node` or `edge` starts an attribute statement (the package quotes an id spelt so).
_ID = r'(?:"(?:[^"\\]|\\.)*"|[A-Za-z0-9_.-]+)'
_NODE_STATEMENT = re.compile(rf"^[ \t]*(?!(?:graph|node|edge) \[){_ID} \[", re.MULTILINE)
_CLUSTER_STATEMENT = re.compile(r'^(\t*)subgraph "?cluster_', re.MULTILINE)


def count_clusters(dot_source: str) -> tuple[int, int]:
    """The clusters a DOT source declares and how deep they nest, as `to_dot` writes them:
    one statement a line, indented a tab a level (the package indents each subgraph's lines
    once more as it adds it to its parent)."""
    depths = [len(m.group(1)) for m in _CLUSTER_STATEMENT.finditer(dot_source)]
    return len(depths), max(depths, default=0)


DEPTH_HINT = "`yarch draw --depth 0` (or 1, 2 ...) draws blocks as single nodes"


def render(
    dot_source: str,
    path: str | Path,
    fmt: str,
    timeout: float | None = None,
    max_nodes: int | None = None,
    dpi: int | None = None,
) -> str | None:
    """Write the diagram to `path` in `fmt` (svg, png, pdf or dot); None when it did.

    `dpi`: a PNG's resolution (Graphviz's `-Gdpi`; its default is 96), DPI_RANGE at most.

    When Graphviz's `dot` is missing, times out (after `timeout` seconds, `DOT_TIMEOUT` by
    default) or fails, or the graph has more than `max_nodes` nodes (`MAX_NODES`), too many to
    lay out in reasonable time, the DOT source is written next to `path` (`path` with the suffix
    `.dot`) instead, and the returned message says why and where. Raises `OSError` only when
    the file itself cannot be written.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if dpi is not None and (fmt != "png" or not DPI_RANGE[0] <= dpi <= DPI_RANGE[1]):
        raise ValueError(f"a dpi is for png, from {DPI_RANGE[0]} to {DPI_RANGE[1]}: {dpi!r}")
    timeout = DOT_TIMEOUT if timeout is None else timeout
    max_nodes = MAX_NODES if max_nodes is None else max_nodes
    path = Path(path)
    data = dot_source.encode("utf-8")
    if fmt == "dot":
        write_atomic(path, data)
        return None
    nodes = count_nodes(dot_source)
    clusters, nesting = count_clusters(dot_source)
    problem: bytes | str
    if nodes > max_nodes:
        problem = (
            f"the diagram has {nodes:,} nodes, more than `dot` lays out in reasonable time "
            f"(at most {max_nodes:,}; {DEPTH_HINT})"
        )
    elif clusters > MAX_CLUSTERS or nesting > MAX_CLUSTER_DEPTH:
        problem = (
            f"the diagram has {clusters:,} clusters (blocks and branches) nested up to "
            f"{nesting} deep, more than `dot` lays out in reasonable time (at most "
            f"{MAX_CLUSTERS:,} clusters, {MAX_CLUSTER_DEPTH} deep; {DEPTH_HINT})"
        )
    else:
        problem = _run_dot(data, fmt, timeout, dpi)
    if isinstance(problem, bytes):
        write_atomic(path, problem)
        return None
    fallback = path.with_suffix(".dot")
    write_atomic(fallback, data)
    return f"{problem}; wrote the DOT source to {fallback} instead"


def _limit_memory() -> None:
    """In the `dot` child before it starts: a bound on its address space."""
    resource.setrlimit(resource.RLIMIT_AS, (DOT_MEMORY, DOT_MEMORY))


def _run_dot(data: bytes, fmt: str, timeout: float, dpi: int | None = None) -> bytes | str:
    """The rendered bytes, or why there are none.

    `dot` is run here, not through the package's `pipe()` or `render()`: they wait for it with
    no timeout and no bound on its memory, and a spec of a few hundred bytes can keep `dot` busy
    for minutes or take it to gigabytes (see MAX_CLUSTERS). The command line is the package's,
    which checks the format, renderer and formatter it is given.
    """
    from graphviz.backend.dot_command import command  # here: see the module's docstring

    exe = shutil.which("dot")
    if exe is None:
        return INSTALL_HINT
    # A PNG drawn by cairo and written through gd's 256-colour palette looks the same and is a
    # third of the size (GoogLeNet: 200 KB, not 560 KB); builds without gd fall back to cairo.
    devices = [("cairo", "gd"), (None, None)] if fmt == "png" else [(None, None)]
    for renderer, formatter in devices:
        # the package names `dot` bare; the one found on PATH (above) replaces it
        args = [exe, *command("dot", fmt, renderer=renderer, formatter=formatter)[1:]]
        if dpi is not None:
            args.append(f"-Gdpi={dpi}")
        try:
            # an interrupt or SIGTERM raised in yarch while this waits kills `dot` too
            done = subprocess.run(
                args,
                input=data,
                capture_output=True,
                timeout=timeout,
                check=False,
                preexec_fn=_limit_memory,
            )
        except subprocess.TimeoutExpired:
            return f"`dot` did not finish within {timeout:g} seconds ({DEPTH_HINT})"
        except OSError as exc:
            return f"`dot` could not be run: {exc.strerror or exc}"
        if done.returncode == 0 and done.stdout:
            return done.stdout
    err = done.stderr.decode("utf-8", "replace").strip().splitlines()
    detail = f": {terminal_safe(cap(err[-1], 200))}" if err else ""
    if done.returncode < 0 or any("memory" in line.lower() for line in err[-3:]):
        detail += f" (`dot` may use at most {DOT_MEMORY >> 20:,} MB; {DEPTH_HINT})"
    return f"`dot -T{fmt}` failed (exit code {done.returncode}){detail}"
