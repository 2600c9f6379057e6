"""`yarch diff`: what differs between two specs after resolution.

Both specs are resolved (parameters substituted, blocks expanded, shapes inferred) and their
graphs compared node by node, matched by resolved id (`inception5a.branch3.2`, `classifier`):

- added and removed nodes (in one graph only);
- changed nodes: a different op, different fields (the validated arguments, `name`, `from` and
  `expect` left out) or different inputs (rewired);
- shape changes: nodes whose op, fields and inputs are the same but whose input or output
  shapes (and so possibly parameters and MACs) changed, the consequences of the changes above;
- block instances that contain any of these, or whose own parameters changed, with their
  members' parameters and MACs summed;
- outputs whose shape, source or `train_only` changed, the input shape, and the totals.

Pure Python on the graphs that linting produces: never imports torch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .gcpause import no_cyclic_gc
from .graph import ArchGraph, Instance, Node
from .summary import summarize
from .syntax import Shape, fmt_shape

FORMATS = ("text", "json")
IGNORED_FIELDS = frozenset({"name", "from", "expect"})
SHAPE_LINES = 40  # shape-only consequences listed in text before "... and N more"

ADDED, REMOVED, CHANGED, SHAPE = "added", "removed", "changed", "shape"
MARKERS = {ADDED: "+", REMOVED: "-", CHANGED: "~", SHAPE: ">"}

Pair = tuple[Any, Any]


# --- the model ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeSide:
    """One node as one of the two graphs has it."""

    id: str
    op: str  # the op's name: `conv`
    desc: str  # `Op.describe`: `conv 5x5 pad 2, 128`
    fields: dict[str, Any]  # JSON-ready validated arguments, IGNORED_FIELDS left out
    inputs: tuple[str, ...]
    input_shapes: tuple[Shape | None, ...]
    shape: Shape | None
    params: int
    macs: int


@dataclass(frozen=True)
class NodeDiff:
    name: str
    status: str  # ADDED, REMOVED, CHANGED or SHAPE
    a: NodeSide | None
    b: NodeSide | None
    fields: dict[str, Pair] = field(default_factory=dict)

    @property
    def side(self) -> NodeSide:
        """The node as B has it, or as A had it when it was removed."""
        side = self.b or self.a
        assert side is not None
        return side

    @property
    def rewired(self) -> bool:
        return self.a is not None and self.b is not None and self.a.inputs != self.b.inputs

    def pair(self, attr: str) -> Pair:
        return (
            None if self.a is None else getattr(self.a, attr),
            None if self.b is None else getattr(self.b, attr),
        )


@dataclass(frozen=True)
class InstanceDiff:
    name: str
    block: str
    status: str  # ADDED, REMOVED, CHANGED (own fields or members changed) or SHAPE (only shapes)
    depth: int  # the number of enclosing block instances
    fields: dict[str, Pair]
    input_shape: Pair
    shape: Pair
    params: Pair
    macs: Pair


@dataclass(frozen=True)
class OutputDiff:
    name: str
    source: Pair  # node ids; None where the output does not exist
    shape: Pair
    train_only: Pair


@dataclass(frozen=True)
class GraphDiff:
    a: str  # the files as given
    b: str
    input_shape: Pair
    nodes: tuple[NodeDiff, ...]  # in graph order (B's, removed nodes where A had them)
    instances: tuple[InstanceDiff, ...]  # each before its first member
    outputs: tuple[OutputDiff, ...]
    params: Pair  # totals
    macs: Pair  # eval forward
    outer: dict[str, str | None]  # node or instance id -> its outermost enclosing instance

    def of(self, status: str) -> list[NodeDiff]:
        return [n for n in self.nodes if n.status == status]

    @property
    def identical(self) -> bool:
        return (
            not self.nodes
            and not self.instances
            and not self.outputs
            and self.input_shape[0] == self.input_shape[1]
        )


# --- computing ---------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _side(node: Node) -> NodeSide:
    dumped = node.args.model_dump(mode="json", by_alias=True)
    return NodeSide(
        id=node.id,
        op=node.op.name,
        desc=node.op.describe_at(node.args, node.input_shapes),
        fields={k: v for k, v in dumped.items() if k not in IGNORED_FIELDS},
        inputs=tuple(node.inputs),
        input_shapes=tuple(node.input_shapes),
        shape=node.shape,
        params=node.params,
        macs=node.macs,
    )


_MISSING = object()


def _field_changes(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Pair]:
    """`{field: (old, new)}` for the fields that differ; a field one side lacks reads None."""
    keys = [*a, *(k for k in b if k not in a)]
    out: dict[str, Pair] = {}
    for key in keys:
        old, new = a.get(key, _MISSING), b.get(key, _MISSING)
        if old != new:
            out[key] = (None if old is _MISSING else old, None if new is _MISSING else new)
    return out


def _node_diff(node_id: str, a: ArchGraph, b: ArchGraph) -> NodeDiff | None:
    in_a, in_b = a.graph.has_node(node_id), b.graph.has_node(node_id)
    if not in_b:
        return NodeDiff(node_id, REMOVED, _side(a.node(node_id)), None)
    if not in_a:
        return NodeDiff(node_id, ADDED, None, _side(b.node(node_id)))
    old, new = _side(a.node(node_id)), _side(b.node(node_id))
    fields = _field_changes(old.fields, new.fields)
    if old.op != new.op:
        fields = {"op": (old.op, new.op), **fields}
    if fields or old.inputs != new.inputs:
        return NodeDiff(node_id, CHANGED, old, new, fields)
    if (old.shape, old.input_shapes, old.params, old.macs) != (
        new.shape,
        new.input_shapes,
        new.params,
        new.macs,
    ):
        return NodeDiff(node_id, SHAPE, old, new)
    return None


def _merged_order(a: ArchGraph, b: ArchGraph) -> list[str]:
    """B's graph order, each node only A has placed after the node A had before it."""
    merged = [n for n in b.order if n != ArchGraph.INPUT]
    present = set(merged)
    inserted_after: dict[str | None, list[str]] = {}
    previous: str | None = None
    for node_id in a.order:
        if node_id == ArchGraph.INPUT:
            continue
        if node_id in present:
            previous = node_id
        else:
            inserted_after.setdefault(previous, []).append(node_id)
    out = list(inserted_after.get(None, []))
    for node_id in merged:
        out.append(node_id)
        out += inserted_after.get(node_id, [])
    return out


