"""Stage 4a: static shape inference, parameter and MAC counts, in pure Python.

Shapes exclude the batch dimension: `(C, H, W)` for maps, `(F,)` for vectors. A node whose
input is unknown (a broken layer upstream) gets no shape and no diagnostics, so one mistake does
not cascade. An `expect:` annotation is checked against the inferred shape and then trusted
downstream, the way a compiler trusts a declared type after reporting a mismatch: each
annotation is checked against its own layer, not against drift from earlier ones.

A diagnostic about a count a layer receives (`declares 64 input channels but receives 65`)
names, as related spans, the places where those channels were made: the `out:` of the conv
before, the numbers of an Inception tuple, or the `expect:` that was trusted. The line to
change is as often there as at the declaration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from .codes import RECEIVED  # about what a layer receives: where the count came from is named
from .diagnostics import Diagnostic, Severity, Span, error
from .graph import ArchGraph, Node
from .ops.base import OPS, BrokenOp
from .syntax import Shape, fmt_shape

MAX_SEARCH = 1 << 16
MAX_SOURCES = 16  # related spans named for one count, at most
MAX_STEPS = 10_000  # nodes walked back to find them, at most


@dataclass
class Run:
    """Shapes of one propagation; the real run writes them onto the nodes afterwards."""

    graph: ArchGraph
    input_shape: Shape
    use_expect: bool = True
    sink: list[Diagnostic] | None = None
    shapes: dict[str, Shape | None] = field(default_factory=dict)
    inputs: dict[str, list[Shape | None]] = field(default_factory=dict)
    explain: dict[str, str | None] = field(default_factory=dict)
    collapsed: bool = False
    mismatched: bool = False  # a concat's inputs disagree
    # nodes whose `expect:` stands in for a shape they did not give (or could not infer)
    trusted: set[str] = field(default_factory=set)
    # what each node's op gives, before an `expect:` stands in for it (params and MACs are
    # counted from it)
    inferred: dict[str, Shape | None] = field(default_factory=dict)


class _Ctx:
    def __init__(self, run: Run, node: Node) -> None:
        self.run = run
        self.node = node

    @property
    def name(self) -> str:
        return self.node.id

    def _emit(
        self,
        severity: Severity,
        code: str,
        message: str,
        field: str | tuple | None,
        label: str | None,
        notes: Sequence[str],
        help: str | None,
    ) -> None:
        if code == "spatial-collapse":
            self.run.collapsed = True
        elif code == "concat-mismatch":
            self.run.mismatched = True
        if self.run.sink is None:
            return
        loc = (field,) if isinstance(field, str) else field
        span = self.node.field_span(*loc) if loc else self.node.span
        related: tuple[tuple[Span, str], ...] = ()
        if code in RECEIVED:
            # a merge is about every input it receives; the other ops about their first
            inputs = self.node.inputs if self.node.op.kind == "merge" else self.node.inputs[:1]
            related = sources(self.run, inputs, span)
        self.run.sink.append(
            Diagnostic(
                code, message, span, severity, label, tuple(notes), help, self.node.id, related
            )
        )

    def error(
        self,
        code: str,
        message: str,
        field: str | tuple | None = None,
        *,
        label: str | None = None,
        notes: Sequence[str] = (),
        help: str | None = None,
    ) -> None:
        self._emit(Severity.ERROR, code, message, field, label, notes, help)

    def warning(
        self,
        code: str,
        message: str,
        field: str | tuple | None = None,
        *,
        label: str | None = None,
        notes: Sequence[str] = (),
        help: str | None = None,
    ) -> None:
        self._emit(Severity.WARNING, code, message, field, label, notes, help)

    def producer(self, i: int) -> Node:
        """The first node upstream of input `i` that is not a pass-through (relu, dropout)."""
        node = self.run.graph.node(self.node.inputs[i])
        while node.op.passthrough and node.inputs:
            node = self.run.graph.node(node.inputs[0])
        return node

    def source(self, i: int) -> str:
        """Who feeds input `i`: a block instance by its name, else the producing layer."""
        graph = self.run.graph
        node = graph.node(self.node.inputs[i])
        while node.op.passthrough and node.inputs and node.id not in graph.instance_outputs:
            node = graph.node(node.inputs[0])
        return graph.display(node.id)

    def display(self, node_id: str) -> str:
        return self.run.graph.display(node_id)

    def inputs_of(self, node_id: str) -> list[Shape | None]:
        return self.run.inputs.get(node_id, [])

    def explain(self, i: int) -> str | None:
        return self.run.explain.get(self.node.inputs[i])

    def set_explain(self, text: str) -> None:
        self.run.explain[self.node.id] = text


def propagate(run: Run) -> Run:
    graph = run.graph
    for node_id in graph.order:
        node = graph.node(node_id)
        if node_id == ArchGraph.INPUT:
            run.shapes[node_id] = run.input_shape or None
            continue
        ins = [run.shapes.get(i) for i in node.inputs]
        run.inputs[node_id] = ins
        out: Shape | None = None
        if node.inputs and all(s is not None for s in ins):
            known: list[Shape] = ins  # type: ignore[assignment]
            ctx = _Ctx(run, node)
            out = run.inferred[node_id] = node.op.infer(node.args, known, ctx)
            if node.op.passthrough:
                run.explain[node_id] = run.explain.get(node.inputs[0])
            if out is not None and run.use_expect and node.expect not in (None, out):
                _mismatch(run, ctx, node, known, out)
            if node.op is BrokenOp and run.sink is not None:
                _salvaged_channels(run, ctx, node, known)
        if node.expect is not None and run.use_expect:
            if out != node.expect:
                run.trusted.add(node_id)
            out = node.expect
        run.shapes[node_id] = out
    return run


def _mismatch(run: Run, ctx: _Ctx, node: Node, ins: list[Shape], out: Shape) -> None:
    if run.sink is None:
        return
    assert node.expect is not None
    name = run.graph.display(node.id)
    explain = run.explain.get(node.id)
    if name != node.id:  # the output of a block instance: say how its channels add up
        what = f"`{name}` outputs {out[0]} channels"
        if explain:
            what = f"`{name}` outputs {out[0]} = {explain}"
        inst = run.graph.instances.get(name)
        if inst is not None and inst.input is not None:
            what += f" from a {fmt_shape(run.shapes.get(inst.input))} input"
    else:
        inputs = ", ".join(fmt_shape(s) for s in ins)
        what = f"`{name}` is {node.op.describe_at(node.args, ins)} on a {inputs} input"
    span = node.expect_span or node.span
    related: tuple[tuple[Span, str], ...] = ()
    if out[:1] != node.expect[:1]:  # the channels disagree: say where they were made
        related = sources(run, [node.id], span, {node.id: out})
    run.sink.append(
        error(
            "shape-mismatch",
            f"`{name}` gives {fmt_shape(out)} where {fmt_shape(node.expect)} is expected",
            span,
            label="expected here",
            notes=(what,),
            help=node.op.hint(node.args, ins, node.expect) if name == node.id else None,
            node=node.id,
            related=related,
        )
    )


def _salvaged_channels(run: Run, ctx: _Ctx, node: Node, ins: list[Shape]) -> None:
    """The channels of a layer that failed validation on another field (seed 000's `stride:
    0`), which its `expect:` stands in for: its declared `in:` against what it receives (the
    op's own check), and its `out:` against the channels its `expect:` claims."""
    op = OPS.get(node.layer.op)
    fields = node.layer.fields
    if op is None or op.composite or len(ins) != 1:
        return

    def number(key: str) -> int | None:  # a value written as a number (not `$param`)
        v = fields.get(key)
        return v if isinstance(v, int) and not isinstance(v, bool) and v >= 1 else None

    declared = number("in") if "in_" in op.Args.model_fields else None
    if declared is not None:
        op.check_in(declared, ins[0], ctx)
    out = number("out") if "out" in op.Args.model_fields else None
    expect = node.expect
    if out is not None and expect is not None and expect[0] != out:
        assert run.sink is not None
        what = "channels" if len(expect) > 1 else "features"
        span = node.expect_span or node.span
        run.sink.append(
            error(
                "shape-mismatch",
                f"`{ctx.name}` gives {out} {what} (`out: {out}`) where {fmt_shape(expect)} "
                "is expected",
                span,
                label="expected here",
                notes=(
                    "the layer is invalid (reported above), its `expect:` stands in for its "
                    "output; its channels are checked all the same",
                ),
                node=node.id,
                related=_group([(node.field_span("out"), out, what)], span),
            )
        )


def sources(
    run: Run,
    starts: Sequence[str],
    primary: Span | None,
    shapes: dict[str, Shape] | None = None,
) -> tuple[tuple[Span, str], ...]:
    """Where the channels (or features) that `starts` output were written, as related spans.

    Walks back through layers that keep the count (activations, pooling, norms, flatten) to the
    layers that make it: a conv's or linear's `out:`, each input of a channel concat (an
    Inception tuple), an `expect:` that stands in for the shape (a layer that failed, or whose
    own result disagreed), or the spec's `input:`. `shapes` overrides `run.shapes` (a layer
    being checked)."""
    graph, shapes = run.graph, shapes or {}
    found: list[tuple[Span | None, int, str]] = []
    seen: set[str] = set()
    stack = list(reversed(starts))
    steps = 0
    while stack and len(found) < MAX_SOURCES and steps < MAX_STEPS:
        node_id = stack.pop()
        steps += 1
        if node_id in seen:
            continue
        seen.add(node_id)
        node = graph.node(node_id)
        shape = shapes.get(node_id, run.shapes.get(node_id))
        if not shape:
            continue
        what = "channels" if len(shape) > 1 else "features"
        if node_id == ArchGraph.INPUT:  # the spec's `input:`
            found.append((node.span, shape[0], what))
        elif node_id in run.trusted and node_id not in shapes:
            found.append((node.expect_span, shape[0], what))
        elif "out" in node.op.Args.model_fields:
            found.append((node.field_span("out"), shape[0], what))
        elif node.op.name == "concat" and getattr(node.args, "dim", 1) == 1:
            stack.extend(reversed(node.inputs))
        elif node.inputs:
            stack.append(node.inputs[0])
    return _group(found, primary)


def _group(
    found: Sequence[tuple[Span | None, int, str]], primary: Span | None
) -> tuple[tuple[Span, str], ...]:
    """One related span per source line: `65 channels come from here`, or the parts of an
    Inception tuple written on one line, `64 + 128 + 33 + 32 = 257 channels come from here`.
    Lines the diagnostic itself points at are left out."""
    lines: dict[tuple[str, int], list[tuple[Span, int, str]]] = {}
    for span, count, what in found:
        if span is None:
            continue
        if primary is not None and (span.file, span.line) == (primary.file, primary.line):
            continue
        group = lines.setdefault((span.file, span.line), [])
        if all(s != span for s, _, _ in group):
            group.append((span, count, what))
    out = []
    for group in lines.values():
        group.sort(key=lambda item: item[0].column)
        first, last = group[0][0], group[-1][0]
        span = Span(first.file, first.line, first.column, last.end_line, last.end_column)
        counts = [c for _, c, _ in group]
        what = group[0][2]
        if len(counts) == 1:
            label = f"{counts[0]} {what} come from here"
        else:
            label = f"{' + '.join(map(str, counts))} = {sum(counts)} {what} come from here"
        out.append((span, label))
    return tuple(out)


def infer_shapes(graph: ArchGraph) -> list[Diagnostic]:
    """Infer every node's shape, params and MACs; return the shape diagnostics."""
    diags: list[Diagnostic] = []
    if not graph.input_shape:
        return diags
    run = propagate(Run(graph, graph.input_shape, sink=diags))
    for node_id in graph.order:
        node = graph.node(node_id)
        node.shape = run.shapes.get(node_id)
        node.input_shapes = run.inputs.get(node_id, [])
        node.explain = run.explain.get(node_id)
        ins = node.input_shapes
        real = run.inferred.get(node_id)  # set only where every input shape is known
        if real is not None:
            node.params = node.op.count_params(node.args, ins, real)  # type: ignore[arg-type]
            node.macs = node.op.count_macs(node.args, ins, real)  # type: ignore[arg-type]
    diags += _check_instances(graph, run)
    if run.collapsed:
        diags = _add_smallest_input(graph, diags)
    elif run.mismatched:
        diags = _add_working_sizes(graph, diags)
    return diags


def _check_instances(graph: ArchGraph, run: Run) -> list[Diagnostic]:
    """Declared input channels of block instances (`inception: {in: 832, ...}`)."""
    out = []
    for inst in graph.instances.values():
        if inst.declared_in is None or inst.input is None:
            continue
        shape = run.shapes.get(inst.input)
        if shape is None or shape[0] == inst.declared_in:
            continue
        node = graph.node(inst.input)
        while node.op.passthrough and node.inputs:
            node = graph.node(node.inputs[0])
        explain = run.explain.get(node.id)
        source = graph.display(node.id)
        note = (
            f"`{source}` outputs {shape[0]} = {explain}"
            if explain
            else f"`{source}` outputs {shape[0]} channels"
        )
        out.append(
            error(
                "channel-mismatch",
                f"`{inst.id}` declares {inst.declared_in} input channels but receives {shape[0]}",
                inst.declared_in_span,
                label="declared here",
                notes=(note,),
                help=f"set `in: {shape[0]}`, or change the layer that feeds it",
                node=inst.id,
                related=sources(run, [inst.input], inst.declared_in_span),
            )
        )
    return out


def _collapses(graph: ArchGraph, shape: Shape) -> bool:
    return propagate(Run(graph, shape, use_expect=False)).collapsed


def smallest_input(graph: ArchGraph) -> Shape | None:
    """The smallest input size on each spatial axis (same channels) for which no map
    collapses."""
    shape = list(graph.input_shape)
    if len(shape) < 2:
        return None
    for axis in range(1, len(shape)):
        lo, hi = shape[axis], shape[axis]
        trial = list(shape)
        while True:  # grow until this axis stops collapsing
            trial[axis] = hi
            if not _collapses_axis(graph, trial, axis):
                break
            lo, hi = hi, hi * 2
            if hi > MAX_SEARCH:
                return None
        while lo < hi:  # then bisect: collapse is monotonic in the input size
            mid = (lo + hi) // 2
            trial[axis] = mid
            if _collapses_axis(graph, trial, axis):
                lo = mid + 1
            else:
                hi = mid
        shape[axis] = hi
    return tuple(shape)


def _collapses_axis(graph: ArchGraph, shape: list[int], axis: int) -> bool:
    # the other axes are made large so only this one can collapse
    probe = [shape[0]] + [MAX_SEARCH] * (len(shape) - 1)
    probe[axis] = shape[axis]
    return _collapses(graph, tuple(probe))


MAX_NEARBY = 64  # input sizes tried on each side of the spec's, for a concat that disagrees
NEARBY_BUDGET = 200_000  # node inferences spent on trying them (GoogLeNet: 159 a try)


def nearby_inputs(graph: ArchGraph) -> tuple[Shape | None, Shape | None]:
    """The nearest input sizes below and above the spec's (every spatial axis changed by the
    same amount, the channels kept) for which no concat's inputs disagree and no map collapses;
    None on a side where none is found within MAX_NEARBY, or within NEARBY_BUDGET."""
    shape = graph.input_shape
    if len(shape) < 2:
        return None, None
    tries = max(1, NEARBY_BUDGET // max(1, len(graph.order)))
    found: dict[int, Shape | None] = {-1: None, 1: None}
    for step in range(1, MAX_NEARBY + 1):
        for side in (-1, 1):
            if found[side] is not None or tries <= 0:
                continue
            trial = (shape[0], *(d + side * step for d in shape[1:]))
            if min(trial[1:]) < 1:
                continue
            tries -= 1
            run = propagate(Run(graph, trial, use_expect=False))
            if not run.mismatched and not run.collapsed:
                found[side] = trial
        if all(v is not None for v in found.values()) or tries <= 0:
            break
    return found[-1], found[1]


def _add_working_sizes(graph: ArchGraph, diags: list[Diagnostic]) -> list[Diagnostic]:
    """A concat whose inputs disagree for this input size only: the nearest sizes that work,
    as spatial-collapse says the smallest."""
    below, above = nearby_inputs(graph)
    sizes = [fmt_shape(s) for s in (below, above) if s is not None]
    if not sizes:
        return diags
    where = f"{' or '.join(sizes)} (the spec's input is {fmt_shape(graph.input_shape)})"
    out = []
    for d in diags:
        if d.code == "concat-mismatch" and d.label == "inputs disagree":
            d = replace(
                d,
                help=f"the inputs agree for an input of {where}; or change the padding or "
                "stride of a branch",
            )
        out.append(d)
    return out


def _add_smallest_input(graph: ArchGraph, diags: list[Diagnostic]) -> list[Diagnostic]:
    best = smallest_input(graph)
    out = []
    for d in diags:
        if d.code == "spatial-collapse":
            if best is None:
                d = d.with_note(f"no input up to {MAX_SEARCH}x{MAX_SEARCH} avoids it")
            else:
                d = replace(
                    d,
                    help=f"the smallest input that works is {fmt_shape(best)} (the spec's input "
                    f"is {fmt_shape(graph.input_shape)}); or remove a downsampling layer",
                )
        out.append(d)
    return out
