"""The per-layer summary (`yarch summary`): rows, totals and three renderings.

Computed statically from the shapes, parameter and MAC counts that shape inference left on
the graph, so it never imports torch. One row per block instance and one per node, in graph
order, a block's row just before its members; a block row sums its members. The table follows
`paddle.summary` and torchinfo (seed 002 prints one for GoogLeNet), without the batch dimension.

Memory is counted in bytes for float32 (4 bytes an element), per sample: a layer's parameters,
its buffers (batch norm's running statistics), and its activation (its output tensor). The
peak is a liveness estimate of the eval-mode forward, defined at `_peak_activation_bytes`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from .gcpause import no_cyclic_gc
from .graph import ArchGraph, Node
from .sizes import DTYPE_BYTES, PARAM_BYTES, fmt_bytes, tensor_bytes
from .syntax import Shape

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
    buffer_bytes: int = 0  # batch norm's running_mean, running_var and num_batches_tracked
    activation_bytes: int = 0  # its output tensor for one sample; a block: its members' outputs

    @property
    def param_bytes(self) -> int:
        return self.params * PARAM_BYTES


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
    total_buffer_bytes: int = 0  # every buffer, training-only heads included (as total_params)
    total_activation_bytes: int = 0  # the eval-mode forward's layer outputs, one sample
    train_activation_bytes: int = 0  # the training forward's: every output computed
    peak_activation_bytes: int = 0  # `_peak_activation_bytes` of the eval-mode forward

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    @property
    def total_param_bytes(self) -> int:
        return self.total_params * PARAM_BYTES

    def visible(self, depth: int | None = None) -> list[Row]:
        """The rows at most `depth` deep: a block at that depth stands for its members."""
        return [r for r in self.rows if depth is None or r.depth <= depth]


# --- computing ---------------------------------------------------------------------------------


def _macs_of(graph: ArchGraph, needed: set[str]) -> int:
    """MACs of the nodes that computing the outputs runs (`needed`: their upstream)."""
    return sum(graph.node(n).macs for n in needed if n != ArchGraph.INPUT)


def buffer_bytes(node: Node) -> int:
    """The bytes of a node's buffers (batch norm's running statistics), as its op declares
    them."""
    if not node.input_shapes or any(s is None for s in node.input_shapes):
        return 0
    buffers = node.op.buffers(node.args, node.input_shapes)  # type: ignore[arg-type]
    return sum(count * DTYPE_BYTES[dtype] for count, dtype in buffers.values())


def _activation_bytes_of(graph: ArchGraph, needed: set[str]) -> int:
    """The bytes of every layer output that computing the outputs (`needed`: their upstream)
    produces, one sample."""
    return sum(tensor_bytes(graph.node(n).shape) for n in needed if n != ArchGraph.INPUT)


def _peak_activation_bytes(graph: ArchGraph, outputs: list[str], needed: set[str]) -> int:
    """The most activation bytes alive at once while computing `outputs`, for one sample.

    The model: the layers the outputs need run one at a time in graph order (the order of the
    generated `forward`). The input is alive throughout (its caller holds it). A layer's output
    is allocated when the layer runs, while its inputs are still alive, and released as soon as
    the last layer that reads it has run; the network's outputs are kept to the end. Every
    output is a tensor of its own (no in-place ops, views or aliasing), and the operators'
    temporary workspaces and the allocator's caching are left out: an estimate of the
    activation memory a forward pass needs, not a measurement.
    """
    order = [n for n in graph.order if n in needed and n != ArchGraph.INPUT]
    last_read: dict[str, float] = {}
    for step, node_id in enumerate(order):
        for source in graph.node(node_id).inputs:
            last_read[source] = step
    for node_id in [ArchGraph.INPUT, *outputs]:
        last_read[node_id] = math.inf
    live = peak = tensor_bytes(graph.input_shape)
    for step, node_id in enumerate(order):
        live += tensor_bytes(graph.node(node_id).shape)
        peak = max(peak, live)
        for source in set(graph.node(node_id).inputs):
            if last_read[source] == step:
                live -= tensor_bytes(graph.node(source).shape)
    return peak


@no_cyclic_gc()
def summarize(graph: ArchGraph) -> Summary:
    """The summary of a graph whose shapes have been inferred (`lint_file(...).graph`)."""
    nodes = [graph.node(n) for n in graph.order if n != ArchGraph.INPUT]
    members = graph.member_map()  # instance id -> every node inside it, at any depth
    parent: dict[str, str | None] = {}  # item (node or instance id) -> enclosing instance
    first: dict[str, int] = {}  # item -> position of its first node in graph order
    for pos, node in enumerate(nodes):
        parent[node.id] = graph.parent(node.id)
        first[node.id] = pos
    for inst in members:
        parent[inst] = graph.parent(inst)
        first[inst] = first[members[inst][0]]
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

    buffers: dict[str, int] = {}

    def walk(scope: str | None, depth: int) -> tuple[int, int, int, int]:
        """Append the rows inside `scope`; return their sums (params, MACs, buffer bytes,
        activation bytes). A block's row sums its children's, so each node is counted once,
        however deep it sits (not once per enclosing block)."""
        totals = (0, 0, 0, 0)
        for item in children.get(scope, []):
            if item in members:
                at = len(rows)
                rows.append(None)  # type: ignore[arg-type]  # the block's row, once summed
                sums = walk(item, depth + 1)
                inst = graph.instances[item]
                rows[at] = Row(
                    item,
                    f"{inst.block} x{inst.repeat}" if inst.repeat else inst.block,
                    BLOCK,
                    depth,
                    (shape_of(inst.input), *(shape_of(n) for n, _ in inst.extra_inputs)),
                    shape_of(inst.output),
                    *sums,
                )
            else:
                node = graph.node(item)
                buffers[item] = buffer_bytes(node)
                sums = (node.params, node.macs, buffers[item], tensor_bytes(node.shape))
                rows.append(
                    Row(
                        node.id,
                        node.op.describe_at(node.args, node.input_shapes),
                        node.op.name,
                        depth,
                        tuple(node.input_shapes),
                        node.shape,
                        *sums,
                    )
                )
            totals = (
                totals[0] + sums[0],
                totals[1] + sums[1],
                totals[2] + sums[2],
                totals[3] + sums[3],
            )
        return totals

    walk(None, 0)
    total = sum(n.params for n in nodes)
    eval_outputs = [n for name, n in graph.outputs.items() if name not in graph.train_only]
    all_outputs = list(graph.outputs.values())
    # what the eval-mode and the training forward compute, each walked once
    eval_needed = graph.upstream(eval_outputs)
    all_needed = eval_needed if all_outputs == eval_outputs else graph.upstream(all_outputs)
    return Summary(
        name=graph.name,
        input_shape=graph.input_shape,
        rows=tuple(rows),
        total_params=total,
        # BN running statistics are buffers, not parameters: every parameter is trainable
        trainable_params=total,
        total_macs=_macs_of(graph, eval_needed),
        train_macs=_macs_of(graph, all_needed),
        outputs={name: shape_of(n) for name, n in graph.outputs.items()},
        train_only=frozenset(graph.train_only),
        total_buffer_bytes=sum(buffers.values()),
        total_activation_bytes=_activation_bytes_of(graph, eval_needed),
        train_activation_bytes=_activation_bytes_of(graph, all_needed),
        peak_activation_bytes=_peak_activation_bytes(graph, eval_outputs, eval_needed),
    )


# --- rendering ---------------------------------------------------------------------------------


def fmt_list(shape: Shape | None) -> str:
    """`[64, 112, 112]`, as paddle.summary and torchinfo print shapes (without the batch)."""
    return "?" if shape is None else "[" + ", ".join(str(d) for d in shape) + "]"


def _exact(n: int) -> str:
    """`51.0 MiB (53,513,120 bytes)`, for the totals."""
    return fmt_bytes(n) if n < 1024 else f"{fmt_bytes(n)} ({n:,} bytes)"


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
    yield "Params size (float32)", _exact(summary.total_param_bytes)
    yield "Buffers size", _exact(summary.total_buffer_bytes)
    yield "Activations per sample (eval)", _exact(summary.total_activation_bytes)
    if summary.train_activation_bytes != summary.total_activation_bytes:
        yield "Activations per sample (train)", _exact(summary.train_activation_bytes)
    yield "Peak activations per sample (eval)", _exact(summary.peak_activation_bytes)


# a row's parameters and buffers together (what its state_dict holds), and its output tensor
MEMORY_HEADER = ("Param+Buf Mem", "Activation Mem")


def render_text(summary: Summary, depth: int | None = None) -> str:
    """A table in the manner of paddle.summary / torchinfo, then the totals and outputs."""
    header = ("Layer (op)", "Input Shape", "Output Shape", "Param #", "MACs", *MEMORY_HEADER)
    body = [
        (
            "  " * r.depth + f"{r.name} ({r.op})",
            _inputs(r.input_shapes),
            fmt_list(r.output_shape),
            f"{r.params:,}",
            f"{r.macs:,}",
            fmt_bytes(r.param_bytes + r.buffer_bytes),
            fmt_bytes(r.activation_bytes),
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
        "| Layer | Op | Input shape | Output shape | Params | MACs | Param+buf mem "
        "| Activation mem |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in summary.visible(depth):
        indent = "&nbsp;&nbsp;" * r.depth
        out.append(
            f"| {indent}`{_cell(r.name)}` | {_cell(r.op)} | {_cell(_inputs(r.input_shapes))} "
            f"| {fmt_list(r.output_shape)} | {r.params:,} | {r.macs:,} "
            f"| {fmt_bytes(r.param_bytes + r.buffer_bytes)} | {fmt_bytes(r.activation_bytes)} |"
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
    """The JSON contract of design.md, plus `depth` and `kind` per layer, and memory in bytes."""
    return {
        "name": summary.name,
        "input_shape": _shape(summary.input_shape),
        "total_params": summary.total_params,
        "trainable_params": summary.trainable_params,
        "total_macs": summary.total_macs,
        "total_param_bytes": summary.total_param_bytes,
        "total_buffer_bytes": summary.total_buffer_bytes,
        "total_activation_bytes": summary.total_activation_bytes,
        "train_activation_bytes": summary.train_activation_bytes,
        "peak_activation_bytes": summary.peak_activation_bytes,
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
                "param_bytes": r.param_bytes,
                "buffer_bytes": r.buffer_bytes,
                "activation_bytes": r.activation_bytes,
            }
            for r in summary.visible(depth)
        ],
    }


def render_json(summary: Summary, depth: int | None = None) -> str:
    return json.dumps(as_dict(summary, depth), indent=2, sort_keys=True)


@no_cyclic_gc()
def render(summary: Summary, fmt: str = "text", depth: int | None = None) -> str:
    renderers = {"text": render_text, "json": render_json, "markdown": render_markdown}
    return renderers[fmt](summary, depth)
