"""Linking: the names that expansion registered -> the graph's edges, order and outputs.

Expansion records what every qualified name stands for (a node, an alias of another name, or a
layer that failed) and which references each node and block instance reads; `Linker` follows
them once everything is known, reports undefined and cyclic references, adds the edges, orders
the nodes topologically and looks up the outputs. A reference to a failed layer stays silent,
so one broken layer does not cascade into more errors.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import networkx as nx

from .diagnostics import Diagnostic, Span, error
from .graph import ArchGraph, Instance
from .loader import Document
from .names import Suggestions
from .schema import OutputSpec, Spec

Scope = tuple[str, ...]


def qual(scope: Scope, name: str) -> str:
    return ".".join((*scope, name))


@dataclass(frozen=True)
class Ref:
    scope: Scope
    name: str
    span: Span | None


BROKEN = object()  # target of a layer that failed: references to it stay silent


class Linker:
    """What each name stands for, and the references still to follow."""

    def __init__(self, graph: ArchGraph, diags: list[Diagnostic], suggest: Suggestions) -> None:
        self.graph = graph
        self.diags = diags
        self.suggest = suggest
        self.targets: dict[str, Any] = {}  # qualified name -> node id | Ref | BROKEN
        self.scope_names: dict[Scope, list[str]] = defaultdict(list)
        self.pending: list[tuple[str, list[Ref]]] = []  # node id -> the references it reads
        self.instance_refs: list[tuple[Instance, Ref, Ref]] = []  # instance, input, output
        # a block of several inputs: its inputs after the first, with the names it gives them
        self.extra_refs: list[tuple[Instance, list[tuple[str, Ref]]]] = []
        self.instance_expects: list[tuple[Instance, tuple[int, ...], Span | None]] = []
        self.output_refs: dict[str, tuple[Ref, bool, Span | None]] = {}
        # layers of several inputs removed by `if:` (each stands for its first input)
        self.removed: list[tuple[str, str, list[Ref], Span | None]] = []
        self.memo: dict[str, str | None] = {}

    def lookup(self, ref: Ref) -> str | None:
        # aliases (`if: false` layers, groups, block outputs) are followed in a loop, not by
        # recursion: a chain of a thousand disabled layers would exhaust Python's stack
        key = qual(ref.scope, ref.name)
        chain: dict[str, None] = {}  # the aliases followed, in order, to name a cycle
        while key not in self.memo and key not in chain and isinstance(self.targets.get(key), Ref):
            chain[key] = None
            ref = self.targets[key]
            key = qual(ref.scope, ref.name)
        if key in self.memo:
            return self.remember(chain, self.memo[key])
        target = self.targets.get(key)
        result: str | None
        if target is None or target is BROKEN:
            self.graph.complete = False
        if target is None:
            where = f" in `{'.'.join(ref.scope)}`" if ref.scope else ""
            names = self.scope_names.get(ref.scope, [])
            help = self.suggest(
                ref.name, lambda: [*(n for n in names if n != ref.name), "input"], len(names)
            ) or (
                "a block's layers can refer to each other, to `input` and to the other "
                "inputs its `from:` names"
                if ref.scope
                else "name a layer with `name:` to refer to it"
            )
            self.diags.append(
                error(
                    "undefined-reference",
                    f"no layer named `{ref.name}`{where}",
                    ref.span,
                    help=help,
                )
            )
            result = None
        elif target is BROKEN:
            result = None
        elif isinstance(target, str):
            result = target
        else:  # an alias already followed: a cycle
            names = list(chain)
            cycle = " -> ".join(f"`{k}`" for k in (*names[names.index(key) :], key))
            self.diags.append(
                error("cyclic-reference", f"references form a cycle: {cycle}", ref.span)
            )
            result = None
        self.memo[key] = result
        return self.remember(chain, result)

    def remember(self, chain: dict[str, None], result: str | None) -> str | None:
        for key in chain:
            self.memo[key] = result
        return result

    def link(self) -> None:
        g = self.graph.graph
        for node_id, refs in self.pending:
            node = g.nodes[node_id]["node"]
            resolved = [self.lookup(r) for r in refs]
            if any(r is None for r in resolved):
                node.inputs = []
                g.nodes[node_id]["unresolved"] = True
                continue
            node.inputs = [r for r in resolved if r is not None]
            for src in node.inputs:
                g.add_edge(src, node_id)
        for inst, in_ref, out_ref in self.instance_refs:
            inst.input = self.lookup(in_ref)
            inst.output = self.lookup(out_ref)
            if inst.output is not None:
                self.graph.instance_outputs[inst.output] = inst.id
        for inst, named in self.extra_refs:
            found = [(self.lookup(ref), name) for name, ref in named]
            inst.extra_inputs = [(n, name) for n, name in found if n is not None]
        for inst, shape, span in self.instance_expects:
            if inst.output is not None:
                node = self.graph.node(inst.output)
                if node.expect is None:
                    node.expect, node.expect_span = shape, span
        self.order_nodes()

    def check_removed(self) -> None:
        """A layer of several inputs that `if:` removes stands for its first input; another
        input that nothing else reads would then be dropped silently, with only a warning
        that it is unreachable. `add: {from: [conv, input], if: ...}` is the idiom (without
        the shortcut, the block is its conv); `add: {from: [input, conv], if: ...}` is the
        mistake, reported here."""
        g = self.graph.graph
        kept = set(self.graph.outputs.values())
        for key, op, refs, span in self.removed:
            first = self.lookup(refs[0])
            for ref in refs[1:]:
                node = self.lookup(ref)
                if node is None or node == first or node in kept or g.out_degree(node) > 0:
                    continue
                self.graph.complete = False  # the error says it: no unreachable-node too
                self.diags.append(
                    error(
                        "dropped-input",
                        f"`{key}` ({op}) is removed by its `if:` and stands for its first input "
                        f"`{refs[0].name}`, so `{ref.name}` is read by nothing",
                        span,
                        help=f"list first the input `{key}` should stand for when it is removed "
                        f"(`from: [{ref.name}, ...]`), or remove `{ref.name}` with the same `if:`",
                    )
                )

    def order_nodes(self) -> None:
        """Topological order, the spec's own order breaking ties; cycles are looked for only
        when there is one (the common case pays for one sort, not a components pass too)."""
        g = self.graph.graph
        nodes = g.nodes
        try:
            order = self.graph.topological_order()
        except nx.NetworkXUnfeasible:
            self.find_cycles()
            order = self.graph.topological_order(n for n in g if not nodes[n].get("unresolved"))
        self.graph.order = [n for n in order if not nodes[n].get("unresolved")]

    def find_cycles(self) -> None:
        g = self.graph.graph
        for component in nx.strongly_connected_components(g):
            if len(component) == 1:
                (n,) = component
                if not g.has_edge(n, n):
                    continue
            cycle = [u for u, _ in nx.find_cycle(g.subgraph(component))]
            first = min(cycle, key=lambda n: g.nodes[n]["node"].index)
            node = g.nodes[first]["node"]
            chain = " -> ".join(f"`{self.graph.display(n)}`" for n in [*cycle, cycle[0]])
            self.diags.append(
                error(
                    "cyclic-reference",
                    f"layers feed each other in a cycle: {chain}",
                    node.field_span("from"),
                    help="a network is acyclic: point one `from:` at an earlier layer",
                )
            )
            for n in component:
                g.nodes[n]["unresolved"] = True

    def expect_outputs(self, doc: Document, spec: Spec, last: Ref) -> None:
        """The references of the spec's `outputs:` (the last layer when it has none)."""
        outputs = spec.outputs
        if outputs is None:
            self.output_refs = {"out": (last, False, None)}
            return
        self.output_refs = {}
        for name, value in outputs.items():
            if value is None:
                continue
            if isinstance(value, OutputSpec):
                ref, train_only = value.from_, value.train_only
                span = doc.span(("outputs", name, "from"))
            else:
                ref, train_only = value, False
                span = doc.span(("outputs", name))
            self.output_refs[name] = (Ref((), ref, span), train_only, span)

    def link_outputs(self) -> None:
        for name, (ref, train_only, span) in self.output_refs.items():
            node_id = self.lookup(ref)
            if node_id is None:
                self.graph.unresolved_outputs.add(name)
                continue
            self.graph.outputs[name] = node_id
            self.graph.output_spans[name] = span
            if train_only:
                self.graph.train_only.add(name)
