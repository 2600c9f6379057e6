"""Stage 5c: readable, standalone PyTorch code from the shared lowering (`lower.py`).

The module tree is the one `build` instantiates and the forward code is printed by the same
function, so the generated module has the same submodule names, the same `state_dict` and the
same outputs. What codegen adds is what a person adds when writing the model by hand, in
torchvision's style: a model class whose constructor takes the spec's parameters with their
defaults; one class per block type, whose constructor takes the block's parameters and
computes what the spec computes from them (`trace.py` finds, for every constructor argument,
the spec expression it came from); a layer an `if:` leaves out of some instances built under
its condition (`merge`); repeats counted by a parameter as loops; `# N x C x H x W`
comments. Where no expression explains a value that differs between a block's instances,
the value becomes a constructor argument of its own (`_match`, `_parameterize`), as it does
for composites (`Inception(480, 192, (96, 208), (16, 48), 64)`). Jinja2 lays out the file
(`templates/model.py.j2`), one statement a line, and `ruff format` breaks the long lines, so
the output passes `ruff check` and `ruff format --check`. No torch import here.
"""

from __future__ import annotations

import ast
import functools
import math
import subprocess
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from .codeloops import sequential
from .codemerge import (
    Merge,
    dependency_order,
    names_ok,
    plan_merges,
    sequential_base,
)
from .expr import is_reference
from .gcpause import no_cyclic_gc
from .graph import ArchGraph
from .init import init_lines
from .lower import Container, Leaf, lower, module_classes, render_forward
from .names import Namespace, class_name, class_names, safe_identifier
from .ops.base import OPS, TorchParameter, fmt_shape
from .symbolic import MAKE_DIVISIBLE, checked, fold, names_of, plain, same, text
from .trace import IN_CHANNELS, Trace, trace

LINE_LENGTH = 100
INDENT = "    "
RESERVED = frozenset({"torch", "nn", "F", "NamedTuple", "Tensor", "self", "x", "out"})
# seconds `ruff format` may take: 0.15 s for a 40,000-layer model, so only a hang hits this
FORMAT_TIMEOUT = 60.0


class FormatError(Exception):
    """`ruff format` could not format the generated code (not found, failed or timed out)."""


# --- classes -----------------------------------------------------------------------------


@dataclass
class ClassDef:
    """A class of the generated file, as the template lays it out."""

    name: str
    block: str
    members: list[Container]
    doc: str | None = None
    params: list[tuple[str, str]] = field(default_factory=list)  # (name, type hint)
    # the default each parameter's text has, None for a required one (same order as params)
    defaults: list[str | None] = field(default_factory=list)
    # per member: the text its caller passes each parameter (None: the value as a literal)
    arg_texts: dict[int, list[str | None]] = field(default_factory=dict)
    # statements before the children (a derived parameter computed from the others)
    prelude: list[str] = field(default_factory=list)
    helpers: set[str] = field(default_factory=set)  # `math`, `_make_divisible`
    # a merged class: its conditional layers (ids in its first member) -> their conditions,
    # and each member's layers matched to the first member's
    optional: dict[int, str] = field(default_factory=dict)
    pairs: dict[int, dict[int, Any]] = field(default_factory=dict)
    # a conditional expression (an `add` under `if:`): attr -> (its flag attribute, condition)
    flags: dict[str, tuple[str, str]] = field(default_factory=dict)
    sequential_base: bool = False  # an nn.Sequential (a block of numbered layers in a chain)
    init_lines: list[str] = field(default_factory=list)
    symbolic: bool = False  # parameterized by the spec's expressions
    # per member: the values of `params`, in order
    values: dict[int, list[Any]] = field(default_factory=dict)
    # slot index -> the text that fills it in the class body, and whether it is a parameter
    slots: list[tuple[str, bool]] = field(default_factory=list)
    # (attribute, constructor expression, how a non-identifier attribute is registered, the
    # condition it is built under or None) of every submodule or bare parameter, in
    # `state_dict` order
    children: list[tuple[str, str, str, str | None]] = field(default_factory=list)
    returns: str = "torch.Tensor"
    inputs: list[str] = field(default_factory=list)  # forward's arguments after `x`
    forward: list[str] = field(default_factory=list)  # its lines, indented relative to its body

    @property
    def doc_lines(self) -> list[str]:
        return docstring(self.doc, INDENT) if self.doc else []

    @property
    def signature(self) -> list[str]:
        """The constructor's parameters after `self`, as written."""
        defaults = self.defaults or [None] * len(self.params)
        return [
            f"{name}: {hint}" if default is None else f"{name}: {hint} = {default}"
            for (name, hint), default in zip(self.params, defaults, strict=True)
        ]


@dataclass
class OutputsDef:
    """The model's named tuple of outputs."""

    name: str
    fields: list[tuple[str, str]]  # (name, type hint)
    doc_lines: list[str]


