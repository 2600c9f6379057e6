"""`compiler.digraph.DiGraph` against networkx, its oracle, on random graphs."""

from __future__ import annotations

import networkx as nx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from compiler.digraph import CycleError, DiGraph

edges_st = st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11)), max_size=40)
nodes_st = st.lists(st.integers(0, 14), max_size=15)


def both(nodes: list[int], edges: list[tuple[int, int]]) -> tuple[DiGraph, nx.DiGraph]:
    ours, theirs = DiGraph(), nx.DiGraph()
    for n in nodes:
        ours.add_node(n, label=f"n{n}")
        theirs.add_node(n, label=f"n{n}")
    for u, v in edges:
        ours.add_edge(u, v)
        theirs.add_edge(u, v)
    return ours, theirs


def same(ours: DiGraph, theirs: nx.DiGraph, ordered: bool = True) -> None:
    """Same nodes, attributes and edges; with `ordered`, neighbours in the same order too."""
    arrange = list if ordered else set
    assert list(ours) == list(theirs)
    assert ours.nodes == dict(theirs.nodes(data=True))
    assert sorted(ours.edges) == sorted(theirs.edges)
    for n in ours:
        assert arrange(ours.successors(n)) == arrange(theirs.successors(n))
        assert arrange(ours.predecessors(n)) == arrange(theirs.predecessors(n))
        assert ours.out_degree(n) == theirs.out_degree(n)


@given(nodes_st, edges_st)
def test_structure_and_ancestors_match_networkx(nodes, edges):
    ours, theirs = both(nodes, edges)
    same(ours, theirs)
    same(ours, ours.to_networkx(), ordered=False)  # one edge list cannot keep both orders
    for n in ours:
        assert ours.ancestors(n) == nx.ancestors(theirs, n)
        assert ours.has_node(n) and n in ours
    assert len(ours) == len(theirs)


@given(nodes_st, edges_st, st.data())
def test_removal_and_renaming_match_networkx(nodes, edges, data):
    ours, theirs = both(nodes, edges)
    if len(ours) == 0:
        return
    victim = data.draw(st.sampled_from(list(ours)))
    ours.remove_node(victim)
    theirs.remove_node(victim)
    same(ours, theirs)
    if edges and edges[0][0] in ours and edges[0][1] in ours:
        ours.remove_edge(*edges[0])
        theirs.remove_edge(*edges[0])
        same(ours, theirs)
    if len(ours):
        old = data.draw(st.sampled_from(list(ours)))
        ours.rename_node(old, "renamed")
        nx.relabel_nodes(theirs, {old: "renamed"}, copy=False)
        assert set(ours) == set(theirs)
        assert sorted(map(str, ours.edges)) == sorted(map(str, theirs.edges))
        assert ours.nodes["renamed"] == theirs.nodes["renamed"]


@given(nodes_st, edges_st, st.permutations(range(15)))
def test_topological_order_matches_networkx(nodes, edges, priority):
    ours, theirs = both(nodes, edges)

    def key(n: int) -> int:
        return priority[n]

    if nx.is_directed_acyclic_graph(theirs):
        expected = list(nx.lexicographical_topological_sort(theirs, key=key))
        assert ours.topological_order(key) == expected
    else:
        with pytest.raises(CycleError):
            ours.topological_order(key)
    # restricted to the nodes on no cycle, the order always exists
    on_cycle = {n for c in nx.strongly_connected_components(theirs) if len(c) > 1 for n in c}
    on_cycle |= {n for n in theirs if theirs.has_edge(n, n)}
    rest = [n for n in theirs if n not in on_cycle]
    expected = list(nx.lexicographical_topological_sort(theirs.subgraph(rest), key=key))
    assert ours.topological_order(key, rest) == expected


def test_renaming_onto_an_existing_node_is_refused():
    g = DiGraph()
    g.add_edge("a", "b")
    with pytest.raises(ValueError, match="exists"):
        g.rename_node("a", "b")
