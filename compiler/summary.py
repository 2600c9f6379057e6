"""The per-layer summary (`yarch summary`): rows, totals and three renderings.

Computed statically from the shapes, parameter and MAC counts that shape inference left on
the graph, so it never imports torch. One row per block instance and one per node, in graph
order, a block's row just before its members; a block row sums its members. The table follows
`paddle.summary` and torchinfo (seed 002 prints one for GoogLeNet), without the batch dimension
in its shapes; Keras's "Connected to" column is added for specs that branch.

Memory is counted in bytes for a dtype (float32 unless `--dtype` says otherwise) and a batch
(1 unless `--batch`): a layer's parameters, its buffers (batch norm's running statistics), and
its activation (its output tensor). The totals add torchinfo's (input size, forward/backward
pass size, params size, estimated total) and a training-memory estimate; exactly what they
count is at `Summary`. The peak is a liveness estimate of the eval-mode forward, defined at
`_peak_activation_bytes`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from .gcpause import no_cyclic_gc
from .graph import ArchGraph, Node
from .sizes import DTYPE_BYTES, FLOAT_DTYPES, PARAM_BYTES, cast_bytes, fmt_bytes, tensor_bytes
from .syntax import Shape

FORMATS = ("text", "json", "markdown")
BLOCK = "block"  # the `kind` of a block-instance row; a node row's kind is its op's name
# The depth the text and markdown tables show unless `--depth` says otherwise: three levels
# (top-level rows, the members of their blocks, and those members' members), what torchinfo's
# default `depth=3` shows; torchinfo counts the top-level layers as depth 1, yarch as 0
# (issue 16).
DEFAULT_DEPTH = 2
# Optimizer state per trainable parameter, in parameters' worth: SGD keeps none, SGD with
# momentum a momentum buffer, Adam and AdamW the first and second moments (`exp_avg`,
# `exp_avg_sq`). "none" counts no optimizer at all.
OPTIMIZERS = {"none": 0, "sgd": 0, "sgd-momentum": 1, "adam": 2, "adamw": 2}
MAX_WIDTH = 120  # columns of the text table (issue 16); long cells are cut with `…`


@dataclass(frozen=True)
class Row:
    name: str  # node or instance id: `conv1`, `inception3a`, `inception3a.branch2.0`
    op: str  # a node's `describe()` (`conv 7x7/2 pad 3, 64`), or a block's type (`inception`)
    kind: str  # a node's op name (`conv`), or "block"
    depth: int  # the number of enclosing block instances
    input_shapes: tuple[Shape | None, ...]
    output_shape: Shape | None
    params: int
    macs: int  # one sample
    buffer_bytes: int = 0  # batch norm's running_mean, running_var and num_batches_tracked
    activation_bytes: int = 0  # its output tensor for one sample; a block: its members' outputs
    # the values it reads, by node id (`input` for the network's input); a block: its inputs
    inputs: tuple[str, ...] = ()
    parent: str | None = None  # the block instance around it
    element_bytes: int = PARAM_BYTES  # of a parameter or activation element (`--dtype`)

    @property
    def param_bytes(self) -> int:
        return self.params * self.element_bytes


@dataclass(frozen=True)
class Summary:
    """The rows and totals of a spec, for a batch of `batch` samples in `dtype`.

    Per-sample figures (as the JSON contract has them): `total_macs`, `train_macs`, every
    row's `macs` and `activation_bytes`, and the `*_activation_bytes` totals. Figures for the
    batch, as torchinfo prints them: `input_bytes` (the input tensor), `forward_backward_bytes`
    (the activations a training step keeps for backward: the output of every layer the
    training forward runs, training-only heads included), `total_param_bytes`,
    `total_buffer_bytes`, and `estimated_total_bytes`, their sum. Training memory adds
    `gradient_bytes` (one gradient per trainable parameter, in `dtype`) and
    `optimizer_state_bytes` (`OPTIMIZERS`: 0, 1 or 2 tensors the size of the trainable
    parameters), into `training_memory_bytes`.

    Not counted: the operators' workspaces (cuDNN's, the im2col buffers of a CPU conv), the
    allocator's caching and fragmentation, what autograd saves besides layer outputs (max
    pooling's int64 indices, dropout's masks, batch norm's saved mean and inverse deviation),
    the gradients of the activations that exist for a moment during backward, the scalar
    `step` tensor Adam keeps per parameter tensor (4 bytes each), and master copies of mixed
    precision. In-place ops (`ReLU(inplace=True)`) and views (flatten) share their input's
    storage in torch; here every layer's output counts as a tensor of its own, so the
    activation figures are an upper estimate of the layer outputs themselves.
    """

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
    batch: int = 1
    dtype: str = "float32"
    optimizer: str = "none"
    # some layer reads more than one value, or some value is read by more than one layer
    branching: bool = False
    # node id -> the block instances whose output it is, outermost first: how a value that
    # leaves a block is named (`inception3a`, not `inception3a.concat`)
    block_outputs: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    @property
    def element_bytes(self) -> int:
        return DTYPE_BYTES[self.dtype]

    @property
    def total_param_bytes(self) -> int:
        return self.total_params * self.element_bytes

    @property
    def input_bytes(self) -> int:
        return self.batch * tensor_bytes(self.input_shape, self.element_bytes)

    @property
    def forward_backward_bytes(self) -> int:
        return self.batch * self.train_activation_bytes

    @property
    def estimated_total_bytes(self) -> int:
        return (
            self.input_bytes
            + self.forward_backward_bytes
            + self.total_param_bytes
            + self.total_buffer_bytes
        )

    @property
    def gradient_bytes(self) -> int:
        return self.trainable_params * self.element_bytes

    @property
    def optimizer_state_bytes(self) -> int:
        return OPTIMIZERS[self.optimizer] * self.trainable_params * self.element_bytes

    @property
    def training_memory_bytes(self) -> int:
        return self.estimated_total_bytes + self.gradient_bytes + self.optimizer_state_bytes

    def visible(self, depth: int | None = None) -> list[Row]:
        """The rows at most `depth` deep: a block at that depth stands for its members."""
        return [r for r in self.rows if depth is None or r.depth <= depth]


# --- computing ---------------------------------------------------------------------------------


def _macs_of(graph: ArchGraph, needed: set[str]) -> int:
    """MACs of the nodes that computing the outputs runs (`needed`: their upstream)."""
    return sum(graph.node(n).macs for n in needed if n != ArchGraph.INPUT)


def buffer_bytes(node: Node, dtype: str = "float32") -> int:
    """The bytes of a node's buffers (batch norm's running statistics), as its op declares
    them, in a module cast to `dtype`: floating-point buffers take it, integer ones
    (`num_batches_tracked`, int64) keep theirs, as `module.to(dtype)` does."""
    if not node.input_shapes or any(s is None for s in node.input_shapes):
        return 0
    buffers = node.op.buffers(node.args, node.input_shapes)  # type: ignore[arg-type]
    return sum(count * cast_bytes(own, dtype) for count, own in buffers.values())


def _activation_bytes_of(graph: ArchGraph, needed: set[str], element_bytes: int) -> int:
    """The bytes of every layer output that computing the outputs (`needed`: their upstream)
    produces, one sample."""
    return sum(
        tensor_bytes(graph.node(n).shape, element_bytes) for n in needed if n != ArchGraph.INPUT
    )


def _branches(graph: ArchGraph) -> bool:
    """Whether some layer reads more than one value or some value (the input included) is
    read by more than one layer: the specs whose table gets a "Connected to" column."""
    g = graph.graph
    return any(d > 1 for _, d in g.in_degree()) or any(d > 1 for _, d in g.out_degree())


def _block_outputs(graph: ArchGraph) -> dict[str, tuple[str, ...]]:
    """Node id -> the block instances it is the output of, outermost first (nested instances
    that share an output have ids that extend each other's)."""
    out: dict[str, list[str]] = {}
    for inst in graph.instances.values():
        if inst.output is not None:
            out.setdefault(inst.output, []).append(inst.id)
    return {node: tuple(sorted(ids, key=len)) for node, ids in sorted(out.items())}


def _peak_activation_bytes(
    graph: ArchGraph, outputs: list[str], needed: set[str], element_bytes: int = PARAM_BYTES
) -> int:
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
    live = peak = tensor_bytes(graph.input_shape, element_bytes)
    for step, node_id in enumerate(order):
        live += tensor_bytes(graph.node(node_id).shape, element_bytes)
        peak = max(peak, live)
        for source in set(graph.node(node_id).inputs):
            if last_read[source] == step:
                live -= tensor_bytes(graph.node(source).shape, element_bytes)
    return peak


@no_cyclic_gc()
def summarize(
    graph: ArchGraph, *, batch: int = 1, dtype: str = "float32", optimizer: str = "none"
) -> Summary:
    """The summary of a graph whose shapes have been inferred (`lint_file(...).graph`), for a
    batch of `batch` samples in `dtype` (one of `FLOAT_DTYPES`) trained with `optimizer` (a
    key of `OPTIMIZERS`)."""
    if batch < 1 or dtype not in FLOAT_DTYPES or optimizer not in OPTIMIZERS:
        raise ValueError(f"no summary for batch {batch}, dtype {dtype}, optimizer {optimizer}")
    element = DTYPE_BYTES[dtype]
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
                    tuple(n for n in (inst.input, *(n for n, _ in inst.extra_inputs)) if n),
                    scope,
                    element,
                )
            else:
                node = graph.node(item)
                buffers[item] = buffer_bytes(node, dtype)
                sums = (node.params, node.macs, buffers[item], tensor_bytes(node.shape, element))
                rows.append(
                    Row(
                        node.id,
                        node.op.describe_at(node.args, node.input_shapes),
                        node.op.name,
                        depth,
                        tuple(node.input_shapes),
                        node.shape,
                        *sums,
                        tuple(node.inputs),
                        scope,
                        element,
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
        total_activation_bytes=_activation_bytes_of(graph, eval_needed, element),
        train_activation_bytes=_activation_bytes_of(graph, all_needed, element),
        peak_activation_bytes=_peak_activation_bytes(graph, eval_outputs, eval_needed, element),
        batch=batch,
        dtype=dtype,
        optimizer=optimizer,
        branching=_branches(graph),
        block_outputs=_block_outputs(graph),
    )


# --- rendering ---------------------------------------------------------------------------------


def fmt_list(shape: Shape | None) -> str:
    """`[64, 112, 112]`, as paddle.summary and torchinfo print shapes (without the batch)."""
    return "?" if shape is None else "[" + ", ".join(str(d) for d in shape) + "]"


def _exact(n: int) -> str:
    """`51.0 MiB (53,513,120 bytes)`, for the totals."""
    return fmt_bytes(n) if n < 1024 else f"{fmt_bytes(n)} ({n:,} bytes)"


def _inputs(shapes: Sequence[Shape | None]) -> str:
    """A row's input: its shape; several inputs as one shape and a count where they agree
    (`[256, 56, 56] x2`, an `add`), else as a count (`4 inputs`, a `concat`), which the
    Connected to column names: listing every shape made a concat's row 160 and more columns
    wide (issue 16)."""
    if not shapes:
        return "-"
    if len(shapes) == 1:
        return fmt_list(shapes[0])
    if all(s == shapes[0] for s in shapes):
        return f"{fmt_list(shapes[0])} x{len(shapes)}"
    return f"{len(shapes)} inputs"


def _output_note(summary: Summary, name: str) -> str:
    return " (training only)" if name in summary.train_only else ""


def _connections(summary: Summary, depth: int | None, relative: bool) -> dict[str, str]:
    """Row name -> the Connected to cell: the values the row reads, in order. A value that is
    the output of a block is named after the outermost such block that does not hold the
    row (`inception3a`, not `inception3a.concat`); a value inside a block whose rows `depth`
    hides is named by the shown block row that holds it. `relative`: names inside the row's
    own block are written as the text table writes its rows (`branch1` in `inception3a`)."""
    by_name = {r.name: r for r in summary.rows}

    def name_of(source: str, reader: str) -> str:
        for inst in summary.block_outputs.get(source, ()):
            if not reader.startswith(inst + "."):
                source = inst
                break
        row = by_name.get(source)
        while row is not None and depth is not None and row.depth > depth and row.parent:
            row = by_name[row.parent]
        return source if row is None else row.name

    out: dict[str, str] = {}
    for row in summary.visible(depth):
        names = [name_of(source, row.name) for source in row.inputs]
        if relative:
            names = [_relative(name, row.name) for name in names]
        out[row.name] = ", ".join(names) or "-"
    return out


def _relative(name: str, reader: str) -> str:
    """`name` as the text table writes it in the row of `reader`: without the blocks the two
    share, as indentation shows them (`branch1` in `inception3a.concat` for
    `inception3a.branch1`; a row's own name: its last part)."""
    ours, theirs = name.split("."), reader.split(".")
    shared = 0
    while shared < min(len(ours), len(theirs)) - 1 and ours[shared] == theirs[shared]:
        shared += 1
    return ".".join(ours[shared:])


def _hidden_note(summary: Summary, depth: int | None) -> str | None:
    hidden = len(summary.rows) - len(summary.visible(depth))
    if not hidden:
        return None
    rows = "row" if hidden == 1 else "rows"
    return (
        f"{hidden:,} {rows} nested deeper than {depth} hidden "
        "(`yarch summary --depth all` shows them)"
    )


def _heading(summary: Summary, quote: str = "") -> str:
    shape = f"{quote}{fmt_list(summary.input_shape)}{quote}"
    return (
        f"input {shape}, batch {summary.batch:,}, {summary.dtype} "
        "(shapes leave out the batch dimension)"
    )


def _totals(summary: Summary) -> list[list[tuple[str, str]]]:
    """The totals, in groups: counts, torchinfo's sizes, eval activations, training memory."""
    n = summary.batch
    batch = f", batch of {n:,}" if n > 1 else ""
    counts = [
        ("Total params", f"{summary.total_params:,}"),
        ("Trainable params", f"{summary.trainable_params:,}"),
        ("Non-trainable params", f"{summary.non_trainable_params:,}"),
        (f"Total MACs (eval{batch})", f"{summary.total_macs * n:,}"),
    ]
    if summary.train_macs != summary.total_macs:
        counts.append((f"Total MACs (train{batch})", f"{summary.train_macs * n:,}"))
    sizes = [
        ("Input size", _exact(summary.input_bytes)),
        ("Forward/backward pass size", _exact(summary.forward_backward_bytes)),
        (f"Params size ({summary.dtype})", _exact(summary.total_param_bytes)),
        ("Buffers size", _exact(summary.total_buffer_bytes)),
        ("Estimated Total Size", _exact(summary.estimated_total_bytes)),
    ]
    activations = [
        (f"Activations (eval{batch})", _exact(summary.total_activation_bytes * n)),
        (f"Peak activations (eval{batch})", _exact(summary.peak_activation_bytes * n)),
    ]
    training = [(f"Gradients ({summary.dtype})", _exact(summary.gradient_bytes))]
    if summary.optimizer != "none":
        state = _exact(summary.optimizer_state_bytes)
        training.append((f"Optimizer state ({summary.optimizer})", state))
    training.append(("Training memory (estimate)", _exact(summary.training_memory_bytes)))
    return [counts, sizes, activations, training]


# a row's parameters and buffers together (what its state_dict holds), and its output tensor
MEMORY_HEADER = ("Param Mem", "Act Mem")
CONNECTED = "Connected to"  # Keras's name for the column
CONNECTED_LEAST = 20  # columns Connected to keeps before Layer (op) gives way (it wraps)
PARAM_MEM = 5  # the column of MEMORY_HEADER[0]


def _table(
    summary: Summary, depth: int | None, relative: bool = True
) -> tuple[list[str], list[list[str]]]:
    """The header and the cells of the shown rows: MACs and activations for the batch; names
    `relative` to the block around them (the text table, where indentation shows the block),
    or in full."""
    header = ["Layer (op)", "Input Shape", "Output Shape", "Param #", "MACs", *MEMORY_HEADER]
    connected = _connections(summary, depth, relative) if summary.branching else {}
    if summary.branching:
        header.append(CONNECTED)
    n = summary.batch
    body = [
        [
            "  " * r.depth + f"{_relative(r.name, r.name) if relative else r.name} ({r.op})",
            _inputs(r.input_shapes),
            fmt_list(r.output_shape),
            f"{r.params:,}",
            f"{r.macs * n:,}",
            fmt_bytes(r.param_bytes + r.buffer_bytes),
            fmt_bytes(r.activation_bytes * n),
            *([connected[r.name]] if summary.branching else []),
        ]
        for r in summary.visible(depth)
    ]
    return header, body


SEP = "  "  # between columns


def _line_width(widths: Sequence[int]) -> int:
    return 1 + sum(widths) + len(SEP) * (len(widths) - 1)


def _fit(widths: list[int], header: Sequence[str]) -> list[int]:
    """Column widths within `MAX_WIDTH`: the shapes and numbers keep theirs, and the columns
    of names give way: Connected to first, down to `CONNECTED_LEAST` columns (a row whose
    names do not fit goes on over more lines, `_wrap`), then the wider of it and Layer (op),
    each down to its heading (a layer cell's end is cut with `…`: its op description, written
    after its name, goes first). Only shapes or numbers a spec cannot reasonably hold (of
    hundreds of digits) make a wider table."""
    widths = list(widths)
    connected = len(header) - 1 if header[-1] == CONNECTED else None
    over = _line_width(widths) - MAX_WIDTH
    if connected is not None and over > 0:
        cut = min(over, max(0, widths[connected] - CONNECTED_LEAST))
        widths[connected] -= cut
        over -= cut
    flexible = [0] if connected is None else [0, connected]
    while over > 0:
        excess = {i: widths[i] - len(header[i]) for i in flexible}
        column = max(flexible, key=lambda i: (excess[i], -i))
        if excess[column] <= 0:
            break
        # down to the other's excess in one step (a hostile name can be very long)
        other = max((excess[i] for i in flexible if i != column), default=0)
        cut = min(over, max(1, excess[column] - other))
        widths[column] -= cut
        over -= cut
    return widths


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def _wrap(names: str, width: int) -> list[str]:
    """A Connected to cell (`a, b, c`) on lines of at most `width` columns, broken after a
    comma as Keras breaks its column; a single name longer than that is cut with `…`."""
    parts = names.split(", ")
    out: list[str] = []
    for at, name in enumerate(parts):
        comma = 1 if at < len(parts) - 1 else 0  # every line but the last ends with one
        if out and len(out[-1]) + len(", ") + len(name) + comma <= width:
            out[-1] += f", {name}"
        else:
            if out:
                out[-1] += ","
            out.append(name)
    return [_clip(text, width) for text in out]


def _without(cells: list[str], column: int) -> list[str]:
    return cells[:column] + cells[column + 1 :]


def render_text(summary: Summary, depth: int | None = None) -> str:
    """A table in the manner of paddle.summary / torchinfo, then the totals and outputs; at
    most `MAX_WIDTH` columns (see `_fit`)."""
    header, body = _table(summary, depth)
    if summary.branching:  # the parameter memory gives way to Connected to (Param # has it)
        header, body = _without(header, PARAM_MEM), [_without(row, PARAM_MEM) for row in body]
    natural = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    widths = _fit(natural, header)
    right = {i for i, h in enumerate(header) if h in ("Param #", "MACs", *MEMORY_HEADER)}

    wrapped = len(header) - 1 if summary.branching else None  # Connected to, the last

    def line(cells: Sequence[str]) -> str:
        return " " + SEP.join(
            _clip(c, w).rjust(w) if i in right else _clip(c, w).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    def lines(cells: Sequence[str]) -> list[str]:
        """A row, on more lines when its Connected to names do not fit its column."""
        if wrapped is None:
            return [line(cells)]
        first, *more = _wrap(cells[wrapped], widths[wrapped])
        indent = " " * (_line_width(widths[:wrapped]) + len(SEP))
        return [line([*cells[:wrapped], first]), *(indent + rest for rest in more)]

    width = _line_width(widths)
    note = _hidden_note(summary, depth)
    out = [
        f"{summary.name}: {_heading(summary)}",
        "-" * width,
        line(header),
        "=" * width,
        *(text for cells in body for text in lines(cells)),
        "=" * width,
        *([note] if note else []),
    ]
    for group in _totals(summary):
        out += [f"{label}: {value}" for label, value in group]
        out.append("-" * width)
    out += [
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
    _, body = _table(summary, depth, relative=False)
    columns = "| Layer | Op | Input shape | Output shape | Params | MACs | Param+buf mem "
    columns += "| Activation mem |" + (" Connected to |" if summary.branching else "")
    rule = "| --- | --- | --- | --- | ---: | ---: | ---: | ---: |"
    rule += " --- |" if summary.branching else ""
    out = [f"**{_cell(summary.name)}**: {_heading(summary, '`')}", "", columns, rule]
    for r, cells in zip(summary.visible(depth), body, strict=True):
        indent = "&nbsp;&nbsp;" * r.depth
        rest = " | ".join(_cell(c) for c in cells[1:])
        out.append(f"| {indent}`{_cell(r.name)}` | {_cell(r.op)} | {rest} |")
    note = _hidden_note(summary, depth)
    out += ["", *([note, ""] if note else [])]
    out += [f"- {label}: {value}" for group in _totals(summary) for label, value in group]
    out += [
        f"- Output `{_cell(name)}`: {fmt_list(shape)}{_output_note(summary, name)}"
        for name, shape in summary.outputs.items()
    ]
    return "\n".join(out)


def _shape(shape: Shape | None) -> list[int] | None:
    return None if shape is None else list(shape)


def as_dict(summary: Summary, depth: int | None = None) -> dict:
    """The JSON contract of design.md, plus `depth`, `kind` and `connected_to` per layer, and
    memory in bytes. Per-layer figures and `total_macs` are for one sample, as the contract
    has them; the sizes in `dtype`; `input_bytes` and the figures after it for the batch."""
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
        "batch_size": summary.batch,
        "dtype": summary.dtype,
        "optimizer": summary.optimizer,
        "input_bytes": summary.input_bytes,
        "forward_backward_bytes": summary.forward_backward_bytes,
        "estimated_total_bytes": summary.estimated_total_bytes,
        "gradient_bytes": summary.gradient_bytes,
        "optimizer_state_bytes": summary.optimizer_state_bytes,
        "training_memory_bytes": summary.training_memory_bytes,
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
                "connected_to": list(r.inputs),
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
