"""Where each constructor argument of generated code comes from, in the spec's own terms.

Codegen writes one class per block type, whose constructor takes the block's parameters and
computes what the spec computes from them (`nn.Conv2d(planes, planes * 4, ...)`), and a
model class whose constructor takes the spec's parameters (`nn.Linear(1024, num_classes)`).
This module runs each layer's `torch_module` and shape rule again on `symbolic` numbers, in
the context of the class that constructs it (the model, or the nearest user block
instance), so that every argument that a spec expression gives carries that expression.
A block's input channels are its `in_channels` (or the parameter an `in:` of its first
layers names); a call site passes each parameter the expression of the instance's field, in
the calling class's terms. No torch import here.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

from .graph import ArchGraph, Instance, Node
from .ops.base import TorchCall
from .shapes import Run, _Ctx
from .symbolic import (
    Untranslatable,
    checked,
    fold,
    make,
    names_of,
    node_of,
    plain,
    substitute,
    symbolic,
    text,
    translate,
)

IN_CHANNELS = "in_channels"
_TEMPLATE = re.compile(r"\$\{([^}]*)\}")  # the `${...}` parts of a name template


@dataclass
class Context:
    """A class of generated code, as one instance (or the model) sees its names."""

    path: tuple[str, ...]  # () for the model
    names: dict[str, ast.expr]  # a spec name -> what the class's code writes for it
    values: dict[str, Any]  # a name the code writes -> its value in this instance
    inst: Instance | None = None
    # the instance's constructor arguments, in its caller's terms (name -> expression)
    call: dict[str, ast.expr] = field(default_factory=dict)
    input_channels: Any = None  # the block's input channels, as a symbolic number


@dataclass
class Trace:
    graph: ArchGraph
    # the paths of the containers that are classes of generated code (lowering's)
    classes: set[tuple[str, ...]] = field(default_factory=set)
    contexts: dict[tuple[str, ...], Context] = field(default_factory=dict)
    calls: dict[str, TorchCall] = field(default_factory=dict)  # node id -> symbolic call
    shapes: dict[str, tuple] = field(default_factory=dict)  # node id -> symbolic shape
    repeats: dict[tuple[str, ...], ast.expr] = field(default_factory=dict)  # group -> count
    # a group of named copies -> the f-string of their names, over the copy index `i`
    copy_names: dict[tuple[str, ...], str] = field(default_factory=dict)
    in_params: dict[str, str] = field(default_factory=dict)  # block -> its input's channels
    # a block's or repeat's output -> (the class that calls it, its shape there as its
    # `expect:` writes it: DenseNet's `expect: [$c1, 56, 56]`)
    expects: dict[str, tuple[tuple[str, ...], tuple]] = field(default_factory=dict)

    def is_block(self, inst: Instance | None) -> bool:
        return inst is not None and inst.block in self.graph.block_params and inst.repeat == 0

    def is_context(self, path: tuple[str, ...]) -> bool:
        """Whether the container at `path` is a class whose constructor the spec's
        expressions can write: a user block's, or a `seq`'s (or a repeat's) that is no
        nn.Sequential, which takes what it reads from around it as arguments."""
        inst = self.graph.instances.get(".".join(path))
        if inst is None:
            return False
        if self.is_block(inst):
            return True
        return path in self.classes and (inst.block == "seq" or inst.repeat > 0)

    def owner(self, scope: tuple[str, ...]) -> tuple[str, ...]:
        """The path of the class whose constructor builds what is in `scope`: the nearest
        context around it, or the model."""
        for k in range(len(scope), 0, -1):
            if self.is_context(scope[:k]):
                return scope[:k]
        return ()

    def indexed(self, path: tuple[str, ...], ctx: Context) -> tuple[dict, dict]:
        """`ctx`'s names and values, with a repeat's copy index `i` and count `n` where
        `path` is a copy of the repeat at `path[:-1]`."""
        group = self.graph.instances.get(".".join(path[:-1])) if path else None
        if group is None or not group.repeat or path[-1] not in group.copies:
            return ctx.names, ctx.values
        names = {**ctx.names, "i": ast.Name("i", ast.Load())}
        values = {**ctx.values, "i": group.copies.index(path[-1])}
        count = self.repeats.get(path[:-1])
        if count is not None:
            names["n"] = count
        return names, values

    def context(self, path: tuple[str, ...]) -> Context:
        found = self.contexts.get(path)
        if found is not None:
            return found
        if not path:
            params = self.graph.params
            ctx = Context((), {p: ast.Name(p, ast.Load()) for p in params}, dict(params))
            self.contexts[()] = ctx
            return ctx
        inst = self.graph.instances[".".join(path)]
        parent = self.context(self.owner(path[:-1]))
        names_at_call, values_at_call = self.indexed(path, parent)
        if self.is_block(inst):
            spec_params = self.graph.params
            names: dict[str, ast.expr] = {p: ast.Name(p, ast.Load()) for p in spec_params}
            values: dict[str, Any] = dict(spec_params)
            for p, value in inst.params.items():
                names[p] = ast.Name(p, ast.Load())
                values[p] = value
            ctx = Context(path, names, values, inst)
            # the call site: each parameter as the instance writes it, in the caller's terms
            defaults = self.graph.block_defaults.get(inst.block, {})
            for p, value in inst.params.items():
                raw = inst.args.get(p, defaults.get(p))
                if raw is None:
                    continue
                n = _node(symbolic(raw, value, names_at_call, values_at_call))
                if n is not None:
                    ctx.call[p] = n
            for p in spec_params:  # a spec parameter a block reads: passed on by name
                if p not in inst.params:
                    ctx.call[p] = parent.names[p]
        else:  # a seq's class reads its caller's names, passed on as they are
            inherited = {k: v for k, v in parent.names.items() if k != IN_CHANNELS}
            names = {k: ast.Name(k, ast.Load()) for k in inherited if k not in ("i", "n")}
            values = {k: v for k, v in parent.values.items() if k in names}
            ctx = Context(path, names, values, inst)
            ctx.call = {k: inherited[k] for k in names}
        self.contexts[path] = ctx
        # the input's channels: the parameter an `in:` of a layer reading the input names,
        # else `in_channels`
        shape = self.graph.node(inst.input).shape if inst.input in self.graph.graph else None
        if inst.input == ArchGraph.INPUT:
            shape = self.graph.input_shape
        if shape and isinstance(shape[0], int):
            channels: Any = shape[0]
            alias = self._alias(inst, ctx, shape[0])
            same = self.in_params.get(inst.block) if self.is_block(inst) else None
            if alias is None and same:
                # a parameter every instance gives the input's channels (MBConv's `inp`)
                alias = make(shape[0], names[same])
            if alias is not None:
                channels = alias
            elif IN_CHANNELS not in names:
                names[IN_CHANNELS] = ast.Name(IN_CHANNELS, ast.Load())
                channels = make(shape[0], names[IN_CHANNELS])
                ctx.values[IN_CHANNELS] = shape[0]
                outer = _node(self.channels_in(inst.input, parent.path))
                if outer is not None:
                    ctx.call[IN_CHANNELS] = outer
            ctx.input_channels = channels
        return ctx

    def _expects(self) -> None:
        for inst in self.graph.instances.values():
            raw = inst.args.get("expect")
            if not isinstance(raw, list) or inst.output not in self.graph.graph:
                continue
            shape = self.graph.node(inst.output).shape
            if not isinstance(shape, tuple) or len(shape) != len(raw):
                continue
            path = tuple(inst.id.split("."))
            caller = self.owner(path[:-1])
            names, values = self.indexed(path, self.context(caller))
            sizes = tuple(symbolic(r, d, names, values) for r, d in zip(raw, shape, strict=True))
            if any(_node(d) is not None and "i" in names_of(_node(d)) for d in sizes):
                continue
            if any(_node(d) is not None for d in sizes):
                self.expects[inst.output] = (caller, sizes)

    def _input_params(self) -> None:
        """For each block type, its first parameter that is the input's channels in every
        instance."""
        found: dict[str, list[str]] = {}
        for inst in self.graph.instances.values():
            if not self.is_block(inst) or inst.input is None:
                continue
            if inst.input == ArchGraph.INPUT:
                shape = self.graph.input_shape
            else:
                shape = (
                    self.graph.node(inst.input).shape if inst.input in self.graph.graph else None
                )
            if not shape or type(shape[0]) is not int:
                found[inst.block] = []
                continue
            mine = [p for p, v in inst.params.items() if type(v) is int and v == shape[0]]
            found[inst.block] = [p for p in found.get(inst.block, mine) if p in mine]
        self.in_params = {block: params[0] for block, params in found.items() if params}

    def _alias(self, inst: Instance, ctx: Context, channels: int) -> Any:
        for node_id in self.graph.members(inst.id):
            node = self.graph.node(node_id)
            raw = node.layer.fields.get("in") if node.layer is not None else None
            if node.inputs[:1] == [inst.input] and raw is not None:
                sym = symbolic(raw, channels, ctx.names, ctx.values)
                if _node(sym) is not None:
                    return sym
        return None

    def channels_in(self, node_id: str, path: tuple[str, ...]) -> Any:
        """The channels of `node_id`'s value, in the terms of the class at `path`."""
        shape = self.shape_in(node_id, path)
        return shape[0] if shape else None

    def shape_in(self, node_id: str, path: tuple[str, ...]) -> tuple | None:
        """The shape of `node_id`'s value, each size in the terms of the class at `path`
        where it has an expression there (the channels, wherever a permute moved them)."""
        if node_id == ArchGraph.INPUT:
            return tuple(self.graph.input_shape) or None
        node = self.graph.node(node_id)
        shape = node.shape
        if not shape or not isinstance(shape, tuple) or not all(type(d) is int for d in shape):
            return None
        declared = self.expects.get(node_id)
        if declared is not None and declared[0] == path:
            return declared[1]
        where = self.owner(node.scope)
        sym = self.shapes.get(node_id, shape)
        if where == path:
            return sym
        if where[: len(path)] == path:
            # made inside a class this one calls: its sizes in the caller's terms
            return tuple(self._lift(d, where, path) for d in sym)
        ctx = self.contexts.get(path)
        if (
            ctx is not None
            and ctx.inst is not None
            and node_id == ctx.inst.input
            and ctx.input_channels is not None
        ):
            return (ctx.input_channels, *shape[1:])
        return shape

    def _lift(self, size: Any, where: tuple[str, ...], path: tuple[str, ...]) -> Any:
        n = _node(size)
        if n is None:
            return plain(size)
        concrete = plain(size)
        while where != path and n is not None:
            ctx = self.context(where)
            n = substitute(n, ctx.call)
            where = self.owner(where[:-1])
        if n is not None:
            n = fold(n)
            if checked(n, self.context(path).values, concrete):
                return make(concrete, n)
        return concrete

    def run(self) -> None:
        self._input_params()
        for inst in self.graph.instances.values():
            if not inst.repeat or inst.repeat_raw is None:
                continue
            path = tuple(inst.id.split("."))
            ctx = self.context(self.owner(path[:-1]))
            try:
                n = translate(inst.repeat_raw, ctx.names)
            except Untranslatable:
                continue
            if not checked(n, ctx.values, inst.repeat):
                continue
            self.repeats[path] = n
            if isinstance(inst.names_raw, str):
                key = _fstring(inst.names_raw, ctx, inst, n)
                if key is not None:
                    self.copy_names[path] = key
        self._expects()
        run = Run(self.graph, self.graph.input_shape, sink=None)
        for node_id in self.graph.order:
            if node_id == ArchGraph.INPUT:
                continue
            node = self.graph.node(node_id)
            path = self.owner(node.scope)
            ctx = self.context(path)
            try:
                self._node(node, ctx, run)
            except Exception:
                continue

    def _node(self, node: Node, ctx: Context, run: Run) -> None:
        if node.layer is None or node.shape is None:
            return
        names, values = self.indexed((*node.scope, node.name), ctx)
        aliases = {(f.alias or name): name for name, f in type(node.args).model_fields.items()}
        update = {}
        for key, raw in node.layer.fields.items():
            attr = aliases.get(key)
            if attr is None or key in ("name", "from", "if", "repeat", "first", "expect"):
                continue
            value = getattr(node.args, attr)
            sym = symbolic(raw, value, names, values)
            if sym is not value:
                update[attr] = sym
        inputs = []
        for source, shape in zip(node.inputs, node.input_shapes, strict=False):
            if shape is None:
                return
            inputs.append(self.shape_in(source, ctx.path) or shape)
        args = node.args.model_copy(update=update) if update else node.args
        call = node.op.torch_module(args, inputs)  # type: ignore[arg-type]
        if call is not None:
            self.calls[node.id] = call
        if isinstance(node.shape, tuple) and node.shape and isinstance(node.shape[0], int):
            out = node.op.infer(args, inputs, _Ctx(run, node))  # type: ignore[arg-type]
            if (
                isinstance(out, tuple)
                and len(out) == len(node.shape)
                and all(plain(a) == b for a, b in zip(out, node.shape, strict=True))
            ):
                self.shapes[node.id] = out


def _fstring(template: str, ctx: Context, inst: Instance, count: ast.expr) -> str | None:
    """The copies' `names:` as an f-string over `i` (`f"denselayer{i + 1}"`), if it gives
    every copy its name."""
    names = {**ctx.names, "i": ast.Name("i", ast.Load()), "n": count}
    parts: list[str] = []
    at = 0
    for match in _TEMPLATE.finditer(template):
        parts.append(template[at : match.start()].replace("{", "{{").replace("}", "}}"))
        try:
            node = translate("${" + match.group(1) + "}", names)
        except Untranslatable:
            return None
        parts.append("{" + text(node) + "}")
        at = match.end()
    parts.append(template[at:].replace("{", "{{").replace("}", "}}"))
    source = 'f"' + "".join(parts) + '"'
    if '"' in "".join(parts) or "\\" in source:
        return None
    try:
        tree = ast.parse(source, mode="eval").body
    except SyntaxError:
        return None
    for k, name in enumerate(inst.copies):
        if not checked(tree, {**ctx.values, "i": k}, name):
            return None
    return source


def _node(value: Any) -> ast.expr | None:
    """The expression of a symbolic number; None for anything else."""
    n = node_of(value)
    return None if n is None or isinstance(n, ast.Constant) else n


def trace(graph: ArchGraph, classes: set[tuple[str, ...]]) -> Trace:
    t = Trace(graph, classes)
    t.run()
    return t
