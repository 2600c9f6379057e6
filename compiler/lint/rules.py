"""Graph-level lint rules: small functions `(graph) -> list[Diagnostic]`, run in order.

Rules about a single layer's shapes (channel mismatches, collapse, stride remainders, pooling
padding, unflattened classifiers) live with the op that owns the arithmetic, in
`compiler/ops/`; the rules here need the whole graph.
"""

from __future__ import annotations

from collections.abc import Callable

from ..diagnostics import Diagnostic, warning
from ..graph import ArchGraph
from ..sizes import PARAM_BYTES, fmt_bytes, tensor_bytes

# What `compiler.build` allocates without being asked for more (`max_params=`,
# `max_activation_bytes=`): sized for a workstation. Lint warns past them.
MAX_PARAMS = 2_000_000_000  # 8 GB of float32 weights
MAX_ACTIVATION_BYTES = 8 * 2**30  # the outputs of one sample's forward pass, float32

Rule = Callable[[ArchGraph], list[Diagnostic]]


def unreachable_node(graph: ArchGraph) -> list[Diagnostic]:
    """A layer whose result reaches no output is computed (and trained) for nothing."""
    if not graph.complete:
        return []  # a broken layer or reference is reported already; do not cascade
    g = graph.graph
    live = graph.upstream(graph.outputs.values())
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


def budget_problems(
    graph: ArchGraph, max_params: int = MAX_PARAMS, max_activation_bytes: int = MAX_ACTIVATION_BYTES
) -> list[str]:
    """What in `graph` is over the parameter or activation-memory budget, in words."""
    nodes = graph.nodes()
    params = sum(node.params for node in nodes)
    activations = sum(tensor_bytes(node.shape) for node in nodes)
    out = []
    if params > max_params:
        size = fmt_bytes(params * PARAM_BYTES)
        out.append(f"{params:,} parameters ({size}) exceed the {max_params:,} allowed")
    if activations > max_activation_bytes:
        out.append(
            f"the layer outputs of one sample take {fmt_bytes(activations)}, over the "
            f"{fmt_bytes(max_activation_bytes)} allowed"
        )
    return out


def over_budget(graph: ArchGraph) -> list[Diagnostic]:
    """A model `compiler.build` would refuse to allocate with its default budget."""
    problems = budget_problems(graph)
    if not problems:
        return []
    worst = max(graph.nodes(), key=lambda n: n.params)
    return [
        warning(
            "over-budget",
            "; ".join(problems),
            worst.span if worst.params else None,
            notes=(f"`{graph.display(worst.id)}` alone has {worst.params:,} parameters",)
            if worst.params
            else (),
            help="compiler.build refuses this model unless given a larger budget "
            "(max_params=..., max_activation_bytes=...)",
        )
    ]


RULES: tuple[Rule, ...] = (unreachable_node, over_budget)


def run_rules(graph: ArchGraph) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for rule in RULES:
        out += rule(graph)
    return out
