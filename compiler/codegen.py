"""Stage 5c: readable, standalone PyTorch code from the shared lowering (`lower.py`).

The module tree is the one `build` instantiates and the forward code is printed by the same
function, so the generated module has the same submodule names, the same `state_dict` and the
same outputs. What codegen adds is what a person adds when writing the model by hand: one
class per block type, reused with constructor arguments (`Inception(480, 192, (96, 208),
(16, 48), 64)`), arguments named after the block's parameters, and `# N x C x H x W` comments.
Jinja2 lays out the file (`templates/model.py.j2`); the code is laid out as `ruff format`
would, so the output passes `ruff check` and `ruff format --check`. No torch import here.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from .gcpause import no_cyclic_gc
from .graph import ArchGraph
from .lower import Container, Leaf, lower, render_forward
from .names import class_name, safe_identifier, unique
from .ops.base import OPS, fmt_shape

LINE_LENGTH = 100
INDENT = "    "
RESERVED = frozenset({"torch", "nn", "F", "NamedTuple", "Tensor", "self", "x", "out"})


# --- layout ------------------------------------------------------------------------------


@dataclass
class Call:
    """`head(arg, ...)`; `expanded` keeps one argument per line (ruff's magic trailing comma)."""

    head: str
    args: list[Any]  # str or Call
    expanded: bool = False
    brackets: str = "()"  # "[]" with an empty head: a list

    def flat(self) -> str | None:
        if self.expanded:
            return None
        parts = []
        for arg in self.args:
            text = arg if isinstance(arg, str) else arg.flat()
            if text is None:
                return None
            parts.append(text)
        return f"{self.head}{self.brackets[0]}{', '.join(parts)}{self.brackets[1]}"


def layout(expr: str | Call, indent: str, prefix: str = "", suffix: str = "") -> list[str]:
    """Lines for `prefix + expr + suffix`, broken as ruff format breaks them."""
    if isinstance(expr, str):
        return [f"{indent}{prefix}{expr}{suffix}"]
    flat = expr.flat()
    if flat is not None and len(indent + prefix + flat + suffix) <= LINE_LENGTH:
        return [f"{indent}{prefix}{flat}{suffix}"]
    inner = indent + INDENT
    joined = flat[len(expr.head) + 1 : -1] if flat is not None else None
    start, end = f"{indent}{prefix}{expr.head}{expr.brackets[0]}", f"{indent}{expr.brackets[1]}"
    if joined is not None and len(inner + joined) <= LINE_LENGTH:
        return [start, inner + joined, end + suffix]
    lines = [start]
    for arg in expr.args:
        lines += layout(arg, inner, suffix=",")
    return [*lines, end + suffix]


# --- classes -----------------------------------------------------------------------------


@dataclass
class ClassDef:
    name: str
    block: str
    members: list[Container]
    doc: str | None = None
    params: list[tuple[str, str]] = field(default_factory=list)  # (name, type hint)
    # per member: the values of `params`, in order
    values: dict[int, list[Any]] = field(default_factory=dict)
    # slot index -> the text that fills it in the class body, and whether it is a parameter
    slots: list[tuple[str, bool]] = field(default_factory=list)
    base: str = "nn.Module"
    body: list[str] = field(default_factory=list)

    @property
    def doc_lines(self) -> list[str]:
        return docstring(self.doc, INDENT) if self.doc else []


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
    """A docstring on one line if it fits, else wrapped with the quotes on their own line."""
    if len(" ".join(text.split())) + len(indent) + 6 <= LINE_LENGTH:  # it might fit
        one = wrap(text, LINE_LENGTH)
        if len(one) == 1 and width(f'{indent}"""{one[0]}"""') <= LINE_LENGTH:
            return [f'{indent}"""{one[0]}"""']
    lines = wrap(text, LINE_LENGTH - len(indent) - 3)
    if not lines:
        return []
    return [f'{indent}"""{lines[0]}', *(f"{indent}{line}" for line in lines[1:]), f'{indent}"""']


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
    return (c.block, c.sequential, forward, tuple(children))


def _values(c: Container, defs: dict[int, ClassDef]) -> list[Any]:
    """The concrete value of every slot of `c`'s constructor body, in order."""
    out: list[Any] = []
    for child in c.children:
        if isinstance(child, Container):
            out += _values(child, defs) if child.sequential else defs[id(child)].values[id(child)]
        elif child.call is not None:
            out += _leaf_values(child)
    return out


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
    return [(n if n.isidentifier() else f"p{n}", w) for n, w in out]


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
    for j, column in enumerate(columns):
        name, width = fallback[j]
        varies = len(set(column)) > 1 or len({type(v) for v in column}) > 1
        expr = _match(column, named, search) if varies or width else None
        if expr is None and varies:
            expr, n = name, 1
            while expr in named:  # a block parameter of that name holds other values
                n += 1
                expr = f"{name}_{n}"
            if expr not in named:
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
    for k, (text, is_param) in enumerate(cls.slots):
        if is_param:
            head = text.split("[")[0].split(" ")[0]
            cls.slots[k] = (rename[head] + text[len(head) :], True)
    for i, m in enumerate(cls.members):
        cls.values[id(m)] = [named[n][i] for n in params]


def _construct(
    c: Container, slots: list[tuple[str, bool]], defs: dict[int, ClassDef], at: list[int]
) -> list[tuple[str, Call | str]]:
    """(attribute, constructor expression) of every child, filling slots in order."""
    out: list[tuple[str, Call | str]] = []

    def take(n: int) -> list[tuple[str, bool]]:
        start = at[0]
        at[0] += n
        return slots[start : start + n]

    for child in c.children:
        if isinstance(child, Container):
            if child.sequential:
                inner = _construct(child, slots, defs, at)
                out.append((child.attr, Call("nn.Sequential", [e for _, e in inner], True)))
            else:
                d = defs[id(child)]
                out.append((child.attr, Call(d.name, [t for t, _ in take(len(d.params))])))
        elif child.call is not None:
            call = child.call
            values = take(len(call.args) + len(call.kwargs))
            args = [t for t, _ in values[: len(call.args)]]
            for (k, v, default), (text, is_param) in zip(
                call.kwargs, values[len(call.args) :], strict=True
            ):
                if is_param or v != default:  # a literal equal to torch's default is left out
                    args.append(f"{k}={text}")
            out.append((child.attr, Call(f"nn.{call.cls}", args)))
    return out


def _init_lines(cls: ClassDef, defs: dict[int, ClassDef]) -> list[str]:
    pad = INDENT * 2
    params = "".join(f", {n}: {t}" for n, t in cls.params)
    head = f"{INDENT}def __init__(self{params}) -> None:"
    if len(head) > LINE_LENGTH:
        head_lines = [f"{INDENT}def __init__(", f"{pad}self,"]
        head_lines += [f"{pad}{n}: {t}," for n, t in cls.params]
        head_lines.append(f"{INDENT}) -> None:")
    else:
        head_lines = [head]
    lines = [*head_lines, f"{pad}super().__init__()"]
    for attr, expr in _construct(cls.members[0], cls.slots, defs, [0]):
        if attr.isidentifier():
            lines += layout(expr, pad, prefix=f"self.{attr} = ")
        else:
            lines += layout(Call("self.add_module", [repr(attr), expr]), pad)
    return lines


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
    keys: dict[int, tuple] = {}
    groups: dict[tuple, list[Container]] = defaultdict(list)
    for c in containers:
        keys[id(c)] = _structure(c, keys)
        if not c.sequential:
            groups[keys[id(c)]].append(c)
    model = class_name(graph.name)
    taken = set(RESERVED) | {model, f"{model}Outputs"}  # the model's names are its own
    # no class may be called like a constructor argument, which would hide it
    taken |= {p for inst in graph.instances.values() for p in inst.params}
    defs: dict[int, ClassDef] = {}
    classes: list[ClassDef] = []
    for members in groups.values():
        first = members[0]
        if not first.path:
            name = model
        elif first.block == "seq":  # an anonymous sequence of named layers: ConvBnRelu
            name = unique(class_name("_".join(ch.attr for ch in first.children)), taken)
        else:
            name = unique(class_name(first.block) + _variant(first, groups), taken)
        cls = ClassDef(name, first.block, members)
        for m in members:
            defs[id(m)] = cls
        if first.path:
            _parameterize(cls, graph, defs)
        else:
            cls.slots = [(literal(v), False) for v in _values(first, defs)]
            cls.values[id(first)] = []
        classes.append(cls)

    outputs = f"{model}Outputs"
    needs_functional = False
    for cls in classes:
        first = cls.members[0]
        cls.doc = _doc(cls, graph, description)
        is_root = not first.path
        comment = (lambda n: _shape_comment(graph, n)) if is_root else (lambda n: None)
        forward = render_forward(first, outputs, comment, INDENT * 2)
        forward = [line for statement in forward for line in _wrap_statement(statement)]
        needs_functional |= any("F." in line for line in forward)
        returns = "torch.Tensor"
        if is_root and len(first.outputs) > 1:
            returns = outputs
        start = []
        if is_root and graph.input_shape:
            start = [f"{INDENT * 2}# N x {fmt_shape(graph.input_shape).replace('x', ' x ')}"]
        cls.body = [
            *_init_lines(cls, defs),
            "",
            f"{INDENT}def forward(self, x: torch.Tensor) -> {returns}:",
            *start,
            *forward,
        ]
    root_def = defs[id(root)]
    classes.remove(root_def)
    classes.append(root_def)  # blocks first, the model last
    if len(root.outputs) > 1:
        fields = [
            f"{INDENT}{name}: torch.Tensor{' | None' if train_only else ''}"
            for name, (_, train_only) in root.outputs.items()
        ]
        tuple_def = ClassDef(outputs, "outputs", [], doc=None, base="NamedTuple", body=fields)
        tuple_def.doc = "The model's outputs; training-only ones are None in eval mode."
        classes.insert(len(classes) - 1, tuple_def)
    stdlib = ["from typing import NamedTuple"] if len(root.outputs) > 1 else []
    imports = ["import torch"]
    if needs_functional:
        imports.append("import torch.nn.functional as F")
    imports.append("from torch import nn")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )
    title = (description or f"The `{graph.name}` network").rstrip(".") + "."
    paragraphs = [title, f"Generated by yarch from `{spec_path}`."]
    if source:
        paragraphs[-1] += f" Source: {source}."
    paragraphs.append(f"Regenerate with `yarch codegen {spec_path}` rather than editing this file.")
    text = env.get_template("model.py.j2").render(
        docstring="\n\n".join(
            "\n".join(wrap(p, LINE_LENGTH, LINE_LENGTH - 3 if i == 0 else None))
            for i, p in enumerate(paragraphs)
        ),
        stdlib=stdlib,
        imports=imports,
        classes=classes,
    )
    return text


