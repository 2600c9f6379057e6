"""The directed graph the resolved network lives in: the part of networkx's `DiGraph` that yarch
uses, on plain dicts.

Why not networkx itself on the lint path: `import networkx` takes about 110 ms (285 modules)
on the reference machine, two thirds of the whole-process budget of `yarch lint` (issue 7: ten
times faster than importing torch and building the model by hand). Lint needs a handful of
operations: add and remove nodes and edges, successors and predecessors, ancestors, and a
topological order with the spec's order breaking ties. They are here with networkx's names and
meaning (insertion-ordered, so iteration is deterministic); `to_networkx()` gives a real
`networkx.DiGraph` for everything else, and the rare error path that reports cycles uses it.
`tests/test_digraph.py` checks these functions against networkx on random graphs.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import networkx as nx


class CycleError(ValueError):
    """The graph has a cycle, so it has no topological order."""


class DiGraph:
    """Nodes with attribute dicts, and directed edges without attributes."""

    def __init__(self) -> None:
        self._node: dict[Hashable, dict[str, Any]] = {}
        self._succ: dict[Hashable, dict[Hashable, None]] = {}
        self._pred: dict[Hashable, dict[Hashable, None]] = {}

    # -- nodes ---------------------------------------------------------------------------------
    @property
    def nodes(self) -> dict[Hashable, dict[str, Any]]:
        """Node id -> its attributes (`g.nodes[n]["node"]`), in insertion order."""
        return self._node

    def add_node(self, n: Hashable, **attr: Any) -> None:
        if n not in self._node:
            self._node[n] = {}
            self._succ[n] = {}
            self._pred[n] = {}
        self._node[n].update(attr)

    def remove_node(self, n: Hashable) -> None:
        for s in self._succ.pop(n):
            del self._pred[s][n]
        for p in self._pred.pop(n):
            del self._succ[p][n]
        del self._node[n]

    def rename_node(self, old: Hashable, new: Hashable) -> None:
        """Give node `old` the id `new`, keeping its attributes and edges."""
        if new in self._node:
            raise ValueError(f"node {new!r} exists")
        succ, pred = list(self._succ[old]), list(self._pred[old])
        attr = self._node[old]
        self.remove_node(old)
        self.add_node(new, **attr)
        for s in succ:
            self.add_edge(new, new if s == old else s)
        for p in pred:
            if p != old:
                self.add_edge(p, new)

    def has_node(self, n: Hashable) -> bool:
        return n in self._node

    def __contains__(self, n: object) -> bool:
        return n in self._node

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._node)

    def __len__(self) -> int:
        return len(self._node)

    # -- edges ---------------------------------------------------------------------------------
    def add_edge(self, u: Hashable, v: Hashable) -> None:
        """An edge u -> v; like networkx, adds either end that is not a node yet."""
        for n in (u, v):
            if n not in self._node:
                self.add_node(n)
        self._succ[u][v] = None
        self._pred[v][u] = None

    def remove_edge(self, u: Hashable, v: Hashable) -> None:
        del self._succ[u][v]
        del self._pred[v][u]

    def has_edge(self, u: Hashable, v: Hashable) -> bool:
        return u in self._succ and v in self._succ[u]

    @property
    def edges(self) -> list[tuple[Hashable, Hashable]]:
        return [(u, v) for u, vs in self._succ.items() for v in vs]

    def successors(self, n: Hashable) -> Iterator[Hashable]:
        return iter(self._succ[n])

    def predecessors(self, n: Hashable) -> Iterator[Hashable]:
        return iter(self._pred[n])

    def out_degree(self, n: Hashable) -> int:
        return len(self._succ[n])

    # -- algorithms ----------------------------------------------------------------------------
    def ancestors(self, n: Hashable) -> set[Hashable]:
        """Every node with a path to `n`, `n` excluded (`networkx.ancestors`)."""
        seen: set[Hashable] = set()
        stack = list(self._pred[n])
        while stack:
            p = stack.pop()
            if p not in seen:
                seen.add(p)
                stack.extend(self._pred[p])
        seen.discard(n)  # on a cycle through n
        return seen

    def topological_order(
        self, key: Callable[[Any], Any], only: Iterable[Hashable] | None = None
    ) -> list[Hashable]:
        """Nodes in an order where every edge points forward, the smallest `key` first among the
        nodes that are ready (`networkx.lexicographical_topological_sort`). `only` restricts it
        to the subgraph those nodes induce. Raises `CycleError` on a cycle."""
        if only is None:
            indegree = {n: len(preds) for n, preds in self._pred.items()}
        else:
            members = set(only)
            indegree = {
                n: sum(p in members for p in preds)
                for n, preds in self._pred.items()
                if n in members
            }
        ready = [(key(n), i, n) for i, (n, d) in enumerate(indegree.items()) if d == 0]
        heapq.heapify(ready)
        order: list[Hashable] = []
        tie = len(indegree)
        while ready:
            _, _, n = heapq.heappop(ready)
            order.append(n)
            for s in self._succ[n]:
                if s in indegree:
                    indegree[s] -= 1
                    if indegree[s] == 0:
                        tie += 1
                        heapq.heappush(ready, (key(s), tie, s))
        if len(order) != len(indegree):
            raise CycleError("the graph has a cycle")
        return order

    def copy(self) -> DiGraph:
        """The same nodes and edges; each node's attribute dict is a new dict with the same
        values."""
        new = DiGraph()
        new._node = {n: dict(attrs) for n, attrs in self._node.items()}
        new._succ = {n: dict(s) for n, s in self._succ.items()}
        new._pred = {n: dict(p) for n, p in self._pred.items()}
        return new

    def to_networkx(self) -> nx.DiGraph:
        """A `networkx.DiGraph` with the same nodes, attributes and edges."""
        import networkx as nx

        g = nx.DiGraph()
        for n, attr in self._node.items():
            g.add_node(n)
            g.nodes[n].update(attr)
        g.add_edges_from(self.edges)
        return g