def _instance_chain(graph: ArchGraph, instance_id: str) -> list[str]:
    """The instances enclosing an instance (itself excluded), outermost first."""
    return graph.chain(instance_id.split(".")[:-1])


def _members(graph: ArchGraph) -> dict[str, list[Node]]:
    return {inst: [graph.node(n) for n in ids] for inst, ids in graph.member_map().items()}


def _instance_fields(inst: Instance | None) -> dict[str, Any]:
    if inst is None:
        return {}
    fields: dict[str, Any] = {"block": inst.block}
    if inst.declared_in is not None:
        fields["in"] = inst.declared_in
    fields.update(_jsonable(inst.params))
    if inst.repeat:
        fields["repeat"] = inst.repeat
    return fields


def _shape_at(graph: ArchGraph, node_id: str | None) -> Shape | None:
    if node_id is None or not graph.graph.has_node(node_id):
        return None
    return graph.node(node_id).shape


def _changed_pair(old: Any, new: Any) -> Pair:
    return (None, None) if old == new else (old, new)


def _instances(
    a: ArchGraph, b: ArchGraph, order: list[str], nodes: dict[str, NodeDiff]
) -> list[InstanceDiff]:
    members_a, members_b = _members(a), _members(b)
    position = {n: i for i, n in enumerate(order)}
    rows: list[tuple[tuple[int, int], InstanceDiff]] = []
    for inst_id in [*a.instances, *(i for i in b.instances if i not in a.instances)]:
        ia, ib = a.instances.get(inst_id), b.instances.get(inst_id)
        ma, mb = members_a.get(inst_id, []), members_b.get(inst_id, [])
        fields = _field_changes(_instance_fields(ia), _instance_fields(ib)) if ia and ib else {}
        inside = [nodes[n.id] for n in [*ma, *mb] if n.id in nodes]
        if ia is None:
            status = ADDED
        elif ib is None:
            status = REMOVED
        elif fields or any(d.status != SHAPE for d in inside):
            status = CHANGED
        elif inside:
            status = SHAPE
        else:
            continue
        graph, inst = (b, ib) if ib is not None else (a, ia)
        assert inst is not None
        depth = len(_instance_chain(graph, inst_id))
        first = min((position[n.id] for n in [*ma, *mb] if n.id in position), default=len(order))
        rows.append(
            (
                (first, depth),
                InstanceDiff(
                    name=inst_id,
                    block=inst.block,
                    status=status,
                    depth=depth,
                    fields=fields,
                    input_shape=_changed_pair(
                        _shape_at(a, ia.input) if ia else None,
                        _shape_at(b, ib.input) if ib else None,
                    ),
                    shape=_changed_pair(
                        _shape_at(a, ia.output) if ia else None,
                        _shape_at(b, ib.output) if ib else None,
                    ),
                    params=(sum(n.params for n in ma), sum(n.params for n in mb)),
                    macs=(sum(n.macs for n in ma), sum(n.macs for n in mb)),
                ),
            )
        )
    return [row for _, row in sorted(rows, key=lambda r: r[0])]


