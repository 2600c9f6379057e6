"""Parameter references in spec values: `$name` and `${expression}`.

Expressions are a small, safe subset of Python (numbers, names, arithmetic, comparisons,
`and`/`or`/`not`, `a if c else b`, `min`, `max`, `int`, `round`): enough for
`${planes * 4}` or `${stride != 1}`, and nothing that can reach the interpreter.

Evaluation is bounded in time and memory whatever the spec says: the expression's length and
nesting are limited before it is evaluated, and every value it uses or builds (numbers, texts,
lists) is limited in size, a text or list before it is built (`'a' * 10**9` is refused without
allocating anything) and a number before any operation whose cost grows with it (`**`, `round`).
"""

from __future__ import annotations

import ast
import functools
import keyword
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

from .names import shown as shown_name


class ExprError(Exception):
    """A reference or expression that cannot be evaluated; `name` is set for unknown names."""

    def __init__(self, message: str, name: str | None = None) -> None:
        super().__init__(message)
        self.name = name


class _Refused(ValueError):
    """An argument a function would take too long on; the message says which."""


MAX_MAGNITUDE = 10**15  # the largest number an expression may use or produce
MAX_TEXT = 4_096  # characters in a text an expression uses or builds
MAX_ITEMS = 10_000  # items in a list an expression uses or builds
MAX_SOURCE = 1_000  # characters between `${` and `}`
MAX_DEPTH = 100  # levels of the expression's syntax tree (`planes * 4` is 3)
MAX_NDIGITS = 30  # `round(x, n)`: Python builds 10**abs(n), so `n` is bounded
MAX_EXPONENT = 64
_SHOWN = 60  # characters of a longer expression quoted in a message


def _round(number: Any, ndigits: Any = None) -> Any:
    if isinstance(ndigits, int) and abs(ndigits) > MAX_NDIGITS:
        raise _Refused(f"`round` takes at most {MAX_NDIGITS} digits, got {ndigits}")
    return round(number, ndigits)


def _make_divisible(value: Any, divisor: Any = 8, min_value: Any = None) -> int:
    """torchvision's `_make_divisible` (from TensorFlow's MobileNet): `value` to the nearest
    multiple of `divisor`, at least `min_value` (the divisor), and never more than 10% less."""
    numbers = [a for a in (value, divisor, min_value) if a is not None]
    if any(isinstance(a, bool) or not isinstance(a, int | float) for a in numbers):
        raise TypeError("make_divisible takes numbers")
    if not isinstance(divisor, int) or divisor < 1:
        raise _Refused("`make_divisible`'s divisor must be a whole number of at least 1")
    floor_value = divisor if min_value is None else min_value
    new = max(floor_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return int(new)


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
    "round": _round,
    "ceil": math.ceil,
    "floor": math.floor,
    "make_divisible": _make_divisible,
}


