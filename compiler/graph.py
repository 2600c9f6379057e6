"""The resolved network: `Node`s (one per primitive op) and block `Instance`s in an `ArchGraph`.

`ArchGraph` keeps its nodes in a `networkx.DiGraph` (node attribute `node` holds the `Node`;
an edge u -> v: v reads u), which gives the topological order, ancestors and cycles. Around it
the graph keeps what networkx does not know: the order (topological, the spec's order breaking
ties), the outputs, and the block instances (named scopes of nodes, with the nodes they begin
and end at). It owns that structure: the rewrites of `passes.py` go through `remove_node`,
`replace_node` and `insert`, which keep all of it consistent, and the back ends ask it for a
node's enclosing instances (`chain`, `parent`) and an instance's `members`, computed once.
Shape inference fills in each node's `shape`, `params` and `macs`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import networkx as nx

from .diagnostics import Span
from .syntax import RawLayer, Shape

if TYPE_CHECKING:
    from .ops.base import NodeArgs, Op


@dataclass
class Node:
    """A primitive op in the resolved graph."""

    id: str
    name: str
    op: type[Op]
    args: NodeArgs
    layer: RawLayer
    scope: tuple[str, ...] = ()
    inputs: list[str] = field(default_factory=list)
    index: int = 0  # creation order, the tie-break of the topological order
    expect: Shape | None = None
    expect_span: Span | None = None
    # filled by shape inference
    shape: Shape | None = None
    input_shapes: list[Shape | None] = field(default_factory=list)
    params: int = 0
    macs: int = 0
    explain: str | None = None  # how the channel count came about, e.g. "192 + 208 + 48 + 64"

    @property
    def span(self) -> Span | None:
        return self.layer.span

    def field_span(self, *loc: Any) -> Span | None:
        return self.layer.field_span(loc)


@dataclass
class Instance:
    """A block instance (user block, `seq` or `inception`): a named scope of nodes."""

    id: str
    block: str
    span: Span | None
    args: dict[str, Any]
    input: str | None = None
    output: str | None = None
    declared_in: int | None = None
    declared_in_span: Span | None = None
    repeat: int = 0  # a `repeat: N` group: its children are the N copies
    repeat_raw: Any = None  # its `repeat:` as written (`${layers[0]}`), for generated code
    names_raw: Any = None  # its `names:` as written (`denselayer${i + 1}`)
    copies: list[str] = field(default_factory=list)  # the names of its copies, in order
    # a block of several inputs (`inputs: [x, skip]`): what its inputs after the first are,
    # as (node id, the name the block gives it)
    extra_inputs: list[tuple[str, str]] = field(default_factory=list)
    # the block's parameters with their values, in declaration order (names for generated code)
    params: dict[str, Any] = field(default_factory=dict)


def _shallow(obj: Any) -> Any:
    """A new object with the same attributes (`dataclasses.replace` runs `__init__`: ten
    times slower, which counts in a graph of 100,000 nodes)."""
    new = object.__new__(type(obj))
    new.__dict__.update(obj.__dict__)
    return new


def _copy_instance(inst: Instance) -> Instance:
    new = _shallow(inst)
    new.args, new.params = dict(inst.args), dict(inst.params)
    new.extra_inputs = list(inst.extra_inputs)
    return new


class _Edit:
    """Removals, renames and insertions made in one `ArchGraph.editing()` block, applied to
    the order and the block instances once, at its end (each one done at once would scan them
    all: quadratic in a long network)."""

    def __init__(self, graph: ArchGraph) -> None:
        self.replaced: dict[str, str] = {}  # removed node -> what its readers read instead
        self.renamed: dict[str, str] = {}  # node -> the node that takes its place in order
        self.dropped: set[str] = set()  # removed nodes nothing stands for
        self.inserted: dict[str, list[str]] = {}  # node -> nodes placed just before it
        # node -> the block instances that begin or end at it
        self.ends: dict[str, list[Instance]] = {}
        for inst in graph.instances.values():
            ends = {inst.input, inst.output, *(n for n, _ in inst.extra_inputs)}
            for node_id in ends - {None}:
                self.ends.setdefault(node_id, []).append(inst)  # type: ignore[arg-type]

    def final(self, node_id: str) -> str:
        seen = 0
        while node_id in self.replaced and seen <= len(self.replaced):
            node_id, seen = self.replaced[node_id], seen + 1
        return node_id


@dataclass
class ArchGraph:
    name: str
    input_shape: Shape
    graph: nx.DiGraph = field(default_factory=nx.DiGraph)
    outputs: dict[str, str] = field(default_factory=dict)
    output_spans: dict[str, Span | None] = field(default_factory=dict)
    train_only: set[str] = field(default_factory=set)
    unresolved_outputs: set[str] = field(default_factory=set)
    complete: bool = True  # false when a layer or reference failed to resolve
    block_docs: dict[str, str] = field(default_factory=dict)  # user block -> its `doc:`
    # user block -> its parameters, in the spec's order: what `names.class_names` names the
    # generated classes from (resolve warns of collisions, codegen writes the classes)
    block_params: dict[str, tuple[str, ...]] = field(default_factory=dict)
    scale: str | None = None  # the row of the spec's `scales` table it was resolved with
    class_: str | None = None  # the spec's `class:`, the model's class name it chose
    init: str = "none"  # the spec's `init:`, its weight initialisation (`compiler/init.py`)
    # the spec's parameters as resolved (the model's keyword arguments in generated code), and
    # those written as an expression of others (`${base * 2}`), as written
    params: dict[str, Any] = field(default_factory=dict)
    param_exprs: dict[str, Any] = field(default_factory=dict)
    # user block -> its parameters' defaults as written (None: required)
    block_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    instances: dict[str, Instance] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    # output node id -> the outermost block instance it is the output of
    instance_outputs: dict[str, str] = field(default_factory=dict)
    # computed on first use, dropped by every edit (see `members`)
    _members: dict[str, list[str]] | None = field(default=None, repr=False, compare=False)
    _edit: _Edit | None = field(default=None, repr=False, compare=False)
    _chains: dict[tuple[str, ...], list[str]] | None = field(
        default=None, repr=False, compare=False
    )
    _chains_for: int = field(default=0, repr=False, compare=False)

    INPUT = "input"

    # --- nodes -----------------------------------------------------------------------------

    @property
    def model_class(self) -> str:
        """The model's class name: the spec's `class:`, else made from its name."""
        from .names import class_name

        return self.class_ or class_name(self.name)

    def node(self, node_id: str) -> Node:
        # networkx's node dict, as its own algorithms read it: `graph.nodes[n]` (a NodeView)
        # checks for a slice on every call, 3% of the lint of a 100,000-layer spec
        return self.graph._node[node_id]["node"]

    def nodes(self) -> list[Node]:
        return [self.node(n) for n in self.order]

    def display(self, node_id: str) -> str:
        """The name a person knows a node by: a block instance's name for its output node."""
        return self.instance_outputs.get(node_id, node_id)

    def upstream(self, node_ids: Iterable[str]) -> set[str]:
        """The given nodes and every node they are computed from (ids not in the graph are
        skipped)."""
        out: set[str] = set()
        for node_id in node_ids:
            if node_id in self.graph and node_id not in out:
                out |= nx.ancestors(self.graph, node_id) | {node_id}
        return out

    def release(self) -> None:
        """Drop the views networkx caches on the graph (`graph.in_degree` holds the graph, a
        cycle), so that reference counting frees a graph its holder lets go of, without the
        cyclic collector (the language server runs that only between lints)."""
        cached = vars(self.graph)
        for key in [k for k, v in cached.items() if getattr(v, "_graph", None) is self.graph]:
            del cached[key]

    def topological_order(self, only: Iterable[str] | None = None) -> list[str]:
        """The nodes (those of `only`, if given) in an order where every node comes after its
        inputs, the spec's order (`Node.index`) breaking ties. Raises
        `networkx.NetworkXUnfeasible` on a cycle."""
        graph = self.graph if only is None else self.graph.subgraph(only)
        nodes = self.graph.nodes
        return list(
            nx.lexicographical_topological_sort(graph, key=lambda n: nodes[n]["node"].index)
        )

    # --- block instances -------------------------------------------------------------------

    def chain(self, scope: Sequence[str]) -> list[str]:
        """The ids of the block instances around a scope (a node's `scope`, or an instance id
        split at its dots: itself included), outermost first. Remembered per scope: every
        node of a block shares its scope."""
        if self._chains is None or self._chains_for != len(self.instances):
            self._chains, self._chains_for = {}, len(self.instances)
        key = tuple(scope)
        chain = self._chains.get(key)
        if chain is None:
            prefixes = (".".join(key[:k]) for k in range(1, len(key) + 1))
            chain = self._chains[key] = [p for p in prefixes if p in self.instances]
        return chain

    def parent(self, item: str) -> str | None:
        """The innermost block instance around a node or an instance (by id), or None."""
        if item in self.instances:
            chain = self.chain(item.split(".")[:-1])
        elif item in self.graph:
            chain = self.chain(self.node(item).scope)
        else:
            raise KeyError(item)
        return chain[-1] if chain else None

    def members(self, instance: str) -> list[str]:
        """The ids of the nodes inside a block instance, at any depth, in order (the input
        node is inside none)."""
        return self.member_map().get(instance, [])

    def member_map(self) -> dict[str, list[str]]:
        """Block instance id -> `members(id)`, for the instances with any members; computed
        for every instance at once, on first use, and again after an edit."""
        if self._members is None:
            members: dict[str, list[str]] = {}
            for node_id in self.order:
                if node_id == self.INPUT:
                    continue
                for inst in self.chain(self.node(node_id).scope):
                    members.setdefault(inst, []).append(node_id)
            self._members = members
        return self._members

    # --- edits -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def editing(self) -> Iterator[None]:
        """Edits inside are applied to the order and the block instances once, at the end."""
        if self._edit is not None:
            yield
            return
        self._edit = _Edit(self)
        try:
            yield
        finally:
            edit, self._edit = self._edit, None
            self._apply(edit)

    def add_node(self, node: Node) -> None:
        """A new node, with an edge from each of its inputs (not yet in the order)."""
        self.graph.add_node(node.id, node=node)
        for source in node.inputs:
            self.graph.add_edge(source, node.id)
        self._members = None

    def insert(self, nodes: Sequence[Node], before: str) -> None:
        """New nodes, placed in the order just before node `before`."""
        for node in nodes:
            self.add_node(node)
        with self.editing():
            assert self._edit is not None
            self._edit.inserted.setdefault(before, []).extend(n.id for n in nodes)

    def set_inputs(self, node_id: str, inputs: list[str]) -> None:
        """Node `node_id` reads `inputs` from now on (its edges follow)."""
        node = self.node(node_id)
        for source in set(node.inputs) - set(inputs):
            if self.graph.has_edge(source, node_id):
                self.graph.remove_edge(source, node_id)
        node.inputs = list(inputs)
        for source in inputs:
            self.graph.add_edge(source, node_id)

    def set_instance_input(self, instance: str, node_id: str) -> None:
        """Block instance `instance` begins at node `node_id` from now on."""
        inst = self.instances[instance]
        inst.input = node_id
        if self._edit is not None:
            self._edit.ends.setdefault(node_id, []).append(inst)

    def remove_node(self, node_id: str, replacement: str | None = None) -> None:
        """Remove a node; what read it, and the outputs and block instances that were it, take
        `replacement` instead (required if anything reads it)."""
        readers = list(self.graph.successors(node_id))
        if readers and replacement is None:
            raise ValueError(f"node {node_id!r} is read by {readers[0]!r}: name a replacement")
        for reader in readers:
            node = self.node(reader)
            self.set_inputs(reader, [replacement if i == node_id else i for i in node.inputs])  # type: ignore[misc]
        self.graph.remove_node(node_id)
        # the outputs at once: whether a node is an output decides what a pass may do to it
        for name, out in list(self.outputs.items()):
            if out == node_id:
                self.outputs[name] = replacement  # type: ignore[assignment]
        with self.editing():
            assert self._edit is not None
            if replacement is None:
                self._edit.dropped.add(node_id)
            else:
                self._edit.replaced[node_id] = replacement

    def replace_node(self, old: str, new: Node) -> None:
        """`new` takes node `old`'s place: its position in the order, its readers, and the
        outputs and block instances that were `old`. `new.inputs` are its own."""
        if new.id == old:
            for source in list(self.graph.predecessors(old)):
                self.graph.remove_edge(source, old)
            self.graph.nodes[old]["node"] = new
            for source in new.inputs:
                self.graph.add_edge(source, old)
            self._members = None
            return
        if new.id in self.graph:
            raise ValueError(f"node {new.id!r} exists")
        self.add_node(new)
        with self.editing():
            assert self._edit is not None
            self._edit.renamed[old] = new.id
            self.remove_node(old, new.id)

    def _apply(self, edit: _Edit) -> None:
        self._members = None
        gone = edit.replaced.keys() | edit.dropped
        if edit.inserted or gone:
            order: list[str] = []
            for node_id in self.order:
                order += edit.inserted.get(node_id, ())
                if node_id in edit.renamed:
                    order.append(edit.renamed[node_id])
                elif node_id not in gone:
                    order.append(node_id)
            self.order = order
        for node_id in gone:
            for inst in edit.ends.get(node_id, ()):
                if inst.input in gone:
                    inst.input = edit.final(inst.input)  # type: ignore[arg-type]
                if inst.output in gone:
                    inst.output = edit.final(inst.output)  # type: ignore[arg-type]
                inst.extra_inputs = [
                    (edit.final(n) if n in gone else n, name) for n, name in inst.extra_inputs
                ]
        for node_id in [n for n in edit.replaced if n in self.instance_outputs]:
            self.instance_outputs[edit.final(node_id)] = self.instance_outputs.pop(node_id)

    # --- copies ----------------------------------------------------------------------------

    def copy(self) -> ArchGraph:
        """A copy to rewrite (`compiler.optimize`'s passes): its nodes, block instances, edges
        and every list, dict and set are new; what a rewrite replaces rather than changes is
        shared (a node's args, which are replaced with `model_copy`, its written layer, spans,
        shapes). Far cheaper than `copy.deepcopy`: 0.3 s, not 3.6 s, for 100,000 layers."""
        graph = nx.DiGraph()
        nodes = {}
        for node_id, attrs in self.graph.nodes.items():
            node = _shallow(attrs["node"])
            node.inputs = list(node.inputs)
            node.input_shapes = list(node.input_shapes)
            nodes[node_id] = {**attrs, "node": node}
        graph.add_nodes_from(nodes.items())
        graph.add_edges_from(self.graph.edges)
        return replace(
            self,
            graph=graph,
            outputs=dict(self.outputs),
            output_spans=dict(self.output_spans),
            train_only=set(self.train_only),
            unresolved_outputs=set(self.unresolved_outputs),
            block_docs=dict(self.block_docs),
            block_params=dict(self.block_params),
            instances={k: _copy_instance(v) for k, v in self.instances.items()},
            order=list(self.order),
            instance_outputs=dict(self.instance_outputs),
            _members=None,
            _edit=None,
            _chains=None,
        )

    def to_networkx(self) -> nx.DiGraph:
        """The graph as a `networkx.DiGraph` (node attribute `node` holds the `Node`)."""
        return self.graph