def _outputs(a: ArchGraph, b: ArchGraph) -> list[OutputDiff]:
    out: list[OutputDiff] = []
    for name in [*a.outputs, *(n for n in b.outputs if n not in a.outputs)]:
        sa, sb = a.outputs.get(name), b.outputs.get(name)
        row = OutputDiff(
            name,
            (sa, sb),
            (_shape_at(a, sa), _shape_at(b, sb)),
            (
                None if sa is None else name in a.train_only,
                None if sb is None else name in b.train_only,
            ),
        )
        if any(old != new for old, new in (row.source, row.shape, row.train_only)):
            out.append(row)
    return out


@no_cyclic_gc()
def diff_graphs(a: ArchGraph, b: ArchGraph, file_a: str = "a", file_b: str = "b") -> GraphDiff:
    """Compare two resolved graphs (`lint_file(...).graph`, shapes inferred)."""
    order = _merged_order(a, b)
    nodes = {}
    for node_id in order:
        row = _node_diff(node_id, a, b)
        if row is not None:
            nodes[node_id] = row
    outer: dict[str, str | None] = {}
    for graph in (a, b):
        for node_id in graph.order:
            if node_id != ArchGraph.INPUT:
                chain = graph.chain(graph.node(node_id).scope)
                outer.setdefault(node_id, chain[0] if chain else None)
        for inst_id in graph.instances:
            chain = _instance_chain(graph, inst_id)
            outer.setdefault(inst_id, chain[0] if chain else None)
    sa, sb = summarize(a), summarize(b)
    return GraphDiff(
        a=file_a,
        b=file_b,
        input_shape=(a.input_shape, b.input_shape),
        nodes=tuple(nodes.values()),
        instances=tuple(_instances(a, b, order, nodes)),
        outputs=tuple(_outputs(a, b)),
        params=(sa.total_params, sb.total_params),
        macs=(sa.total_macs, sb.total_macs),
        outer=outer,
    )


# --- JSON ----------------------------------------------------------------------------------------


def _shape(shape: Shape | None) -> list[int] | None:
    return None if shape is None else list(shape)


def _shape_pair(pair: Pair) -> list[Any] | None:
    return None if pair[0] == pair[1] else [_shape(pair[0]), _shape(pair[1])]


