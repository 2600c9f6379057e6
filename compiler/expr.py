"""Parameter references in spec values: `$name` and `${expression}`.

Expressions are a small, safe subset of Python (numbers, names, arithmetic, comparisons,
`and`/`or`/`not`, `a if c else b`, `min`, `max`, `int`, `round`): enough for
`${planes * 4}` or `${stride != 1}`, and nothing that can reach the interpreter.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any


class ExprError(Exception):
    """A reference or expression that cannot be evaluated; `name` is set for unknown names."""

    def __init__(self, message: str, name: str | None = None) -> None:
        super().__init__(message)
        self.name = name


_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_CMPOPS: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_FUNCS: dict[str, Callable[..., Any]] = {
    "min": min,
    "max": max,
    "int": int,
    "round": round,
    "ceil": math.ceil,
    "floor": math.floor,
}
MAX_MAGNITUDE = 10**15


def is_reference(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("$") and not value.startswith("$$")


Functions = dict[str, Callable[..., Any]]


def evaluate(text: str, lookup: Callable[[str], Any], functions: Functions | None = None) -> Any:
    """Evaluate `$name` or `${expr}`; `lookup(name)` returns a parameter's value or raises.

    `functions` adds callables to the built-in ones (the scale's `w` and `d`)."""
    if text.startswith("${") and text.endswith("}"):
        source = text[2:-1].strip()
    elif text.startswith("$"):
        source = text[1:].strip()
        if not source.isidentifier():
            raise ExprError(f"`{text}` is not a parameter name; write `${{...}}` for expressions")
    else:  # pragma: no cover - callers check is_reference first
        raise ExprError(f"`{text}` is not a reference")
    if not source.isascii():  # Python's parser folds `ﬁlter` into `filter` (NFKC)
        raise ExprError(f"`{text}` is not plain ASCII; parameter names are ASCII identifiers")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError:
        raise ExprError(f"`{text}` is not a valid expression") from None
    return _eval(tree.body, lookup, text, {**_FUNCS, **(functions or {})})


def _check(value: Any, text: str) -> Any:
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and (abs(value) > MAX_MAGNITUDE)
    ):
        raise ExprError(f"`{text}` evaluates to a number too large for a spec ({value:.3g})")
    return value


def _eval(node: ast.AST, lookup: Callable[[str], Any], text: str, funcs: Functions) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float | bool | str):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in ("True", "False"):
            return node.id == "True"
        return lookup(node.id)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left = _eval(node.left, lookup, text, funcs)
        right = _eval(node.right, lookup, text, funcs)
        if isinstance(node.op, ast.Pow) and (not isinstance(right, int) or abs(right) > 64):
            raise ExprError(f"`{text}`: exponent must be an integer of at most 64")
        try:
            return _check(_BINOPS[type(node.op)](left, right), text)
        except ZeroDivisionError:
            raise ExprError(f"`{text}` divides by zero") from None
        except TypeError:
            raise ExprError(f"`{text}` mixes values that cannot be combined") from None
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, lookup, text, funcs)
        if isinstance(node.op, ast.Not):
            return not value
        if isinstance(node.op, ast.USub | ast.UAdd) and isinstance(value, int | float):
            return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BoolOp):
        values = [_eval(v, lookup, text, funcs) for v in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.Compare) and all(type(op) in _CMPOPS for op in node.ops):
        left = _eval(node.left, lookup, text, funcs)
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = _eval(comp, lookup, text, funcs)
            try:
                if not _CMPOPS[type(op)](left, right):
                    return False
            except TypeError:
                raise ExprError(f"`{text}` compares values that cannot be compared") from None
            left = right
        return True
    if isinstance(node, ast.Subscript):  # `layers[1]`: an item of a list parameter
        seq = _eval(node.value, lookup, text, funcs)
        index = _eval(node.slice, lookup, text, funcs)
        if not isinstance(seq, list | tuple) or not isinstance(index, int):
            raise ExprError(f"`{text}`: only a list can be indexed, by a whole number")
        if not -len(seq) <= index < len(seq):
            raise ExprError(f"`{text}`: index {index} is outside the list of {len(seq)}")
        return seq[index]
    if isinstance(node, ast.IfExp):
        test = _eval(node.test, lookup, text, funcs)
        return _eval(node.body if test else node.orelse, lookup, text, funcs)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in funcs
        and not node.keywords
    ):
        args = [_eval(a, lookup, text, funcs) for a in node.args]
        try:
            return _check(funcs[node.func.id](*args), text)
        except (TypeError, ValueError):
            raise ExprError(f"`{text}`: bad arguments to `{node.func.id}`") from None
    raise ExprError(f"`{text}` uses something a spec expression does not allow")


def substitute(value: Any, lookup: Callable[[str], Any], functions: Functions | None = None) -> Any:
    """Replace references anywhere inside `value` (lists and mappings included)."""
    if value is None or type(value) in _PLAIN:  # the common case: nothing to do
        return value
    if is_reference(value):
        return evaluate(value, lookup, functions)
    if isinstance(value, str) and value.startswith("$$"):
        return value[1:]
    if isinstance(value, list):
        return [substitute(v, lookup, functions) for v in value]
    if isinstance(value, Mapping):
        return {k: substitute(v, lookup, functions) for k, v in value.items()}
    return value


_PLAIN = frozenset({int, float, bool})
