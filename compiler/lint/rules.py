"""Graph-level lint rules: small functions `(graph) -> list[Diagnostic]`, run in order.

Rules about a single layer's shapes (channel mismatches, collapse, stride remainders, pooling
padding, unflattened classifiers) live with the op that owns the arithmetic, in
`compiler/ops/`; the rules here need the whole graph.
"""

from __future__ import annotations

from collections.abc import Callable

import networkx as nx

from ..diagnostics import Diagnostic, warning
from ..graph import ArchGraph

Rule = Callable[[ArchGraph], list[Diagnostic]]


def unreachable_node(graph: ArchGraph) -> list[Diagnostic]:
    """A layer whose result reaches no output is computed (and trained) for nothing."""
    if not graph.complete:
        return []  # a broken layer or reference is reported already; do not cascade
    g = graph.graph
    live: set[str] = set()
    for node_id in graph.outputs.values():
        live.add(node_id)
        live |= nx.ancestors(g, node_id)
    dead = [n for n in graph.order if n not in live and n != ArchGraph.INPUT]
    dead_set = set(dead)
    out = []
    reported: set[str] = set()
    for n in dead:
        # report the ends of dead chains only: `aux1`, not each of its eight layers
        if any(s in dead_set for s in g.successors(n)):
            continue
        name = graph.display(n)
        if name in reported:
            continue
        reported.add(name)
        node = graph.node(n)
        inst = graph.instances.get(name)
        out.append(
            warning(
                "unreachable-node",
                f"`{name}` is computed but reaches no output",
                inst.span if inst else node.span,
                help="list it under `outputs:`, feed it into a later layer, or remove it",
            )
        )
    return out


RULES: tuple[Rule, ...] = (unreachable_node,)


def run_rules(graph: ArchGraph) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for rule in RULES:
        out += rule(graph)
    return out
