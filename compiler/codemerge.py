"""One class for the instances of a block type that differ only in what an `if:` leaves out.

ResNet's Bottleneck has a `downsample` where the stride or the width changes and none
elsewhere; torchvision writes one class whose constructor builds it under that condition.
`plan_merges` finds, for each block type that lowering made several classes of, an instance
with every conditional layer (`Merge.rep`), matches every other instance's layers to its by
the spec layer they were made from (inside sequences too), and checks that each layer some
instances lack has an `if:` whose expression, in each instance's terms, is true exactly where
the layer is there. Codegen then builds those layers under their condition. No torch import.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from .graph import ArchGraph
from .lower import Container, Leaf, is_chain
from .names import safe_identifier
from .symbolic import MAKE_DIVISIBLE, evaluate, text, translate
from .trace import Trace

# what a constructor's parameters must not hide: the file's imports and helpers, and the
# loop variable of a repeat (builtins and `super` are refused by `safe_identifier`)
CONSTRUCTOR_NAMES = frozenset(
    {"torch", "nn", "F", "NamedTuple", "OrderedDict", "math", MAKE_DIVISIBLE, "i", "_"}
)


@dataclass
class Merge:
    """Instances of one block type that differ only in layers an `if:` leaves out, as one
    class: those layers are built under their condition (else None, or left out of an
    nn.Sequential), and forward skips a missing one (its value is its input's, as a disabled
    layer's is)."""

    rep: Container  # the instance with every conditional layer
    optional: dict[int, str]  # id of a layer of `rep` -> its condition
    # member id -> (id of a layer of `rep` -> that member's layer in its place)
    pairs: dict[int, dict[int, Leaf | Container]]


def condition_of(ch: Leaf | Container, graph: ArchGraph) -> Any:
    if isinstance(ch, Leaf):
        return ch.node.layer.fields.get("if") if ch.node.layer is not None else None
    inst = graph.instances.get(".".join(ch.path))
    return inst.args.get("if") if inst is not None else None


def origin_of(ch: Leaf | Container, graph: ArchGraph) -> tuple:
    """Which layer of the spec a child was made from: its span (a block's instances share
    their body's), else its name."""
    if isinstance(ch, Leaf):
        span = ch.node.layer.span if ch.node.layer is not None else None
        return ("leaf", ch.node.op.name, span if span is not None else ch.attr)
    inst = graph.instances.get(".".join(ch.path))
    span = inst.span if inst is not None else None
    return ("module", ch.block, span if span is not None else ch.attr)


def kind_of(ch: Leaf | Container, keys: dict[int, tuple]) -> Any:
    """What must agree for two layers to be one in a class: a module's class (its structure
    key), a leaf's torch class and keywords."""
    if isinstance(ch, Container):
        return None if ch.sequential else keys.get(id(ch))
    if ch.call is None:
        return ch.node.op.name
    return (ch.call.cls, len(ch.call.args), tuple(k for k, _, _ in ch.call.kwargs))


def match_layers(
    r: Container,
    m: Container,
    graph: ArchGraph,
    out: dict[int, Leaf | Container],
    keys: dict[int, tuple],
) -> set[int] | None:
    """`m`'s children matched to `r`'s by the layer they were made from, inside sequences
    too: the ids of `r`'s children `m` lacks, or None if `m` is not `r` less some of them."""
    missing: set[int] = set()
    theirs = m.children
    j = 0
    for mine in r.children:
        if (
            j < len(theirs)
            and type(mine) is type(theirs[j])
            and origin_of(mine, graph) == origin_of(theirs[j], graph)
            and kind_of(mine, keys) == kind_of(theirs[j], keys)
        ):
            other = theirs[j]
            out[id(mine)] = other
            if isinstance(mine, Container) and isinstance(other, Container):
                if mine.sequential != other.sequential:
                    return None
                if mine.sequential:
                    sub = match_layers(mine, other, graph, out, keys)
                    if sub is None:
                        return None
                    missing |= sub
            j += 1
        else:
            missing.add(id(mine))
    return missing if j == len(theirs) else None


def tree_size(c: Container) -> int:
    return sum(
        1 + (tree_size(ch) if isinstance(ch, Container) and ch.sequential else 0)
        for ch in c.children
    )


def walk_tree(c: Container) -> list[Leaf | Container]:
    out: list[Leaf | Container] = []
    for ch in c.children:
        out.append(ch)
        if isinstance(ch, Container) and ch.sequential:
            out += walk_tree(ch)
    return out


def merge(
    groups: list[list[Container]], graph: ArchGraph, tr: Trace, keys: dict[int, tuple]
) -> Merge | None:
    rep = max((g[0] for g in groups), key=tree_size)
    pairs: dict[int, dict[int, Leaf | Container]] = {}
    lacking: dict[int, set[int]] = {}
    optional: set[int] = set()
    for group in groups:
        for m in group:
            found: dict[int, Leaf | Container] = {}
            missing = set() if m is rep else match_layers(rep, m, graph, found, keys)
            if missing is None:
                return None
            pairs[id(m)] = found
            lacking[id(m)] = missing
            optional |= missing
    base = sequential_base([m for g in groups for m in g])
    conditions: dict[int, str] = {}
    for child in walk_tree(rep):
        if id(child) not in optional:
            continue
        top = any(child is ch for ch in rep.children)
        if top and not base and not child.attr.isidentifier():
            return None
        raw = condition_of(child, graph)
        if raw is None:
            return None
        texts: set[str] = set()
        for group in groups:
            for m in group:
                ctx = tr.context(m.path)
                try:
                    node = translate(raw, ctx.names)
                    has = id(child) not in lacking[id(m)]
                    if bool(evaluate(node, ctx.values)) is not has:
                        return None
                except Exception:
                    return None
                texts.add(text(node))
        if len(texts) != 1:
            return None
        conditions[id(child)] = texts.pop()
    return Merge(rep, conditions, pairs)


def sequential_base(members: list[Container]) -> bool:
    """Whether a block's class is an nn.Sequential (torchvision's Conv2dNormActivation): its
    instances are chains of modules numbered 0, 1, 2 ..."""
    return all(
        m.path
        and not m.opened
        and m.children
        and [ch.attr for ch in m.children] == [str(i) for i in range(len(m.children))]
        and is_chain(m)
        for m in members
    )


def dependency_order(groups: dict[tuple, list[Container]]) -> list[list[Container]]:
    """The groups, each after the groups of the classes its members construct (in the order
    they first appear otherwise): a merged class's members may call a class that first
    appears after the first of them."""
    group_of = {id(m): key for key, members in groups.items() for m in members}

    def needs(c: Container) -> list[tuple]:
        out = []
        for child in c.children:
            if isinstance(child, Container):
                out += needs(child) if child.sequential else [group_of[id(child)]]
        return out

    order: list[tuple] = []
    done: set[tuple] = set()
    for key in groups:
        stack = [(key, iter(dict.fromkeys(d for m in groups[key] for d in needs(m))))]
        if key in done:
            continue
        done.add(key)
        while stack:
            current, pending = stack[-1]
            nxt = next((d for d in pending if d not in done), None)
            if nxt is None:
                order.append(current)
                stack.pop()
                continue
            done.add(nxt)
            stack.append((nxt, iter(dict.fromkeys(d for m in groups[nxt] for d in needs(m)))))
    return [groups[key] for key in order]


def plan_merges(
    groups: dict[tuple, list[Container]],
    graph: ArchGraph,
    tr: Trace,
    keys: dict[int, tuple],
    planned: dict[str, Merge],
) -> dict[str, Merge]:
    """The block types (not `planned` already) whose instances make several classes that
    can be one."""
    by_type: dict[str, list[list[Container]]] = defaultdict(list)
    for members in groups.values():
        first = members[0]
        if first.path and tr.is_block(graph.instances.get(".".join(first.path))):
            by_type[first.block].append(members)
    plans = {}
    for block, found in by_type.items():
        if block in planned or len(found) < 2:
            continue
        if names_ok([*graph.block_params.get(block, ()), *(p for p in graph.params)]):
            plan = merge(found, graph, tr, keys)
            if plan is not None:
                plans[block] = plan
    return plans


def names_ok(names: list[str]) -> bool:
    """Whether spec names can be the constructor's parameter names as they are: none hides
    what the constructor uses (`super`, `nn`, a builtin); lint refuses such block
    parameters, and a spec's own parameters named so keep their values as literals."""
    return all(p.isidentifier() and safe_identifier(p, CONSTRUCTOR_NAMES) == p for p in names)
