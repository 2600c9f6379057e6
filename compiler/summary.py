"""The per-layer summary (`yarch summary`): rows, totals and three renderings.

Computed statically from the shapes, parameter and MAC counts that shape inference left on
the graph, so it never imports torch. One row per block instance and one per node, in graph
order, a block's row just before its members; a block row sums its members. The table follows
`paddle.summary` and torchinfo (seed 002 prints one for GoogLeNet), without the batch dimension.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import networkx as nx

from .graph import ArchGraph, Shape

FORMATS = ("text", "json", "markdown")
BLOCK = "block"  # the `kind` of a block-instance row; a node row's kind is its op's name


@dataclass(frozen=True)
class Row:
    name: str  # node or instance id: `conv1`, `inception3a`, `inception3a.branch2.0`
    op: str  # a node's `describe()` (`conv 7x7/2 pad 3, 64`), or a block's type (`inception`)
    kind: str  # a node's op name (`conv`), or "block"
    depth: int  # the number of enclosing block instances
    input_shapes: tuple[Shape | None, ...]
    output_shape: Shape | None
    params: int
    macs: int


@dataclass(frozen=True)
class Summary:
    name: str
    input_shape: Shape
    rows: tuple[Row, ...]
    total_params: int  # every parameter, training-only heads included
    trainable_params: int
    total_macs: int  # the eval-mode forward: training-only heads left out
    train_macs: int  # the training forward: every output computed
    outputs: dict[str, Shape | None] = field(default_factory=dict)
    train_only: frozenset[str] = frozenset()

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    def visible(self, depth: int | None = None) -> list[Row]:
        """The rows at most `depth` deep: a block at that depth stands for its members."""
        return [r for r in self.rows if depth is None or r.depth <= depth]


# --- computing ---------------------------------------------------------------------------------


def _chain(graph: ArchGraph, scope: Sequence[str]) -> list[str]:
    """The ids of the block instances around a scope, outermost first."""
    prefixes = (".".join(scope[:k]) for k in range(1, len(scope) + 1))
    return [p for p in prefixes if p in graph.instances]


def _macs_of(graph: ArchGraph, outputs: list[str]) -> int:
    """MACs of the nodes that computing `outputs` runs (the outputs and their ancestors)."""
    needed: set[str] = set()
    for node_id in outputs:
        if graph.graph.has_node(node_id):
            needed |= nx.ancestors(graph.graph, node_id) | {node_id}
    return sum(graph.node(n).macs for n in needed)


def summarize(graph: ArchGraph) -> Summary:
    """The summary of a graph whose shapes have been inferred (`lint_file(...).graph`)."""
    nodes = [graph.node(n) for n in graph.order if n != ArchGraph.INPUT]
    parent: dict[str, str | None] = {}  # item (node or instance id) -> enclosing instance
    members: dict[str, list[str]] = {}  # instance id -> every node inside it, at any depth
    first: dict[str, int] = {}  # item -> position of its first node in graph order
    for pos, node in enumerate(nodes):
        chain = _chain(graph, node.scope)
        parent[node.id] = chain[-1] if chain else None
        first[node.id] = pos
        for outer, inner in zip([None, *chain], chain, strict=False):
            parent.setdefault(inner, outer)
            first.setdefault(inner, pos)
            members.setdefault(inner, []).append(node.id)
    # Children in the order of their first node, so a block's members follow its row even if
    # the topological order were to interleave them with a layer outside it.
    children: dict[str | None, list[str]] = {}
    for item in sorted(parent, key=lambda i: (first[i], i not in members)):
        children.setdefault(parent[item], []).append(item)

    rows: list[Row] = []

    def shape_of(node_id: str | None) -> Shape | None:
        if node_id is None or not graph.graph.has_node(node_id):
            return None
        return graph.node(node_id).shape

    def walk(scope: str | None, depth: int) -> None:
        for item in children.get(scope, []):
            if item in members:
                inst = graph.instances[item]
                inside = [graph.node(n) for n in members[item]]
                rows.append(
                    Row(
                        item,
                        f"{inst.block} x{inst.repeat}" if inst.repeat else inst.block,
                        BLOCK,
                        depth,
                        (shape_of(inst.input),),
                        shape_of(inst.output),
                        sum(n.params for n in inside),
                        sum(n.macs for n in inside),
                    )
                )
                walk(item, depth + 1)
            else:
                node = graph.node(item)
                rows.append(
                    Row(
                        node.id,
                        node.op.describe(node.args),
                        node.op.name,
                        depth,
                        tuple(node.input_shapes),
                        node.shape,
                        node.params,
                        node.macs,
                    )
                )

    walk(None, 0)
    total = sum(n.params for n in nodes)
    eval_outputs = [n for name, n in graph.outputs.items() if name not in graph.train_only]
    return Summary(
        name=graph.name,
        input_shape=graph.input_shape,
        rows=tuple(rows),
        total_params=total,
        # BN running statistics are buffers, not parameters: every parameter is trainable
        trainable_params=total,
        total_macs=_macs_of(graph, eval_outputs),
        train_macs=_macs_of(graph, list(graph.outputs.values())),
        outputs={name: shape_of(n) for name, n in graph.outputs.items()},
        train_only=frozenset(graph.train_only),
    )


# --- rendering ---------------------------------------------------------------------------------


def fmt_list(shape: Shape | None) -> str:
    """`[64, 112, 112]`, as paddle.summary and torchinfo print shapes (without the batch)."""
    return "?" if shape is None else "[" + ", ".join(str(d) for d in shape) + "]"


def _inputs(shapes: Sequence[Shape | None]) -> str:
    return ", ".join(fmt_list(s) for s in shapes) or "-"


def _output_note(summary: Summary, name: str) -> str:
    return " (training only)" if name in summary.train_only else ""


def _totals(summary: Summary) -> Iterator[tuple[str, str]]:
    yield "Total params", f"{summary.total_params:,}"
    yield "Trainable params", f"{summary.trainable_params:,}"
    yield "Non-trainable params", f"{summary.non_trainable_params:,}"
    yield "Total MACs (eval)", f"{summary.total_macs:,}"
    if summary.train_macs != summary.total_macs:
        yield "Total MACs (train)", f"{summary.train_macs:,}"


def render_text(summary: Summary, depth: int | None = None) -> str:
    """A table in the manner of paddle.summary / torchinfo, then the totals and outputs."""
    header = ("Layer (op)", "Input Shape", "Output Shape", "Param #", "MACs")
    body = [
        (
            "  " * r.depth + f"{r.name} ({r.op})",
            _inputs(r.input_shapes),
            fmt_list(r.output_shape),
            f"{r.params:,}",
            f"{r.macs:,}",
        )
        for r in summary.visible(depth)
    ]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        left = [c.ljust(w) for c, w in zip(cells[:3], widths[:3], strict=True)]
        right = [c.rjust(w) for c, w in zip(cells[3:], widths[3:], strict=True)]
        return " " + "   ".join([*left, *right])

    width = len(line(header)) + 1
    out = [
        f"{summary.name}: input {fmt_list(summary.input_shape)} (batch dimension not shown)",
        "-" * width,
        line(header),
        "=" * width,
        *(line(cells) for cells in body),
        "=" * width,
        *(f"{label}: {value}" for label, value in _totals(summary)),
        "-" * width,
        "Outputs:",
        *(
            f"  {name}: {fmt_list(shape)}{_output_note(summary, name)}"
            for name, shape in summary.outputs.items()
        ),
    ]
    return "\n".join(s.rstrip() for s in out)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(summary: Summary, depth: int | None = None) -> str:
    """A GitHub table (nesting shown by indentation), then the totals and outputs."""
    out = [
        f"**{_cell(summary.name)}**: input `{fmt_list(summary.input_shape)}` "
        "(batch dimension not shown)",
        "",
        "| Layer | Op | Input shape | Output shape | Params | MACs |",
        "| --- | --- | --- | --- | ---: | ---: |",
    ]
    for r in summary.visible(depth):
        indent = "&nbsp;&nbsp;" * r.depth
        out.append(
            f"| {indent}`{_cell(r.name)}` | {_cell(r.op)} | {_cell(_inputs(r.input_shapes))} "
            f"| {fmt_list(r.output_shape)} | {r.params:,} | {r.macs:,} |"
        )
    out.append("")
    out += [f"- {label}: {value}" for label, value in _totals(summary)]
    out += [
        f"- Output `{_cell(name)}`: {fmt_list(shape)}{_output_note(summary, name)}"
        for name, shape in summary.outputs.items()
    ]
    return "\n".join(out)


def _shape(shape: Shape | None) -> list[int] | None:
    return None if shape is None else list(shape)


def as_dict(summary: Summary, depth: int | None = None) -> dict:
    """The JSON contract of design.md, plus `depth` and `kind` per layer."""
    return {
        "name": summary.name,
        "input_shape": _shape(summary.input_shape),
        "total_params": summary.total_params,
        "trainable_params": summary.trainable_params,
        "total_macs": summary.total_macs,
        "outputs": {name: _shape(shape) for name, shape in summary.outputs.items()},
        "layers": [
            {
                "name": r.name,
                "op": r.op,
                "kind": r.kind,
                "depth": r.depth,
                "input_shapes": [_shape(s) for s in r.input_shapes],
                "output_shape": _shape(r.output_shape),
                "params": r.params,
                "macs": r.macs,
            }
            for r in summary.visible(depth)
        ],
    }


def render_json(summary: Summary, depth: int | None = None) -> str:
    return json.dumps(as_dict(summary, depth), indent=2, sort_keys=True)


def render(summary: Summary, fmt: str = "text", depth: int | None = None) -> str:
    renderers = {"text": render_text, "json": render_json, "markdown": render_markdown}
    return renderers[fmt](summary, depth)