def _variant(c: Container, groups: dict[tuple, list[Container]]) -> str:
    """`Downsample` for the variant of a block that has a `downsample` layer the others lack."""
    variants = [m[0] for m in groups.values() if m[0].block == c.block and m[0].path]
    if len(variants) < 2:
        return ""
    mine = {ch.attr for ch in c.children}
    common = set.intersection(*({ch.attr for ch in v.children} for v in variants))
    extra = sorted(mine - common)
    return class_name("_".join(extra)) if extra else ""


def _wrap_statement(line: str) -> list[str]:
    """Break a long line of forward (`name = call(...)`, `name = a + b`, `return T(...)`) as
    ruff would."""
    if len(line) <= LINE_LENGTH:
        return [line]
    indent = line[: len(line) - len(line.lstrip())]
    body = line.strip()
    if re.fullmatch(r"(\w+ = )+None", body):  # the training-only outputs, one per line
        return [f"{indent}{name} = None" for name in body.split(" = ")[:-1]]
    if body.startswith("return "):
        pre, value = "return ", body[len("return ") :]
    elif " = " in body:
        target, _, value = body.partition(" = ")
        pre = f"{target} = "
    else:
        pre, value = "", body
    terms = _split_args(value, " + ")
    if len(terms) > 1:  # `a + b + c`: in parentheses, one term a line if they do not fit
        inner = indent + INDENT
        if len(inner + value) <= LINE_LENGTH:
            return [f"{indent}{pre}(", inner + value, f"{indent})"]
        rest = [f"{inner}+ {term}" for term in terms[1:]]
        return [f"{indent}{pre}(", inner + terms[0], *rest, f"{indent})"]
    return layout(_parse_call(value), indent, prefix=pre)