def width(text: str) -> int:
    """Display width, as ruff measures lines: East Asian wide characters count twice."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _escapes(text: str) -> list[str]:
    """`text` as pieces of the inside of a triple-quoted string, one per character: a backslash
    doubled, a quote escaped where it could end the string (before another quote, or last), a
    character that is not printable (NUL, controls, bidirectional overrides, zero-width joiners)
    as its escape, so the string holds the same text and the file nothing but plain lines."""
    out = []
    for i, ch in enumerate(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"' if i + 1 == len(text) or text[i + 1] == '"' else ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            out.append(
                f"\\x{code:02x}"
                if code < 0x100
                else f"\\u{code:04x}"
                if code < 0x10000
                else f"\\U{code:08x}"
            )
    return out


def wrap(text: str, limit: int, first: int | None = None) -> list[str]:
    """Greedy word wrap by display width, of text escaped for a docstring (whitespace runs,
    newlines and separators folded to one space); a word longer than a line is cut. `first`:
    the width of the first line, when it differs."""
    words: list[list[str]] = [[]]
    for piece in _escapes(" ".join(text.split())):
        if piece == " ":
            words.append([])
        else:
            words[-1].append(piece)
    cut = min(limit, first or limit)
    lines: list[str] = []
    current, current_width = "", 0
    for word in words:
        chunks: list[tuple[str, int]] = []
        for piece in word:  # cut between escapes, never inside one
            w = width(piece)
            if not chunks or chunks[-1][1] + w > cut:
                chunks.append(("", 0))
            text_, w_ = chunks[-1]
            chunks[-1] = (text_ + piece, w_ + w)
        for chunk, chunk_width in chunks:
            room = first if first is not None and not lines else limit
            if current and current_width + 1 + chunk_width > room:
                lines.append(current)
                current, current_width = chunk, chunk_width
            elif current:
                current, current_width = f"{current} {chunk}", current_width + 1 + chunk_width
            else:
                current, current_width = chunk, chunk_width
    return [*lines, current] if current else lines


def docstring(text: str, indent: str) -> list[str]:
    """The lines of a docstring at `indent`, quotes included and the indent not: on one line
    if it fits, else wrapped with the closing quotes on their own line (ruff format wraps no
    text, and the lines must stay within the line length)."""
    if len(" ".join(text.split())) + len(indent) + 6 <= LINE_LENGTH:  # it might fit
        one = wrap(text, LINE_LENGTH)
        if len(one) == 1 and width(f'{indent}"""{one[0]}"""') <= LINE_LENGTH:
            return [f'"""{one[0]}"""']
    lines = wrap(text, LINE_LENGTH - len(indent) - 3)
    if not lines:
        return []
    if len(lines) == 1 and " " in lines[0]:
        # ruff format joins a one-line docstring's closing quotes to it, past the line length
        lines = lines[0].rsplit(" ", 1)
    return [f'"""{lines[0]}', *lines[1:], '"""']


def literal(value: Any) -> str:
    """A value as Python source: `repr`, except infinities and NaN, whose repr is no literal."""
    if isinstance(value, float) and not math.isfinite(value):
        return f'float("{value}")'
    if isinstance(value, tuple):
        items = [literal(v) for v in value]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    if isinstance(value, list):
        return f"[{', '.join(literal(v) for v in value)}]"
    return repr(value)


def _leaf_values(leaf: Leaf) -> list[Any]:
    assert leaf.call is not None
    return [*leaf.call.args, *(v for _, v, _ in leaf.call.kwargs)]


def _structure(c: Container, keys: dict[int, tuple]) -> tuple:
    """What a class must share: block type, forward code, and its children's shapes."""
    children = []
    for child in c.children:
        if isinstance(child, Container):
            children.append(("c", child.attr, keys[id(child)]))
        elif child.call is not None:
            kw = tuple(k for k, _, _ in child.call.kwargs)
            children.append(("l", child.attr, child.call.cls, len(child.call.args), kw))
    forward = tuple(render_forward(c, "Outputs")) if not c.sequential else ()
    return (c.block, c.sequential, tuple(c.params), forward, tuple(children))


MISSING = object()  # a slot of a conditional child that a member of a merged class lacks


def _aligned(
    c: Container,
    layout: Container | None,
    pairs: dict[int, Leaf | Container] | None,
    each: Any,
    inner: Any,
) -> list[Any]:
    """`each(child)` for `c`'s children, laid out as `layout`'s (the member of a merged class
    with every conditional layer; `pairs` maps its layers to `c`'s): a layer `c` lacks fills
    its slots with MISSING, and a sequence is laid out by `inner(child, its layout)`."""
    if layout is None or layout is c or pairs is None:
        return [v for child in c.children for v in each(child)]
    out: list[Any] = []
    for child in layout.children:
        mine = pairs.get(id(child))
        if mine is None:
            out += [MISSING] * len(each(child))
        elif isinstance(child, Container) and child.sequential:
            out += inner(mine, child)
        else:
            out += each(mine)
    return out


def _values(
    c: Container,
    defs: dict[int, ClassDef],
    layout: Container | None = None,
    pairs: dict[int, Leaf | Container] | None = None,
) -> list[Any]:
    """The concrete value of every slot of `c`'s constructor body, in order."""

    def each(child: Leaf | Container) -> list[Any]:
        if isinstance(child, Container):
            return _values(child, defs) if child.sequential else defs[id(child)].values[id(child)]
        return _leaf_values(child) if child.call is not None else []

    return _aligned(c, layout, pairs, each, lambda m, r: _values(m, defs, r, pairs))