def is_reference(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("$") and not value.startswith("$$")


Functions = dict[str, Callable[..., Any]]


def evaluate(text: str, lookup: Callable[[str], Any], functions: Functions | None = None) -> Any:
    """Evaluate `$name` or `${expr}`; `lookup(name)` returns a parameter's value or raises.

    `functions` adds callables to the built-in ones (the scale's `w` and `d`)."""
    # for messages: control characters escaped, a long one cut (first: it may be megabytes)
    shown = shown_name(text[: _SHOWN + 1], _SHOWN)
    if text.startswith("${") and text.endswith("}"):
        source = text[2:-1].strip()
    elif text.startswith("$"):
        source = text[1:].strip()
        if not source.isidentifier():
            if text.startswith("${"):  # `${base * 2`: the brace is what is missing
                raise ExprError(f"`{shown}` has no closing `}}`")
            raise ExprError(f"`{shown}` is not a parameter name; write `${{...}}` for expressions")
    else:  # pragma: no cover - callers check is_reference first
        raise ExprError(f"`{shown}` is not a reference")
    if not source.isascii():  # Python's parser folds `ﬁlter` into `filter` (NFKC)
        raise ExprError(f"`{shown}` is not plain ASCII; parameter names are ASCII identifiers")
    if source.isidentifier() and not keyword.iskeyword(source):
        return lookup(source)  # `$name`: the parameter's value as it is, without parsing
    if len(source) > MAX_SOURCE:
        raise ExprError(
            f"`{shown}` is {len(source):,} characters long; "
            f"an expression may have at most {MAX_SOURCE:,}"
        )
    tree = _parse(source)
    if isinstance(tree, str):
        raise ExprError(f"`{shown}` {tree}")
    return _eval(tree, lookup, shown, {**_FUNCS, **(functions or {})})


@functools.lru_cache(maxsize=1024)
def _parse(source: str) -> ast.expr | str:
    """The expression's syntax tree, or what is wrong with it (cached: a block's expressions
    are evaluated again for every instance)."""
    try:
        tree = ast.parse(source, mode="eval")
    except (RecursionError, MemoryError):  # the parser's own nesting limits
        return f"nests deeper than {MAX_DEPTH} levels"
    except SyntaxError as exc:
        if "too many nested parentheses" in str(exc.msg):  # the parser stops at 200
            return f"nests deeper than {MAX_DEPTH} levels"
        return "is not a valid expression"
    except ValueError:  # a NUL character
        return "is not a valid expression"
    # measured without recursion, so that `_eval`'s recursion is bounded by MAX_DEPTH
    stack = [(tree.body, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"nests deeper than {MAX_DEPTH} levels"
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return tree.body


def fmt_number(value: int | float, spec: str = "") -> str:
    """A number for a message, as the format `spec` has it (`.3g`: `1e+16`); a whole number too
    long to print (and too large for the float that `.3g` makes) is `a 400-digit number`."""
    if isinstance(value, int) and abs(value) >= 10**21:
        try:
            return f"a {len(str(abs(value))):,}-digit number"
        except ValueError:  # str() refuses more than 4,300 digits
            return f"a number of about {int(value.bit_length() * math.log10(2)):,} digits"
    return format(value, spec)


def _check(value: Any, text: str, verb: str = "evaluates to") -> Any:
    """`value` if it is within the limits of a spec expression's values."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ExprError(f"`{text}` {verb} a number that is not finite ({value})")
        if abs(value) > MAX_MAGNITUDE:
            raise ExprError(
                f"`{text}` {verb} a number too large for a spec ({fmt_number(value, '.3g')})"
            )
    elif isinstance(value, str) and len(value) > MAX_TEXT:
        raise ExprError(
            f"`{text}` {verb} a text of {len(value):,} characters; at most {MAX_TEXT:,}"
        )
    elif isinstance(value, list | tuple) and len(value) > MAX_ITEMS:
        raise ExprError(f"`{text}` {verb} a list of {len(value):,} items; at most {MAX_ITEMS:,}")
    return value


def _size(value: Any) -> tuple[int, int, str] | None:
    """(length, limit, what) of a text or list, whose `*` and `+` build a new one."""
    if isinstance(value, str):
        return len(value), MAX_TEXT, "text of {:,} characters"
    if isinstance(value, list | tuple):
        return len(value), MAX_ITEMS, "list of {:,} items"
    return None


def _refuse_before(op: ast.operator, left: Any, right: Any, text: str) -> None:
    """Raise if `left op right` would build a value over the limits; checked before building
    it, since building it is what takes the time and memory."""
    size = _size(left) or _size(right)
    if size is not None:
        length, limit, what = size
        if isinstance(op, ast.Mod) and isinstance(left, str):
            raise ExprError(f"`{text}` formats text with `%`, which a spec expression does not do")
        if isinstance(op, ast.Mult):
            count = right if _size(left) else left
            if isinstance(count, int) and length * max(count, 0) > limit:
                built = what.format(length * count)
                raise ExprError(f"`{text}` would build a {built}; at most {limit:,}")
        if isinstance(op, ast.Add) and type(left) is type(right):
            total = length + len(right)
            if total > limit:
                raise ExprError(f"`{text}` would build a {what.format(total)}; at most {limit:,}")
    if isinstance(op, ast.Pow):
        if not isinstance(right, int) or abs(right) > MAX_EXPONENT:
            raise ExprError(f"`{text}`: exponent must be an integer of at most {MAX_EXPONENT}")
        grows = isinstance(left, int | float) and abs(left) > 1 and right > 0
        if grows and right * math.log10(abs(left)) > math.log10(MAX_MAGNITUDE) + 1:
            raise ExprError(f"`{text}` evaluates to a number too large for a spec")


def _eval(node: ast.AST, lookup: Callable[[str], Any], text: str, funcs: Functions) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float | bool | str):
        return _check(node.value, text, "uses")
    if isinstance(node, ast.Name):
        if node.id in ("True", "False"):
            return node.id == "True"
        return _check(lookup(node.id), text, "uses")
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left = _eval(node.left, lookup, text, funcs)
        right = _eval(node.right, lookup, text, funcs)
        _refuse_before(node.op, left, right, text)
        try:
            return _check(_BINOPS[type(node.op)](left, right), text)
        except ZeroDivisionError:
            raise ExprError(f"`{text}` divides by zero") from None
        except OverflowError:
            raise ExprError(f"`{text}` evaluates to a number too large for a spec") from None
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
        return _check(seq[index], text, "uses")
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
        except _Refused as exc:
            raise ExprError(f"`{text}`: {exc}") from None
        except OverflowError:  # a scale's `w` of a huge width
            raise ExprError(f"`{text}` evaluates to a number too large for a spec") from None
        except (TypeError, ValueError):
            raise ExprError(f"`{text}`: bad arguments to `{node.func.id}`") from None
    raise ExprError(f"`{text}` uses something a spec expression does not allow")


def names_in(value: Any) -> set[str]:
    """The parameter names the references inside `value` read (a guess of nothing for an
    expression that does not parse: evaluating it reports that)."""
    found: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif is_reference(item):
            braced = item.startswith("${") and item.endswith("}")
            source = item[2:-1].strip() if braced else item[1:]
            if source.isidentifier():
                found.add(source)
            elif source.isascii() and len(source) <= MAX_SOURCE:
                tree = _parse(source)
                if not isinstance(tree, str):
                    found.update(n.id for n in ast.walk(tree) if isinstance(n, ast.Name))
    return found


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
