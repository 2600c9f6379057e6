"""Repeats as loops in generated code.

A repeat whose count is a spec expression (`repeat: ${layers[0]}`) is written as torchvision
writes its stages: `nn.Sequential(first, *[Bottleneck(256, 64) for _ in range(1, layers[0])])`,
when the copies after the first construct alike, or differ only in integer sums linear in
their index (DenseNet's input widths, `num_init_features + i * growth_rate`). A repeat written
out copy by copy has each copy's index `i` replaced by its value. No torch import here.
"""

from __future__ import annotations

import ast
import copy

from .lower import Container
from .symbolic import fold, names_of, text
from .trace import Trace


def sequential(c: Container, built: list[tuple[str, str, str]], tr: Trace | None) -> str:
    """An nn.Sequential of `built`: numbered, or named through an OrderedDict (as torchvision's
    DenseNet); a repeat whose count is a parameter, and whose copies after the first are
    written alike, as a loop (over the copy index `i` where the copies read it)."""
    items = [e for _, e, _ in built]
    names = [a for a, _, _ in built]
    numbered = names == [str(i) for i in range(len(names))]
    count = tr.repeats.get(c.path) if tr is not None else None
    key = None if numbered or tr is None else tr.copy_names.get(c.path)
    looped = None
    if count is not None and len(items) >= 2 and (numbered or key is not None):
        looped = loop_item(items, 0) or loop_item(items, 1)
    if looped is not None:
        start, item = looped
        items = [bind_index(items[0], 0), item] if start else [item, item]
        reads = identifiers(items[1]) | (identifiers(key) if key else set())
        var = "i" if "i" in reads else "_"
        span = f"range({text(count)})" if start == 0 else f"range(1, {text(count)})"
        if numbered:
            first = "" if start == 0 else f"{items[0]}, "
            return f"nn.Sequential({first}*[{items[1]} for {var} in {span}])"
        first = "" if start == 0 else f"({names[0]!r}, {items[0]}), "
        return f"nn.Sequential(OrderedDict([{first}*[({key}, {items[1]}) for {var} in {span}]]))"
    # each copy of a repeat written out: the copy index it reads is its own
    group = tr.graph.instances.get(".".join(c.path)) if tr is not None else None
    if group is not None and group.repeat:
        items = [bind_index(e, k) for k, e in enumerate(items)]
    # the trailing comma keeps one module a line, as nn.Sequential is written
    if numbered:
        return "nn.Sequential(" + "".join(f"{e}, " for e in items).rstrip() + ")"
    pairs = "".join(f"({n!r}, {e}), " for n, e in zip(names, items, strict=True))
    return f"nn.Sequential(OrderedDict([{pairs.rstrip()}]))"


def loop_item(items: list[str], start: int) -> tuple[int, str] | None:
    """One constructor for the copies from `start` on, over their index `i`: the copies
    written alike, or differing only in sums linear in their index (DenseNet's
    `num_init_features + i * growth_rate` input channels, which tracing wrote as
    `num_init_features + growth_rate + growth_rate`)."""
    rest = items[start:]
    if not rest:
        return None
    if len(set(rest)) == 1:
        return start, rest[0]
    try:
        trees = [ast.parse(item, mode="eval").body for item in rest]
    except SyntaxError:
        return None
    merged = linear_merge(trees, start)
    return (start, ast.unparse(merged)) if merged is not None else None


def linear_merge(trees: list[ast.AST], start: int) -> ast.AST | None:
    """The tree that is `trees[k]` at `i = start + k`, where they differ only in integer
    sums linear in the index; None if they differ otherwise."""
    texts = [ast.unparse(t) for t in trees]
    if len(set(texts)) == 1:
        return trees[0]
    sums = (ast.BinOp, ast.Constant, ast.Name, ast.Subscript)
    if all(isinstance(t, sums) for t in trees):
        forms = [linear_form(t) for t in trees]
        if all(f is not None for f in forms):
            found = index_expr(forms, start)  # type: ignore[arg-type]
            if found is not None:
                return found
    first = trees[0]
    if any(type(t) is not type(first) for t in trees):
        return None
    out = copy.copy(first)
    for name, value in ast.iter_fields(first):
        values = [getattr(t, name) for t in trees]
        if isinstance(value, list):
            if any(len(v) != len(value) for v in values):
                return None
            merged_list = []
            for k in range(len(value)):
                column = [v[k] for v in values]
                if isinstance(value[k], ast.AST):
                    m = linear_merge(column, start)
                    if m is None:
                        return None
                    merged_list.append(m)
                elif any(c != value[k] for c in column):
                    return None
                else:
                    merged_list.append(value[k])
            setattr(out, name, merged_list)
        elif isinstance(value, ast.AST):
            m = linear_merge(values, start)
            if m is None:
                return None
            setattr(out, name, m)
        elif any(v != value for v in values):
            return None
    return out