def _code(value: Any) -> str | None:
    """The source of a value that carries spec expressions (`planes * 4`); None if plain."""
    from .trace import _node

    n = _node(value)
    if n is not None:
        return text(n)
    if isinstance(value, tuple | list) and any(_code(v) is not None for v in value):
        items = [_code(v) or literal(plain(v)) for v in value]
        if isinstance(value, list):
            return f"[{', '.join(items)}]"
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    return None


def _leaf_texts(leaf: Leaf, tr: Trace) -> list[str | None]:
    values = _leaf_values(leaf)
    call = tr.calls.get(leaf.node.id)
    if call is None:
        return [None] * len(values)
    sym = [*call.args, *(v for _, v, _ in call.kwargs)]
    sym += [None] * (len(values) - len(sym))  # lowering's `inplace=True` comes after
    if len(sym) != len(values):
        return [None] * len(values)
    return [
        _code(s) if s is not None and same(plain_deep(s), v) else None
        for s, v in zip(sym, values, strict=True)
    ]


def plain_deep(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return type(value)(plain_deep(v) for v in value)
    return plain(value)


def _texts(
    c: Container,
    defs: dict[int, ClassDef],
    tr: Trace,
    owner: tuple[str, ...],
    layout: Container | None = None,
    pairs: dict[int, Leaf | Container] | None = None,
) -> list:
    """The spec expression (as source) of every slot of `c`'s constructor body, where the
    class at `owner` can write one; None where the slot's value is written as a literal."""

    def each(child: Leaf | Container) -> list[Any]:
        if isinstance(child, Container):
            if child.sequential:
                return _texts(child, defs, tr, owner)
            d = defs[id(child)]
            given = d.arg_texts.get(id(child))
            if given is None or tr.owner(child.path[:-1]) != owner:
                given = [None] * len(d.params)
            return given
        if child.call is None:
            return []
        if tr.owner(child.node.scope) == owner:
            return _leaf_texts(child, tr)
        return [None] * len(_leaf_values(child))

    return _aligned(c, layout, pairs, each, lambda m, r: _texts(m, defs, tr, owner, r, pairs))


def _default_text(value: Any) -> tuple[str, Any] | None:
    """A parameter's default as source (a list as a tuple: no mutable default), and its
    value; None for none."""
    if value is None or is_reference(value):
        return None
    value = _tuples(value)
    return literal(value), value


def _tuples(value: Any) -> Any:
    """Lists as tuples, all the way down (a default is not mutable)."""
    if isinstance(value, list | tuple):
        return tuple(_tuples(v) for v in value)
    return value


def _parameterize_symbolic(
    cls: ClassDef, graph: ArchGraph, defs: dict[int, ClassDef], tr: Trace
) -> bool:
    """The constructor of a user block's class, or of the model: its parameters are the
    block's (the spec's), with their defaults, and each slot is the spec expression that
    gives it where every member agrees on one. False where the names cannot be kept
    (a graph built without lint); the caller then parameterizes by values."""
    members = cls.members
    root = not members[0].path
    ctxs = [tr.context(m.path) for m in members]
    if root:
        declared = list(graph.params)
        defaults_raw = {p: graph.params[p] for p in declared}
    elif tr.is_block(graph.instances.get(".".join(members[0].path))):
        declared = list(graph.block_params.get(cls.block, ()))
        defaults_raw = graph.block_defaults.get(cls.block, {})
    else:  # a seq's class: what it reads from around it are its arguments
        declared, defaults_raw = [], {}
    # the names the class may read besides its own parameters: the spec's, and for a seq's
    # class, its caller's
    spec_params = [
        p for p in ctxs[0].names if p not in declared and p not in (IN_CHANNELS, "i", "n")
    ]
    if not names_ok([*declared, *spec_params]):
        return False
    layout = members[0] if cls.pairs else None
    rows = [_values(m, defs, layout, cls.pairs.get(id(m))) for m in members]
    texts = [_texts(m, defs, tr, m.path, layout, cls.pairs.get(id(m))) for m in members]
    fallback = _slot_names(members[0], defs)
    named: dict[str, tuple] = {}
    for name in [IN_CHANNELS, *declared, *spec_params]:
        if all(name in ctx.values for ctx in ctxs):
            named[name] = tuple(ctx.values[name] for ctx in ctxs)
    search = [n for n in named if n != IN_CHANNELS] + (
        [IN_CHANNELS] if IN_CHANNELS in named else []
    )
    fresh = Namespace(taken=lambda n: n in named or n in RESERVED)
    used: set[str] = set()
    fresh_names: list[str] = []
    slots: list[tuple[str, bool]] = []
    for j in range(len(rows[0])):
        present = [i for i, row in enumerate(rows) if row[j] is not MISSING]
        column = tuple(rows[i][j] for i in present)
        chosen = _agreed([texts[i][j] for i in present], [ctxs[i].values for i in present], column)
        if chosen is not None:
            slots.append((chosen, True))
            used |= names_of(ast.parse(chosen, mode="eval").body)
            continue
        if root:
            slots.append((literal(column[0]), False))
            continue
        name, width = fallback[j]
        varies = any(not same(v, column[0]) for v in column)
        part = {n: tuple(v[i] for i in present) for n, v in named.items()}
        expr = _match(column, part, search) if varies or width else None
        if expr is None and varies:
            expr = fresh.create_name(name)
            # a member without the layer passes it a value it does not use
            by_member = dict(zip(present, column, strict=True))
            named[expr] = tuple(by_member.get(i, column[0]) for i in range(len(rows)))
            search.append(expr)
            fresh_names.append(expr)
        if expr is not None:
            used.add(expr.split("[")[0].split(" ")[0])
            slots.append((expr, True))
        else:
            slots.append((literal(column[0]), False))
    for m in members:  # the counts of repeats written as a loop
        used |= _repeat_names(m, tr)
    cls.slots = slots
    cls.symbolic = True
    cls.helpers = {h for h in ("math", MAKE_DIVISIBLE) if h in used}
    # the signature: in_channels, the required parameters, the rest with their defaults
    required: list[str] = []
    optional: list[tuple[str, str]] = []
    if IN_CHANNELS in used and IN_CHANNELS not in declared:
        required.append(IN_CHANNELS)
    for p in declared:
        d = _default_text(defaults_raw.get(p))
        if root and p in graph.param_exprs:
            d = None
        if d is None and root:
            optional.append((p, "None"))
        elif d is None:
            required.append(p)
        else:
            optional.append((p, d[0]))
    required += fresh_names
    required += [p for p in spec_params if p in used]
    names = [*required, *(p for p, _ in optional)]
    values0 = {**named}
    cls.params = []
    for n in names:
        value = values0[n][0] if n in values0 else None
        hint = _hint(value) if value is not None else "int"
        if root and n in graph.param_exprs:
            hint = f"{hint} | None"
        cls.params.append((n, hint))
    cls.defaults = [None] * len(required) + [d for _, d in optional]
    if root:
        for p in declared:
            if p in graph.param_exprs:
                cls.prelude += _derived(p, graph)
    for i, (m, ctx) in enumerate(zip(members, ctxs, strict=True)):
        cls.values[id(m)] = [named[n][i] if n in named else None for n in names]
        parent = tr.context(tr.owner(m.path[:-1])) if m.path else None
        given: list[str | None] = []
        for n in names:
            call = ctx.call.get(n)
            if call is None or parent is None or n not in named:
                given.append(None)
                continue
            call = fold(call)
            ok = checked(call, tr.indexed(m.path, parent)[1], named[n][i])
            given.append(text(call) if ok else None)
        cls.arg_texts[id(m)] = given
    return True


def _agreed(texts: list[str | None], values: list[dict[str, Any]], column: tuple) -> str | None:
    """The expression every member's slot is: the one they all write, else one of theirs that
    gives every member its value (`in_channels` where the layer before is left out, and
    `_make_divisible(inp * expand)` where it is there: equal where it is left out)."""
    if texts and texts[0] is not None and all(t == texts[0] for t in texts):
        return texts[0]
    for candidate in dict.fromkeys(t for t in texts if t is not None):
        node = ast.parse(candidate, mode="eval").body
        if all(checked(node, v, c) for v, c in zip(values, column, strict=True)):
            return candidate
    return None


def _repeat_names(c: Container, tr: Trace) -> set[str]:
    """The names the counts of the repeats `c`'s constructor builds read."""
    out: set[str] = set()
    for child in c.children:
        if isinstance(child, Container) and child.sequential:
            count = tr.repeats.get(child.path)
            if count is not None:
                out |= names_of(count)
            out |= _repeat_names(child, tr)
    return out


def _derived(name: str, graph: ArchGraph) -> list[str]:
    """A spec parameter written as an expression of the others, computed when not given."""
    from .symbolic import Untranslatable, translate

    others = {p: ast.Name(p, ast.Load()) for p in graph.params if p != name}
    try:
        node = translate(graph.param_exprs[name], others)
    except Untranslatable:
        return [f"if {name} is None:", f"    {name} = {literal(graph.params[name])}"]
    if not checked(node, graph.params, graph.params[name]):
        return [f"if {name} is None:", f"    {name} = {literal(graph.params[name])}"]
    return [f"if {name} is None:", f"    {name} = {text(node)}"]


def _slot_names(c: Container, defs: dict[int, ClassDef]) -> list[tuple[str, bool]]:
    """A fallback parameter name for every slot (`conv1_out_channels`), and whether the slot
    is a width (channels, features: named after a block parameter even when it is constant)."""
    out: list[tuple[str, bool]] = []
    for child in c.children:
        if isinstance(child, Container):
            if child.sequential:
                out += [(f"{child.attr}_{n}", w) for n, w in _slot_names(child, defs)]
            else:
                out += [(f"{child.attr}_{n}", True) for n, _ in defs[id(child)].params]
        elif child.call is not None:
            out += [(f"{child.attr}_{name}", True) for name in child.call.names]
            out += [(f"{child.attr}_{k}", False) for k, _, _ in child.call.kwargs]
    return [(n if n.isidentifier() else f"p{n.replace('-', '_')}", w) for n, w in out]


def _same(a: tuple, b: tuple) -> bool:
    """Equal values of equal types (True is not 1 here)."""
    return a == b and all(type(x) is type(y) for x, y in zip(a, b, strict=True))


def _match(column: tuple, named: dict[str, tuple], order: list[str]) -> str | None:
    """An expression over the block's parameters whose value is `column` in every member."""
    for name in order:
        values = named[name]
        if _same(values, column):
            return name
        if all(isinstance(v, tuple) for v in values):
            for k in range(min(len(v) for v in values)):
                if _same(tuple(v[k] for v in values), column):
                    return f"{name}[{k}]"
    for name in order:  # widths derived from a parameter: `planes * 4`
        values = named[name]
        if all(type(v) is int for v in values) and all(type(v) is int for v in column):
            for k in (2, 3, 4, 6, 8):
                if tuple(v * k for v in values) == column:
                    return f"{name} * {k}"
    return None


def _hint(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, list):  # a parameter's default is a tuple: no mutable default
        inner = {_hint(v) for v in value}
        return f"tuple[{inner.pop()}, ...]" if len(inner) == 1 else "tuple"
    if isinstance(value, tuple):
        return f"tuple[{', '.join(_hint(v) for v in value)}]"
    return type(value).__name__


def _child_classes(c: Container, defs: dict[int, ClassDef]) -> set[str]:
    """The classes `c`'s constructor calls."""
    out: set[str] = set()
    for child in c.children:
        if isinstance(child, Container):
            out |= _child_classes(child, defs) if child.sequential else {defs[id(child)].name}
    return out


def _parameterize(cls: ClassDef, graph: ArchGraph, defs: dict[int, ClassDef]) -> None:
    """Turn the slots that differ between members, or that carry a block parameter, into
    constructor parameters named after the block's parameters."""
    rows = [_values(m, defs) for m in cls.members]
    fallback = _slot_names(cls.members[0], defs)
    columns = list(zip(*rows, strict=True)) if rows and rows[0] else []
    named: dict[str, tuple] = {}  # candidate name -> its value in every member
    for m in cls.members:
        inst = graph.instances.get(".".join(m.path))
        shape = graph.node(m.input).shape if m.input in graph.graph else None
        params = dict(inst.params) if inst is not None else {}
        params = {"in_channels": shape[0] if shape else None, **params}
        for name, value in params.items():
            named.setdefault(name, ())
            named[name] += (value,)
    order = list(named)
    search = [*order[1:], *order[:1]]  # the block's own parameters before in_channels
    used: list[str] = []
    cls.slots = []
    fresh = Namespace(taken=named.__contains__)  # names for slots no parameter explains
    for j, column in enumerate(columns):
        name, width = fallback[j]
        varies = any(not same(v, column[0]) for v in column)
        expr = _match(column, named, search) if varies or width else None
        if expr is None and varies:  # numbered if a block parameter has the name
            expr = fresh.create_name(name)
            named[expr] = column
            order.append(expr)
            search.append(expr)
        if expr is not None:
            used.append(expr.split("[")[0].split(" ")[0])
        cls.slots.append((expr, True) if expr is not None else (literal(column[0]), False))
    # parameters in a stable order: in_channels, the block's own, then the rest
    params = [n for n in order if n in used]
    if "in_channels" in params:
        params.remove("in_channels")
        params.insert(0, "in_channels")
    # a name that would hide what the constructor uses (`self`, `nn`, `super`, a class it
    # calls) or that is no plain identifier gets a suffix; lint refuses such block parameters
    # and classes avoid parameter names, so this only renames in graphs built without lint
    avoid = _child_classes(cls.members[0], defs)
    rename: dict[str, str] = {}
    for n in params:
        rename[n] = safe_identifier(n, avoid | (set(params) - {n}) | set(rename.values()))
    cls.params = [(rename[n], _hint(named[n][0])) for n in params]
    for k, (source, is_param) in enumerate(cls.slots):
        if is_param:
            head = source.split("[")[0].split(" ")[0]
            cls.slots[k] = (rename[head] + source[len(head) :], True)
    for i, m in enumerate(cls.members):
        cls.values[id(m)] = [named[n][i] for n in params]


@dataclass
class _Entry:
    """A child as its class's constructor builds it."""

    attr: str
    expr: str
    register: str  # how a non-identifier attribute is registered
    condition: str | None = None  # built only when this holds (a layer under `if:`)
    before: list[str] = field(default_factory=list)  # statements that build a list first


def _construct(
    c: Container,
    slots: list[tuple[str, bool]],
    defs: dict[int, ClassDef],
    at: list[int],
    tr: Trace | None = None,
    optional: dict[int, str] | None = None,
    lists: Namespace | None = None,
) -> list[_Entry]:
    """Every child's constructor expression, filling slots in order; a child in `optional`
    carries its condition, and a sequence with such a child is built as a list first."""
    out: list[_Entry] = []
    optional = optional or {}
    lists = lists if lists is not None else Namespace()

    def take(n: int) -> list[tuple[str, bool]]:
        start = at[0]
        at[0] += n
        return slots[start : start + n]

    for child in c.children:
        condition = optional.get(id(child))
        if isinstance(child, Container):
            if child.sequential:
                items = _construct(child, slots, defs, at, tr, optional, lists)
                if any(e.condition or e.before for e in items):
                    out.append(_built_list(child, items, lists, condition))
                else:
                    built = [(e.attr, e.expr, e.register) for e in items]
                    out.append(
                        _Entry(child.attr, sequential(child, built, tr), "add_module", condition)
                    )
            else:
                d = defs[id(child)]
                given = take(len(d.params))
                defaults = d.defaults or [None] * len(d.params)
                args = []
                for (name, _), default, (t, _) in zip(d.params, defaults, given, strict=True):
                    if default is None:
                        args.append(t)
                    elif t != default:
                        args.append(f"{name}={t}")
                out.append(
                    _Entry(child.attr, f"{d.name}({', '.join(args)})", "add_module", condition)
                )
        elif child.call is not None:
            call = child.call
            values = take(len(call.args) + len(call.kwargs))
            args = [t for t, _ in values[: len(call.args)]]
            kwargs = [
                (k, text_)
                for (k, v, default), (text_, is_param) in zip(
                    call.kwargs, values[len(call.args) :], strict=True
                )
                if is_param or v != default  # a literal equal to torch's default is left out
            ]
            method = "register_parameter" if isinstance(call, TorchParameter) else "add_module"
            out.append(_Entry(child.attr, call.construct(args, kwargs), method, condition))
    return out


def _built_list(
    c: Container, items: list[_Entry], lists: Namespace, condition: str | None
) -> _Entry:
    """A sequence some of whose layers are conditional, as torchvision builds one: a list
    appended to, then `nn.Sequential(*layers)`."""
    named = [e.attr for e in items] != [str(i) for i in range(len(items))]
    var = lists.create_name(c.attr if c.attr.isidentifier() else "layers")
    kind = "tuple[str, nn.Module]" if named else "nn.Module"
    before = [f"{var}: list[{kind}] = []"]
    for e in items:
        before += e.before
        item = f"({e.attr!r}, {e.expr})" if named else e.expr
        if e.condition:
            before += [f"if {e.condition}:", f"    {var}.append({item})"]
        else:
            before.append(f"{var}.append({item})")
    expr = f"nn.Sequential(OrderedDict({var}))" if named else f"nn.Sequential(*{var})"
    if condition:  # the list is only built when it is used
        before = [f"if {condition}:", *(f"    {line}" for line in before)]
    return _Entry(c.attr, expr, "add_module", condition, before)


def _init_lines(cls: ClassDef, entries: list[_Entry]) -> list[str]:
    """The constructor's body after the signature (the template adds `super().__init__()`
    for a module; an nn.Sequential's is the last line here)."""
    lines = list(cls.prelude)
    if cls.sequential_base:
        if not any(e.condition or e.before for e in entries):
            items = "".join(f"{e.expr}, " for e in entries).rstrip()
            return [*lines, f"super().__init__({items})"]
        lists = Namespace({e.attr for e in entries})
        var = lists.create_name("layers")
        lines.append(f"{var}: list[nn.Module] = []")
        for e in entries:
            lines += e.before
            if e.condition:
                lines += [f"if {e.condition}:", f"    {var}.append({e.expr})"]
            else:
                lines.append(f"{var}.append({e.expr})")
        return [*lines, f"super().__init__(*{var})"]
    for e in entries:
        if e.condition:
            lines += e.before
            lines += [
                f"if {e.condition}:",
                f"    self.{e.attr} = {e.expr}",
                "else:",
                f"    self.{e.attr} = None",
            ]
        elif e.attr.isidentifier():
            lines += [*e.before, f"self.{e.attr} = {e.expr}"]
        else:
            lines += [*e.before, f"self.{e.register}({e.attr!r}, {e.expr})"]
    for flag, condition in cls.flags.values():
        lines.append(f"self.{flag} = {condition}")
    return lines


def _merged_forward(
    c: Container, graph: ArchGraph, cls: ClassDef, optional: dict[int, str]
) -> list[str] | None:
    """`c`'s forward, each statement of a conditional layer guarded: a missing module is
    None, a missing expression's flag is False, and its value is then its input's."""
    top = {ch.attr: ch for ch in c.children if id(ch) in optional}
    lines: list[str] = []
    for st in c.statements:
        node = graph.node(st.node)
        attr = node.name if node.scope == c.path else node.scope[len(c.path)]
        child = top.get(attr)
        if child is None:
            lines.append(f"{st.variable} = {st.expression}")
            continue
        if not st.args:
            return None
        if isinstance(child, Leaf) and child.call is None:
            guard = f"self.{cls.flags[attr][0]}"
        else:
            guard = f"self.{attr} is not None"
        first = st.args[0]
        if st.variable == first:
            lines += [f"if {guard}:", f"    {st.variable} = {st.expression}"]
        elif st.variable not in st.args:  # as torchvision's `identity = x`, then downsample
            lines += [
                f"{st.variable} = {first}",
                f"if {guard}:",
                f"    {st.variable} = {st.expression}",
            ]
        else:  # it reads the variable it sets
            lines.append(f"{st.variable} = {st.expression} if {guard} else {first}")
    return [*lines, f"return {c.result}"]


def _shape_comment(graph: ArchGraph, node_id: str) -> str | None:
    shape = graph.node(node_id).shape if node_id in graph.graph else None
    return f"N x {fmt_shape(shape).replace('x', ' x ')}" if shape else None


@no_cyclic_gc()
def generate(
    graph: ArchGraph,
    spec_path: str,
    source: str | None = None,
    description: str | None = None,
    optimize: str | None = None,
) -> str:
    """The Python file for a graph that linted without errors; `optimize="inference"` prints
    the graph `compiler.optimize` builds (load that module's state_dict into it)."""
    if optimize:
        from .passes import lowered, optimize_graph

        graph, plan = optimize_graph(graph, optimize)
        root = lowered(graph, plan)
    else:
        root = lower(graph)
    containers: list[Container] = []

    def collect(c: Container) -> None:
        for child in c.children:
            if isinstance(child, Container):
                collect(child)
        containers.append(c)  # children before parents

    collect(root)
    tr = trace(graph, {c.path for c in containers if not c.sequential})

    def grouped(merged: dict[str, Merge]) -> tuple[dict[tuple, list[Container]], dict]:
        keys: dict[int, tuple] = {}
        groups: dict[tuple, list[Container]] = defaultdict(list)
        for c in containers:
            keys[id(c)] = _structure(c, keys)
            if c.block in merged and tr.is_block(graph.instances.get(".".join(c.path))):
                keys[id(c)] = ("merged", c.block)
            if not c.sequential:
                groups[keys[id(c)]].append(c)
        return groups, keys

    # merged bottom up: a block is one class once the blocks it calls are
    merges: dict[str, Merge] = {}
    groups, keys = grouped(merges)
    while not optimize:
        found = plan_merges(groups, graph, tr, keys, merges)
        if not found:
            break
        merges.update(found)
        groups, keys = grouped(merges)
    if merges:
        for key, members in groups.items():
            if key[0] == "merged":  # the instance with every conditional layer first
                rep = merges[key[1]].rep
                members.sort(key=lambda m: m is not rep)
    # the rule resolve warned of collisions by: the model's classes keep their names, no
    # class is called like a block parameter, a second block type of one class is numbered
    names = class_names(graph.model_class, graph.block_params)
    names.namespace.reserve(*RESERVED)
    # a parameter of a composite (`ch3x3`) or of a graph built without resolve is a
    # constructor argument too
    names.namespace.reserve(*(p for inst in graph.instances.values() for p in inst.params))
    model = names.model
    defs: dict[int, ClassDef] = {}
    classes: list[ClassDef] = []
    for members in dependency_order(groups):
        first = members[0]
        if not first.path:
            name = model
        elif first.block == "seq" or graph.instances[".".join(first.path)].repeat:
            # a sequence that is no nn.Sequential: named after where it stands (`Classifier`;
            # `CNBlockBlock`, the `block` of a `CNBlock`)
            owner = next(
                (
                    first.path[:k]
                    for k in range(len(first.path) - 1, 0, -1)
                    if tr.is_block(graph.instances.get(".".join(first.path[:k])))
                ),
                (),
            )
            where = graph.instances[".".join(owner)].block if owner else ""
            name = names.namespace.create_name(
                class_name(where) * bool(where) + class_name("_".join(first.path[len(owner) :]))
            )
        else:
            name = names.for_block(first.block)  # a second class of a block type: numbered
        cls = ClassDef(name, first.block, members)
        merge = merges.get(first.block) if first.path else None
        if merge is not None and merge.rep is first:
            cls.optional, cls.pairs = merge.optional, merge.pairs
            attrs = {ch.attr for ch in first.children}
            flags = Namespace(attrs)
            for ch in first.children:
                if id(ch) in cls.optional and isinstance(ch, Leaf) and ch.call is None:
                    cls.flags[ch.attr] = (flags.create_name(f"use_{ch.attr}"), cls.optional[id(ch)])
        cls.sequential_base = bool(first.path) and sequential_base(members)
        for m in members:
            defs[id(m)] = cls
        # an inference form is made for the parameters it was optimized with: literals
        symbolic = not optimize and (not first.path or tr.is_context(first.path))
        if not (symbolic and _parameterize_symbolic(cls, graph, defs, tr)):
            if first.path:
                _parameterize(cls, graph, defs)
            else:
                cls.slots = [(literal(v), False) for v in _values(first, defs)]
                cls.values[id(first)] = []
        classes.append(cls)

    outputs = names.outputs
    for cls in classes:
        first = cls.members[0]
        cls.doc = _doc(cls, graph, description)
        if optimize and first.path and cls.doc:
            cls.doc = (
                f"{cls.doc.rstrip('.')}; here in its inference form (see the module's docstring)."
            )

        entries = _construct(
            first, cls.slots, defs, [0], tr if cls.symbolic else None, cls.optional
        )
        cls.init_lines = _init_lines(cls, entries)
        if not first.path:
            cls.init_lines += init_lines(graph.init, graph.model_class, module_classes(root))
        if first.path:
            if cls.sequential_base:
                cls.forward = []
            elif cls.optional:
                cls.forward = _merged_forward(first, graph, cls, cls.optional) or []
            else:
                cls.forward = render_forward(first, outputs, indent="")
            cls.inputs = list(first.params)
            continue
        cls.forward = render_forward(first, outputs, lambda n: _shape_comment(graph, n), "")
        if graph.input_shape:
            cls.forward.insert(0, f"# N x {fmt_shape(graph.input_shape).replace('x', ' x ')}")
        if len(first.outputs) > 1:
            cls.returns = outputs
    model_def = defs[id(root)]
    tuple_def = None
    if len(root.outputs) > 1:
        fields = [
            (name, f"torch.Tensor{' | None' if train_only else ''}")
            for name, (_, train_only) in root.outputs.items()
        ]
        doc = "The model's outputs; training-only ones are None in eval mode."
        tuple_def = OutputsDef(outputs, fields, docstring(doc, INDENT))
    title = (description or f"The `{graph.name}` network").rstrip(".") + "."
    paragraphs = [title, f"Generated by yarch from `{spec_path}`."]
    if source:
        paragraphs[-1] += f" Source: {source}."
    if optimize:
        paragraphs.append(_inference_note(plan))
        command = f"yarch codegen {spec_path} --optimize {optimize}"
    else:
        command = f"yarch codegen {spec_path}"
    paragraphs.append(f"Regenerate with `{command}` rather than editing this file.")
    text = _template().render(
        docstring="\n\n".join(
            "\n".join(wrap(p, LINE_LENGTH, LINE_LENGTH - 3 if i == 0 else None))
            for i, p in enumerate(paragraphs)
        ),
        functional=any("F." in line for cls in classes for line in cls.forward),
        uses_math=any("math" in cls.helpers for cls in classes),
        ordered_dict=any("OrderedDict(" in line for cls in classes for line in cls.init_lines),
        make_divisible=any(MAKE_DIVISIBLE in cls.helpers for cls in classes),
        blocks=[cls for cls in classes if cls is not model_def],
        outputs=tuple_def,
        model=model_def,
    )
    return ruff_format(text, f"{model}.py")


@functools.cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )
    env.tests["identifier"] = str.isidentifier
    env.filters["repr"] = repr
    return env.get_template("model.py.j2")