def _single_row(side: NodeSide) -> dict[str, Any]:
    return {
        "name": side.id,
        "op": side.desc,
        "inputs": list(side.inputs),
        "input_shapes": [_shape(s) for s in side.input_shapes],
        "shape": _shape(side.shape),
        "params": side.params,
        "macs": side.macs,
    }


def _pair_row(row: NodeDiff) -> dict[str, Any]:
    assert row.a is not None and row.b is not None
    return {
        "name": row.name,
        "op": row.b.desc,
        "fields": {k: [old, new] for k, (old, new) in row.fields.items()},
        "inputs": [list(row.a.inputs), list(row.b.inputs)] if row.rewired else None,
        "input_shapes": None
        if row.a.input_shapes == row.b.input_shapes
        else [[_shape(s) for s in row.a.input_shapes], [_shape(s) for s in row.b.input_shapes]],
        "shape": _shape_pair((row.a.shape, row.b.shape)),
        "params": [row.a.params, row.b.params],
        "macs": [row.a.macs, row.b.macs],
    }


def as_dict(diff: GraphDiff) -> dict[str, Any]:
    """The JSON contract (README, `yarch diff --format json`)."""
    return {
        "a": diff.a,
        "b": diff.b,
        "input_shape": {"a": _shape(diff.input_shape[0]), "b": _shape(diff.input_shape[1])},
        "added": [_single_row(r.side) for r in diff.of(ADDED)],
        "removed": [_single_row(r.side) for r in diff.of(REMOVED)],
        "changed": [_pair_row(r) for r in diff.of(CHANGED)],
        "shape_changes": [_pair_row(r) for r in diff.of(SHAPE)],
        "instances": [
            {
                "name": i.name,
                "block": i.block,
                "status": i.status,
                "depth": i.depth,
                "fields": {k: [old, new] for k, (old, new) in i.fields.items()},
                "input_shape": _shape_pair(i.input_shape),
                "shape": _shape_pair(i.shape),
                "params": list(i.params),
                "macs": list(i.macs),
            }
            for i in diff.instances
        ],
        "outputs": {
            o.name: {
                "from": list(o.source),
                "shape": [_shape(o.shape[0]), _shape(o.shape[1])],
                "train_only": list(o.train_only),
            }
            for o in diff.outputs
        },
        "totals": {
            "params": [*diff.params, diff.params[1] - diff.params[0]],
            "macs": [*diff.macs, diff.macs[1] - diff.macs[0]],
        },
    }


def render_json(diff: GraphDiff) -> str:
    return json.dumps(as_dict(diff), indent=2, sort_keys=True)


# --- text ----------------------------------------------------------------------------------------


def _shapes(shapes: Iterable[Shape | None]) -> str:
    return ", ".join(fmt_shape(s) for s in shapes) or "-"