def linear_form(node: ast.AST) -> tuple[int, dict[str, int]] | None:
    """An integer sum as (constant, {term: coefficient}); None if it is none."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value, {}
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub):
        left, right = linear_form(node.left), linear_form(node.right)
        if left is None or right is None:
            return None
        sign = 1 if isinstance(node.op, ast.Add) else -1
        terms = dict(left[1])
        for term, k in right[1].items():
            terms[term] = terms.get(term, 0) + sign * k
        return left[0] + sign * right[0], terms
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        for a, b in ((node.left, node.right), (node.right, node.left)):
            if isinstance(a, ast.Constant) and type(a.value) is int:
                inner = linear_form(b)
                if inner is not None:
                    return inner[0] * a.value, {t: k * a.value for t, k in inner[1].items()}
    if isinstance(node, ast.Name | ast.Subscript | ast.Call | ast.BinOp):
        return 0, {ast.unparse(node): 1}
    return None


def index_expr(forms: list[tuple[int, dict[str, int]]], start: int) -> ast.expr | None:
    """`sum((a + b * i) * term) + (c + d * i)` from the sums of copies `start`, `start + 1`
    ...: each coefficient must be linear in the index."""

    def line(values: list[int]) -> tuple[int, int] | None:
        if len(values) == 1:
            return None
        step = values[1] - values[0]
        base = values[0] - step * start
        if any(v != base + step * (start + k) for k, v in enumerate(values)):
            return None
        return base, step

    terms = list(dict.fromkeys(t for _, f in forms for t in f))
    parts: list[str] = []
    for term in terms:
        found = line([f.get(term, 0) for _, f in forms])
        if found is None:
            return None
        base, step = found
        coefficient = " + ".join(
            p for p in (str(base) if base else "", times_text(step, "i") if step else "") if p
        )
        if not coefficient:
            continue
        if coefficient == "1":
            parts.append(term)
        elif base and step:
            parts.append(f"({coefficient}) * {term}")
        else:
            parts.append(f"{coefficient} * {term}")
    constant = line([c for c, _ in forms])
    if constant is None:
        return None
    base, step = constant
    if step:
        parts.append(times_text(step, "i"))
    if base:
        parts.append(str(base))
    source = " + ".join(parts) or "0"
    return ast.parse(source.replace("+ -", "- "), mode="eval").body


def times_text(k: int, name: str) -> str:
    return name if k == 1 else f"{k} * {name}"


class IndexBinder(ast.NodeTransformer):
    def __init__(self, k: int) -> None:
        self.k = k

    def visit_Name(self, node: ast.Name) -> ast.expr:
        return ast.Constant(self.k) if node.id == "i" else node

    def visit_ListComp(self, node: ast.ListComp) -> ast.expr:
        return node  # a loop of its own binds its own `i`


def bind_index(source: str, k: int) -> str:
    """A copy's constructor with the copy index `i` it reads replaced by its value."""
    if "i" not in identifiers(source):
        return source
    tree = IndexBinder(k).visit(ast.parse(source, mode="eval"))
    return ast.unparse(fold_all(tree.body))


def fold_all(node: ast.expr) -> ast.expr:
    """`fold` applied to every arithmetic subexpression."""

    class Fold(ast.NodeTransformer):
        def visit_BinOp(self, n: ast.BinOp) -> ast.expr:
            self.generic_visit(n)
            return fold(n)

    return Fold().visit(node)


def identifiers(source: str) -> set[str]:
    try:
        return names_of(ast.parse(source, mode="eval").body)
    except SyntaxError:
        return set()
