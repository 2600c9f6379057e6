"""Values that remember the spec expression they came from, for generated code.

A block's layers say `out: ${planes * 4}`; resolve evaluates that to 256 for one instance and
to 512 for another. Generated code should say `planes * 4`, as the spec does, so codegen gives
each field written as `$name` or `${...}` a `SymInt` (or `SymFloat`): a number equal to its
value that carries the expression's syntax tree, with the spec's names replaced by the
constructor parameters of the generated class. Arithmetic on such numbers builds the tree on
(a conv's input channels are the channels of the layer before it: `planes * 4`), so the
op's own `torch_module` and shape rule, run on them, say which constructor argument comes
from which expression. Every expression is checked by evaluating it as Python with the
instance's values: one that does not give the value resolve computed is not used, and the
value is written as a literal. No torch import here.
"""

from __future__ import annotations

import ast
import copy
import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

from .expr import _make_divisible, _parse, is_reference

# the spec's functions that Python has under the same name, and those generated code imports
# or defines (`make_divisible` is torchvision's `_make_divisible`)
_BUILTIN_FUNCS = frozenset({"min", "max", "int", "round"})
_MATH_FUNCS = frozenset({"ceil", "floor"})
MAKE_DIVISIBLE = "_make_divisible"


class Untranslatable(Exception):
    """An expression generated code cannot write (a scale's `w()`, a repeat's `i`)."""


class SymInt(int):
    """An int that knows the expression it is (`planes * 4`)."""

    node: ast.expr

    def __new__(cls, value: int, node: ast.expr) -> SymInt:
        obj = int.__new__(cls, value)
        obj.node = node
        return obj

    def __repr__(self) -> str:
        return f"SymInt({int(self)}, {text(self.node)!r})"


class SymFloat(float):
    """A float that knows the expression it is."""

    node: ast.expr

    def __new__(cls, value: float, node: ast.expr) -> SymFloat:
        obj = float.__new__(cls, value)
        obj.node = node
        return obj

    def __repr__(self) -> str:
        return f"SymFloat({float(self)}, {text(self.node)!r})"


def node_of(value: Any) -> ast.expr | None:
    """The expression of a symbolic number, a constant for a plain one, else None."""
    if isinstance(value, SymInt | SymFloat):
        return value.node
    if type(value) in (int, float):
        return ast.Constant(value)
    return None


def plain(value: Any) -> Any:
    if isinstance(value, SymInt):
        return int(value)
    if isinstance(value, SymFloat):
        return float(value)
    return value