def _value(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def count_change(old: int, new: int) -> str:
    """`102,528 -> 25,632 (-76,896)`; `1,024 (unchanged)`."""
    if old == new:
        return f"{new:,} (unchanged)"
    return f"{old:,} -> {new:,} ({new - old:+,})"


def _counts(params: Pair, macs: Pair, sep: str) -> list[str]:
    """`params ...` and `MACs ...`, left out where both sides are zero."""
    out = []
    for label, (old, new) in (("params", params), ("MACs", macs)):
        if old or new:
            out.append(f"{label}{sep}{count_change(old, new)}")
    return out


def _shape_change(row: NodeDiff) -> str:
    """The output shape's change, else the input shapes' change; '' when neither changed."""
    assert row.a is not None and row.b is not None
    if row.a.shape != row.b.shape:
        return f"output {fmt_shape(row.a.shape)} -> {fmt_shape(row.b.shape)}"
    if row.a.input_shapes != row.b.input_shapes:
        return f"input {_shapes(row.a.input_shapes)} -> {_shapes(row.b.input_shapes)}"
    return ""


def _line(indent: int, marker: str, *parts: str) -> str:
    return " " * indent + marker + " " + "  ".join(p for p in parts if p)


def _node_lines(row: NodeDiff, indent: int) -> list[str]:
    marker = MARKERS[row.status]
    side = row.side
    if row.status in (ADDED, REMOVED):
        source = f"from {', '.join(side.inputs)}" if side.inputs else ""
        return [
            _line(
                indent,
                marker,
                row.name,
                side.desc,
                source,
                f"output {fmt_shape(side.shape)}",
                *(f"{k} {v:,}" for k, v in (("params", side.params), ("MACs", side.macs)) if v),
            )
        ]
    assert row.a is not None and row.b is not None
    if row.status == SHAPE:
        return [
            _line(
                indent,
                marker,
                row.name,
                side.desc,
                _shape_change(row),
                *_counts(row.pair("params"), row.pair("macs"), " "),
            )
        ]
    detail = " " * (indent + 4)
    lines = [_line(indent, marker, row.name, side.desc)]
    lines += [
        f"{detail}{k}: {_value(old)} -> {_value(new)}" for k, (old, new) in row.fields.items()
    ]
    if row.rewired:
        lines.append(f"{detail}inputs: {', '.join(row.a.inputs)} -> {', '.join(row.b.inputs)}")
    if row.a.input_shapes != row.b.input_shapes:
        lines.append(
            f"{detail}input: {_shapes(row.a.input_shapes)} -> {_shapes(row.b.input_shapes)}"
        )
    if row.a.shape != row.b.shape:
        lines.append(f"{detail}output: {fmt_shape(row.a.shape)} -> {fmt_shape(row.b.shape)}")
    lines += [detail + c for c in _counts(row.pair("params"), row.pair("macs"), ": ")]
    return lines


def _instance_lines(inst: InstanceDiff, indent: int) -> list[str]:
    shape = ""
    if inst.shape[0] != inst.shape[1]:
        shape = f"output {fmt_shape(inst.shape[0])} -> {fmt_shape(inst.shape[1])}"
    elif inst.input_shape[0] != inst.input_shape[1]:
        shape = f"input {fmt_shape(inst.input_shape[0])} -> {fmt_shape(inst.input_shape[1])}"
    if inst.status in (ADDED, REMOVED):
        shape = ""
        params, macs = max(inst.params), max(inst.macs)
        counts = [f"{k} {v:,}" for k, v in (("params", params), ("MACs", macs)) if v]
    else:
        counts = _counts(inst.params, inst.macs, " ")
    head = _line(indent, MARKERS[inst.status], inst.name, f"[{inst.block}]", shape, *counts)
    detail = " " * (indent + 4)
    return [head] + [
        f"{detail}{k}: {_value(old)} -> {_value(new)}" for k, (old, new) in inst.fields.items()
    ]


def _shown_in_text(inst: InstanceDiff) -> bool:
    """Outermost instances always; nested ones when they themselves changed, appeared or went."""
    return inst.depth == 0 or bool(inst.fields) or inst.status in (ADDED, REMOVED)


def _prefixes(name: str) -> list[str]:
    """`a.b.c` -> `a`, `a.b`: the names a dotted name lies inside."""
    parts = name.split(".")
    return [".".join(parts[:k]) for k in range(1, len(parts))]


def _tree_lines(diff: GraphDiff, limit: int) -> tuple[list[str], int]:
    """The changes grouped under their outermost instance, in graph order; and the number of
    shape-only lines left out beyond `limit`."""
    shown = [i for i in diff.instances if _shown_in_text(i)]
    shown_ids = {i.name for i in shown}
    # every row in the order it is printed: (group, position within it)
    items: list[tuple[str, InstanceDiff | NodeDiff]] = []
    groups: dict[str, list[InstanceDiff | NodeDiff]] = {}
    for inst in shown:
        key = diff.outer.get(inst.name) or inst.name
        groups.setdefault(key, []).append(inst)
    for row in diff.nodes:
        key = diff.outer.get(row.name) or row.name
        groups.setdefault(key, []).append(row)
    # group order: the first node of each group in graph order (instances come before members)
    first: dict[str, int] = {}
    for pos, row in enumerate(diff.nodes):
        first.setdefault(diff.outer.get(row.name) or row.name, pos)
    for key in sorted(groups, key=lambda k: first.get(k, len(diff.nodes))):
        members = groups[key]
        instances = [m for m in members if isinstance(m, InstanceDiff)]
        nodes = [m for m in members if isinstance(m, NodeDiff)]
        placed: set[str] = set()
        rank = {inst.name: k for k, inst in enumerate(instances)}
        for row in nodes:  # an instance's row just before its first member
            # the instances around the row are among its dotted prefixes: looked up, not
            # searched for (quadratic in a group of thousands)
            around = [p for p in _prefixes(row.name) if p in rank and p not in placed]
            for name in sorted(around, key=rank.__getitem__):
                placed.add(name)
                items.append((key, instances[rank[name]]))
            items.append((key, row))
        items += [(key, i) for i in instances if i.name not in placed]

    def indent_of(name: str) -> int:
        return 2 * sum(1 for p in _prefixes(name) if p in shown_ids)

    lines: list[str] = []
    shape_lines = 0
    left_out = 0
    for _, item in items:
        if isinstance(item, InstanceDiff):
            lines += _instance_lines(item, indent_of(item.name))
        elif item.status == SHAPE:
            shape_lines += 1
            if shape_lines > limit:
                left_out += 1
                continue
            lines += _node_lines(item, indent_of(item.name))
        else:
            lines += _node_lines(item, indent_of(item.name))
    return lines, left_out


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def render_text(diff: GraphDiff, limit: int = SHAPE_LINES) -> str:
    out = [f"--- {diff.a}", f"+++ {diff.b}"]
    if diff.input_shape[0] != diff.input_shape[1]:
        out.append(f"input: {fmt_shape(diff.input_shape[0])} -> {fmt_shape(diff.input_shape[1])}")
    out.append("")
    if diff.identical:
        out.append("No differences after resolution.")
    else:
        lines, left_out = _tree_lines(diff, limit)
        out += lines
        if left_out:
            out.append(f"... and {left_out} more shape changes (--format json lists them all)")
    if diff.outputs:
        out += ["", "Outputs:"]
        for o in diff.outputs:
            if o.source[0] is None:
                text = f"added, {fmt_shape(o.shape[1])}"
            elif o.source[1] is None:
                text = f"removed (was {fmt_shape(o.shape[0])})"
            elif o.shape[0] != o.shape[1]:
                text = f"{fmt_shape(o.shape[0])} -> {fmt_shape(o.shape[1])}"
            else:
                text = fmt_shape(o.shape[1])
            if o.source[0] and o.source[1] and o.source[0] != o.source[1]:
                text += f" (from {o.source[0]} -> {o.source[1]})"
            old, new = o.train_only
            if old is not None and new is not None and old != new:
                text += f" (training only: {_value(old)} -> {_value(new)})"
            elif old or new:
                text += " (training only)"
            out.append(f"  {o.name}: {text}")
    out += [
        "",
        f"Total params: {count_change(*diff.params)}",
        f"Total MACs (eval): {count_change(*diff.macs)}",
    ]
    if not diff.identical:
        counts = [
            _plural(len(diff.of(CHANGED)), "node") + " changed",
            f"{len(diff.of(ADDED)):,} added",
            f"{len(diff.of(REMOVED)):,} removed",
            _plural(len(diff.of(SHAPE)), "shape change"),
        ]
        out.append(", ".join(counts) + ".")
    return "\n".join(line.rstrip() for line in out)


@no_cyclic_gc()
def render_diff(diff: GraphDiff, fmt: str = "text") -> str:
    return render_json(diff) if fmt == "json" else render_text(diff)