def ruff_format(text: str, filename: str) -> str:
    """`text` formatted by `ruff format`, with ruff's defaults and yarch's line length: no
    configuration file is read (`--isolated`), so the bytes depend on the text alone."""
    failed = "cannot format the generated code: "
    try:
        from ruff import find_ruff_bin

        ruff = find_ruff_bin()
    except ImportError:
        raise FormatError(f"{failed}the `ruff` package is not installed") from None
    except FileNotFoundError as exc:  # ruff's RuffNotFound lists where it looked
        raise FormatError(failed + " ".join(str(exc).split())) from None
    command = [
        ruff,
        "format",
        "--isolated",
        "--line-length",
        str(LINE_LENGTH),
        "--target-version",
        "py311",
        "--stdin-filename",
        filename,
        "-",
    ]
    try:
        done = subprocess.run(
            command,
            input=text.encode("utf-8"),
            capture_output=True,
            timeout=FORMAT_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise FormatError(f"{failed}`ruff format` took more than {FORMAT_TIMEOUT:g} s") from None
    except OSError as exc:
        raise FormatError(f"{failed}cannot run `{ruff}`: {exc.strerror or exc}") from None
    if done.returncode != 0:
        errors = done.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = f": {errors[0]}" if errors else ""
        raise FormatError(f"{failed}`ruff format` exited with code {done.returncode}{detail}")
    return done.stdout.decode("utf-8")


def _inference_note(plan: Any) -> str:
    """What the inference passes changed, for the generated file's docstring."""
    done = []
    if plan.folded:
        done.append(f"{len(plan.folded)} batch norms folded into the convs before them")
    if plan.dropped:
        done.append(f"{len(plan.dropped)} dropout layers removed")
    if plan.fused:
        done.append(f"{len(plan.fused)} groups of parallel 1x1 convs fused into one conv each")
    if plan.channels_last:
        done.append("channels-last memory format")
    what = "; ".join(done) if done else "no pass changed it"
    return (
        f"Inference form ({what}), for the parameters it was generated with: load the "
        "state_dict of `compiler.optimize(compiler.build(spec))` into it, in eval mode."
    )


def _doc(cls: ClassDef, graph: ArchGraph, description: str | None) -> str | None:
    first = cls.members[0]
    if not first.path:
        return f"The `{graph.name}` network." if not description else None
    op = OPS.get(cls.block)
    if op is not None and op.composite:  # `seq` has none: its layers say what it does
        return op.code_doc
    return graph.block_docs.get(cls.block)


def codegen_file(result: Any, spec_path: str, optimize: str | None = None) -> str:
    """Generated code for a lint `Result` without errors."""
    spec = result.spec
    return generate(result.graph, spec_path, spec.source, spec.description, optimize)