def make(value: Any, node: ast.expr) -> Any:
    """`value` carrying `node`, if it is a number (a bool cannot be subclassed: it stays)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return SymInt(value, node)
    if isinstance(value, float):
        return SymFloat(value, node)
    return value


def _zero(n: ast.expr) -> bool:
    return isinstance(n, ast.Constant) and n.value == 0 and not isinstance(n.value, bool)


def _one(n: ast.expr) -> bool:
    return isinstance(n, ast.Constant) and n.value == 1 and not isinstance(n.value, bool)


def _binop(op: ast.operator, left: ast.expr, right: ast.expr) -> ast.expr:
    """`left op right`, without the identities a person would not write (`x * 1`, `0 + x`)."""
    if isinstance(op, ast.Add):
        if _zero(left):
            return right
        if _zero(right):
            return left
    if isinstance(op, ast.Sub) and _zero(right):
        return left
    if isinstance(op, ast.Mult):
        if _one(left):
            return right
        if _one(right):
            return left
    if isinstance(op, ast.FloorDiv | ast.Div) and _one(right):
        return left
    return ast.BinOp(left, op, right)


def _arith(op: type[ast.operator], fn: Callable[[Any, Any], Any], reflected: bool = False) -> Any:
    def method(self: Any, other: Any) -> Any:
        mine, theirs = plain(self), plain(other)
        value = fn(theirs, mine) if reflected else fn(mine, theirs)
        if value is NotImplemented:
            return value
        other_node = node_of(other)
        if other_node is None:
            return value
        left, right = (other_node, self.node) if reflected else (self.node, other_node)
        return make(value, _binop(op(), left, right))

    return method


def _neg(self: Any) -> Any:
    return make(-plain(self), ast.UnaryOp(ast.USub(), self.node))


for _cls, _base in ((SymInt, int), (SymFloat, float)):
    for _name, _op, _fn in (
        ("add", ast.Add, lambda a, b: a + b),
        ("sub", ast.Sub, lambda a, b: a - b),
        ("mul", ast.Mult, lambda a, b: a * b),
        ("floordiv", ast.FloorDiv, lambda a, b: a // b),
        ("truediv", ast.Div, lambda a, b: a / b),
        ("mod", ast.Mod, lambda a, b: a % b),
    ):
        setattr(_cls, f"__{_name}__", _arith(_op, _fn))
        setattr(_cls, f"__r{_name}__", _arith(_op, _fn, reflected=True))
    _cls.__neg__ = _neg  # type: ignore[attr-defined]


def text(node: ast.expr) -> str:
    return ast.unparse(node)


def _source(raw: str) -> str:
    return raw[2:-1].strip() if raw.startswith("${") and raw.endswith("}") else raw[1:].strip()


class _Rename(ast.NodeTransformer):
    def __init__(self, names: Mapping[str, ast.expr]) -> None:
        self.names = names

    def visit_Name(self, node: ast.Name) -> ast.expr:
        if node.id in ("True", "False"):
            return ast.Constant(node.id == "True")
        if node.id not in self.names:
            raise Untranslatable(node.id)
        return copy.deepcopy(self.names[node.id])

    def visit_Call(self, node: ast.Call) -> ast.expr:
        if not isinstance(node.func, ast.Name) or node.keywords:
            raise Untranslatable("call")
        name = node.func.id
        args = [self.visit(a) for a in node.args]
        if name in _BUILTIN_FUNCS:
            func: ast.expr = ast.Name(name, ast.Load())
        elif name in _MATH_FUNCS:
            func = ast.Attribute(ast.Name("math", ast.Load()), name, ast.Load())
        elif name == "make_divisible":
            func = ast.Name(MAKE_DIVISIBLE, ast.Load())
        else:  # a scale's `w` and `d`
            raise Untranslatable(name)
        if (
            name == "int"
            and len(args) == 1
            and isinstance(args[0], ast.Call)
            and isinstance(args[0].func, ast.Name)
            and args[0].func.id == "round"
            and len(args[0].args) == 1
        ):
            return args[0]  # `round(x)` is an int already (ruff's RUF046)
        return ast.Call(func, args, [])


def translate(raw: Any, names: Mapping[str, ast.expr]) -> ast.expr:
    """The expression of a field as written (`$planes`, `${planes * 4}`), over `names` (a
    spec name -> what generated code writes for it). Raises `Untranslatable`."""
    if not is_reference(raw):
        raise Untranslatable("not a reference")
    source = _source(raw)
    if source.isidentifier():
        if source not in names:
            raise Untranslatable(source)
        return names[source]  # trees are never changed once made: shared
    tree = _parse(source)
    if isinstance(tree, str):
        raise Untranslatable(tree)
    read = sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name)})
    key = (source, tuple((n, ast.dump(names[n]) if n in names else None) for n in read))
    node = _TRANSLATED.get(key)
    if node is None:
        try:
            node = _Rename(names).visit(copy.deepcopy(tree))
        except Untranslatable as exc:
            node = exc
        if len(_TRANSLATED) > 10_000:  # bounded, in a long-running process
            _TRANSLATED.clear()
        _TRANSLATED[key] = node
    if isinstance(node, Untranslatable):
        raise node
    return node


# translations made, by source and what its names stand for (a block's instances translate
# the same fields again and again)
_TRANSLATED: dict[tuple, ast.expr | Untranslatable] = {}

_EVAL_GLOBALS: dict[str, Any] = {
    "__builtins__": {"min": min, "max": max, "int": int, "round": round},
    "math": math,
    MAKE_DIVISIBLE: _make_divisible,
}


@functools.lru_cache(maxsize=4096)
def _compiled(source: str) -> Any:
    return compile(source, "<sym>", "eval")


def evaluate(node: ast.expr, values: Mapping[str, Any]) -> Any:
    """The value of `node` in Python, with the generated code's names bound to `values`."""
    return eval(_compiled(text(node)), dict(_EVAL_GLOBALS), dict(values))


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types, through lists and tuples (`64` is not `64.0`)."""
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(plain(a)) is type(plain(b)) and a == b


def checked(node: ast.expr, values: Mapping[str, Any], concrete: Any) -> bool:
    """Whether `node` evaluates to `concrete` as Python, with `values`."""
    try:
        return same(evaluate(node, values), concrete)
    except Exception:
        return False


def symbolic(
    raw: Any,
    concrete: Any,
    names: Mapping[str, ast.expr],
    values: Mapping[str, Any],
) -> Any:
    """`concrete` (a field's validated value) carrying the expression `raw` was written as,
    where it is one that checks out; lists and tuples element by element, and a scalar
    expression broadcast to a tuple (`kernel: $k` validated to `(3, 3)`)."""
    if isinstance(raw, list) and isinstance(concrete, list | tuple) and len(raw) == len(concrete):
        items = [symbolic(r, c, names, values) for r, c in zip(raw, concrete, strict=True)]
        return type(concrete)(items)
    if not is_reference(raw):
        return concrete
    try:
        node = translate(raw, names)
    except Untranslatable:
        return concrete
    try:
        value = evaluate(node, values)
    except Exception:
        return concrete
    if isinstance(concrete, tuple) and not isinstance(value, list | tuple):
        if all(same(value, c) for c in concrete):
            return tuple(make(c, node) for c in concrete)
        return concrete
    if isinstance(concrete, list | tuple) and isinstance(value, list | tuple):
        if same(value, concrete):
            return type(concrete)(
                make(c, ast.Subscript(copy.deepcopy(node), ast.Constant(k), ast.Load()))
                for k, c in enumerate(concrete)
            )
        return concrete
    if not same(value, concrete):
        return concrete
    return make(concrete, node)


def substitute(node: ast.expr, names: Mapping[str, ast.expr]) -> ast.expr | None:
    """`node` with its names replaced (a block's output channels `planes * 4`, seen from the
    class that calls it: `128 * 4`); None if a name has no replacement."""
    try:
        return _Rename(names).visit(copy.deepcopy(node))
    except Untranslatable:
        return None


def names_of(node: ast.expr) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def fold(node: ast.expr) -> ast.expr:
    """Constant arithmetic folded (`128 * 4` -> `512`), as a call site writes a value."""
    if isinstance(node, ast.BinOp):
        left, right = fold(node.left), fold(node.right)
        if isinstance(left, ast.Constant) and isinstance(right, ast.Constant):
            try:
                value = evaluate(ast.BinOp(left, node.op, right), {})
            except Exception:
                return ast.BinOp(left, node.op, right)
            if type(value) in (int, float):
                return ast.Constant(value)
        return _binop(node.op, left, right)
    return node
