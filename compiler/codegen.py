"""Stage 5c: readable, standalone PyTorch code from the shared lowering (`lower.py`).

The module tree is the one `build` instantiates and the forward code is printed by the same
function, so the generated module has the same submodule names, the same `state_dict` and the
same outputs. What codegen adds is what a person adds when writing the model by hand: one
class per block type, reused with constructor arguments (`Inception(480, 192, (96, 208),
(16, 48), 64)`), arguments named after the block's parameters, and `# N x C x H x W` comments.
Jinja2 lays out the file (`templates/model.py.j2`) from the classes found here, one statement
a line, and `ruff format` breaks the long lines, so the output passes `ruff check` and
`ruff format --check`. No torch import here.
"""

from __future__ import annotations

import functools
import math
import subprocess
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from .gcpause import no_cyclic_gc
from .graph import ArchGraph
from .lower import Container, Leaf, lower, render_forward
from .names import MAX_NAME, Namespace, class_name, class_names, safe_identifier
from .ops.base import OPS, TorchParameter, fmt_shape

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
    # per member: the values of `params`, in order
    values: dict[int, list[Any]] = field(default_factory=dict)
    # slot index -> the text that fills it in the class body, and whether it is a parameter
    slots: list[tuple[str, bool]] = field(default_factory=list)
    # (attribute, constructor expression, how a non-identifier attribute is registered) of
    # every submodule or bare parameter, in `state_dict` order
    children: list[tuple[str, str, str]] = field(default_factory=list)
    returns: str = "torch.Tensor"
    inputs: list[str] = field(default_factory=list)  # forward's arguments after `x`
    forward: list[str] = field(default_factory=list)  # its lines, indented relative to its body

    @property
    def doc_lines(self) -> list[str]:
        return docstring(self.doc, INDENT) if self.doc else []


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
        varies = len(set(column)) > 1 or len({type(v) for v in column}) > 1
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
    for k, (text, is_param) in enumerate(cls.slots):
        if is_param:
            head = text.split("[")[0].split(" ")[0]
            cls.slots[k] = (rename[head] + text[len(head) :], True)
    for i, m in enumerate(cls.members):
        cls.values[id(m)] = [named[n][i] for n in params]


def _construct(
    c: Container, slots: list[tuple[str, bool]], defs: dict[int, ClassDef], at: list[int]
) -> list[tuple[str, str, str]]:
    """(attribute, constructor expression, registering method) of every child, filling slots
    in order."""
    out: list[tuple[str, str, str]] = []

    def take(n: int) -> list[tuple[str, bool]]:
        start = at[0]
        at[0] += n
        return slots[start : start + n]

    for child in c.children:
        if isinstance(child, Container):
            if child.sequential:
                # the trailing comma keeps one module a line, as nn.Sequential is written
                inner = "".join(f"{e}, " for _, e, _ in _construct(child, slots, defs, at))
                out.append((child.attr, f"nn.Sequential({inner.rstrip()})", "add_module"))
            else:
                d = defs[id(child)]
                args = [t for t, _ in take(len(d.params))]
                out.append((child.attr, f"{d.name}({', '.join(args)})", "add_module"))
        elif child.call is not None:
            call = child.call
            values = take(len(call.args) + len(call.kwargs))
            args = [t for t, _ in values[: len(call.args)]]
            kwargs = [
                (k, text)
                for (k, v, default), (text, is_param) in zip(
                    call.kwargs, values[len(call.args) :], strict=True
                )
                if is_param or v != default  # a literal equal to torch's default is left out
            ]
            method = "register_parameter" if isinstance(call, TorchParameter) else "add_module"
            out.append((child.attr, call.construct(args, kwargs), method))
    return out


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
    for members in groups.values():
        first = members[0]
        if not first.path:
            name = model
        elif first.block == "seq":  # an anonymous sequence of named layers: ConvBnRelu
            name = names.namespace.create_name(
                _joined_name([ch.attr for ch in first.children], first)
            )
        else:
            name = names.for_block(first.block, _variant(first, groups))
        cls = ClassDef(name, first.block, members)
        for m in members:
            defs[id(m)] = cls
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
        cls.children = _construct(first, cls.slots, defs, [0])
        if first.path:
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
    paragraphs.append(f"Regenerate with `yarch codegen {spec_path}` rather than editing this file.")
    text = _template().render(
        docstring="\n\n".join(
            "\n".join(wrap(p, LINE_LENGTH, LINE_LENGTH - 3 if i == 0 else None))
            for i, p in enumerate(paragraphs)
        ),
        functional=any("F." in line for cls in classes for line in cls.forward),
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


def _variant(c: Container, groups: dict[tuple, list[Container]]) -> str:
    """`Downsample` for the variant of a block that has a `downsample` layer the others lack."""
    variants = [m[0] for m in groups.values() if m[0].block == c.block and m[0].path]
    if len(variants) < 2:
        return ""
    mine = {ch.attr for ch in c.children}
    common = set.intersection(*({ch.attr for ch in v.children} for v in variants))
    extra = sorted(mine - common)
    return _joined_name(extra, c) if extra else ""


def _joined_name(attrs: list[str], c: Container) -> str:
    """A class name made of layer names (`ConvBnRelu`), or, when they are many (DenseNet's 24
    layers, a repeat's named copies), of where the container stands (`Denseblock1`)."""
    joined = class_name("_".join(attrs))
    return joined if len(joined) <= MAX_NAME else class_name(c.attr)


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