def _parse_call(text: str) -> str | Call:
    """`f(a, [b, c])` as a `Call` (lists too), so that `layout` can break it; other text as is."""
    if text.startswith("[") and text.endswith("]") and _closes_at_end(text):
        return Call("", [_parse_call(a) for a in _split_args(text[1:-1])], brackets="[]")
    match = re.fullmatch(r"([A-Za-z_][\w.]*)\((.*)\)", text, re.DOTALL)
    if match and _closes_at_end(text[len(match.group(1)) :]):
        return Call(match.group(1), [_parse_call(a) for a in _split_args(match.group(2))])
    return text


def _closes_at_end(text: str) -> bool:
    """Whether the bracket that opens `text` is closed by its last character."""
    depth = 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                return i == len(text) - 1
    return False


def _split_args(text: str, sep: str = ",") -> list[str]:
    """`text` split at `sep` outside brackets and string literals."""
    out, depth, current, quote = [], 0, "", ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                current += text[i : i + 2]
                i += 2
                continue
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if not quote and depth == 0 and text.startswith(sep, i):
            out.append(current.strip())
            current = ""
            i += len(sep)
            continue
        current += ch
        i += 1
    if current.strip():
        out.append(current.strip())
    return out


def _doc(cls: ClassDef, graph: ArchGraph, description: str | None) -> str | None:
    first = cls.members[0] if cls.members else None
    if first is None:
        return cls.doc
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
