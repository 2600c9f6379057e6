"""Stage 5a: the resolved graph -> a module tree with straight-line forward code.

This is the one lowering both back ends share: `build` instantiates it, generated code prints
it. Each block instance becomes a submodule named as in the spec, each op a module (or an
expression for `concat`, `add`, `reshape`), and each container gets a `forward` that is a list
of assignments in topological order: no graph is walked at run time. Pure Python: no torch.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from .graph import ArchGraph, Instance, Node
from .names import AMBIGUOUS, BUILTINS, CODE_NAMES, Namespace, identifier
from .ops.base import TorchCall

INF = float("inf")
# What a variable of forward must not be called: what forward code uses (`torch`, `F`,
# `getattr`, `float`), the named tuple of torchbuild (`Outputs`), ambiguous names (`l`)
_HIDDEN = BUILTINS | CODE_NAMES | AMBIGUOUS | {"Outputs"}


@dataclass(frozen=True)
class Statement:
    """`variable = expression`, computing the value of node `node`."""

    variable: str
    expression: str
    node: str
    args: tuple[str, ...] = ()  # the variables it reads, in the order of the node's inputs


@dataclass
class Leaf:
    """One op: a module attribute (`call`), or an expression in forward (`call` is None)."""

    attr: str
    node: Node
    call: TorchCall | None
    index: int


@dataclass
class Container:
    """A module: the model, a block instance, a `seq` or a repeat group."""

    attr: str
    path: tuple[str, ...]
    block: str
    input: str
    output: str | None
    index: int = 0
    sequential: bool = False
    # a block of several inputs: its inputs after the first, as (node id, the name it gives
    # them); `params` are the names forward takes them by (`skip`, or `skip_2` where taken)
    extra_inputs: list[tuple[str, str]] = field(default_factory=list)
    params: list[str] = field(default_factory=list)
    # a value crosses its boundary other than through its inputs and output (`from:
    # backbone.4`): it has no forward, and the forward around it calls its children
    opened: bool = False
    children: list[Leaf | Container] = field(default_factory=list)
    statements: list[Statement] = field(default_factory=list)
    training_statements: list[Statement] = field(default_factory=list)
    result: str = "x"
    # the model only: output name -> (variable, training only)
    outputs: dict[str, tuple[str, bool]] = field(default_factory=dict)
    # the model only: statements before the first layer (`x = x.contiguous(...)`)
    prologue: list[str] = field(default_factory=list)

    # `child` by attr, over the first `_indexed` children: a repeat of 200,000 layers asks for
    # every child of one container, which a scan made quadratic
    _by_attr: dict[str, Leaf | Container] = field(default_factory=dict, repr=False)
    _indexed: int = field(default=-1, repr=False)

    def child(self, attr: str) -> Leaf | Container:
        if self._indexed != len(self.children):  # children were added since
            self._by_attr = {}
            for c in self.children:
                self._by_attr.setdefault(c.attr, c)
            self._indexed = len(self.children)
        return self._by_attr[attr]


def attribute(attr: str, owner: str = "self") -> str:
    """`self.conv1`, or `self[0]`-free access for numbered children of non-sequential modules."""
    return f"{owner}.{attr}" if attr.isidentifier() else f"getattr({owner}, {attr!r})"


def _is_sequential(inst: Instance) -> bool:
    return inst.block == "seq" or inst.repeat > 0


def lower(graph: ArchGraph) -> Container:
    """The module tree of a graph that linted without errors."""
    live = _needed(graph, graph.outputs.values())
    eval_live = _needed(
        graph, (node_id for name, node_id in graph.outputs.items() if name not in graph.train_only)
    )

    root = Container("", (), "model", ArchGraph.INPUT, None)
    containers: dict[tuple[str, ...], Container] = {(): root}
    for inst in graph.instances.values():
        if inst.input is None or inst.output is None:
            continue  # a block whose layers are all disabled: it passes its input through
        path = tuple(inst.id.split("."))
        containers[path] = Container(
            path[-1],
            path,
            inst.block,
            inst.input,
            inst.output,
            sequential=_is_sequential(inst) and not inst.extra_inputs,
            extra_inputs=list(inst.extra_inputs),
        )
    # every container's children, in the order the spec created them (the state_dict order)
    first_index: dict[tuple[str, ...], int] = {}
    for node_id in graph.order:
        if node_id == ArchGraph.INPUT:
            continue
        node = graph.node(node_id)
        for depth in range(len(node.scope), 0, -1):
            first_index.setdefault(node.scope[:depth], node.index)
        call = node.op.torch_module(node.args, node.input_shapes)  # type: ignore[arg-type]
        if call is not None and _inplace(graph, node):
            call = replace(call, kwargs=(*call.kwargs, ("inplace", True, False)))
        containers[node.scope].children.append(Leaf(node.name, node, call, node.index))
    for path, container in containers.items():
        if path and path in first_index:
            container.index = first_index[path]
            containers[path[:-1]].children.append(container)
    for container in containers.values():
        container.children.sort(key=lambda c: c.index)
    # the live nodes inside each container (at any depth), in graph order: each container's
    # forward reads its own list instead of walking the whole graph
    inside = {
        path: [
            graph.node(n)
            for n in (graph.members(".".join(path)) if path else graph.order)
            if n in live and n != ArchGraph.INPUT
        ]
        for path in containers
    }
    opened = _opened(graph, containers, live)
    for container in containers.values():
        if container.path and container.path not in first_index:
            continue
        if container.path in opened:
            container.opened, container.sequential = True, False
            continue
        if container.path and container.output not in live:
            # a block whose result reaches no output (lint warns): its modules are kept, as
            # written, but nothing calls it
            container.sequential = False
            continue
        _forward(graph, container, containers, inside[container.path], eval_live, opened)
        # a chain of modules is an nn.Sequential, its children numbered 0, 1, 2 ... or named
        # (torchvision's DenseNet `features`: an nn.Sequential of an OrderedDict)
        if container.sequential and not is_chain(container):
            container.sequential = False
    return root


def _inplace(graph: ArchGraph, node: Node) -> bool:
    """Whether an activation may overwrite its input, as torchvision's `ReLU(inplace=True)`
    after a conv or a batch norm: its op allows it, and its one input is a fresh tensor
    (`Op.fresh_output`) that nothing else reads and that the network does not return."""
    if not node.op.inplace or len(node.inputs) != 1:
        return False
    (source,) = node.inputs
    if source == ArchGraph.INPUT or source in graph.outputs.values():
        return False
    producer = graph.node(source)
    return producer.op.fresh_output and graph.graph.out_degree(source) == 1


def _needed(graph: ArchGraph, results: Iterable[str]) -> set[str]:
    """The nodes that computing `results` runs: their upstream, and the upstream of every
    value a block that runs takes as an argument, read inside or not (its forward is called
    with all of them: a U-Net block whose `x` feeds only a dead layer still gets `x`)."""
    needed = graph.upstream(results)
    while True:
        missing = [
            value
            for inst in graph.instances.values()
            if inst.output is not None and inst.output in needed
            for value in (inst.input, *(node_id for node_id, _ in inst.extra_inputs))
            if value is not None and value not in needed
        ]
        if not missing:
            return needed
        needed |= graph.upstream(missing)


def _opened(
    graph: ArchGraph, containers: dict[tuple[str, ...], Container], live: set[str]
) -> set[tuple[str, ...]]:
    """The containers that a value enters other than as their input, or leaves other than as
    their output: a layer read from outside (`from: backbone.4`, torchvision's
    IntermediateLayerGetter) or a seq that reads several values. A module's forward takes one
    value and returns one, so these are opened: the forward around them calls their children."""

    def scope(node_id: str) -> tuple[str, ...]:
        return () if node_id == ArchGraph.INPUT else graph.node(node_id).scope

    # the values each container takes as its arguments: reading them is no crossing
    entries = {
        path: {c.input, *(node_id for node_id, _ in c.extra_inputs)}
        for path, c in containers.items()
    }
    reads = [(u, scope(v)) for u, v in graph.graph.edges if v in live]
    reads += [(node_id, ()) for node_id in graph.outputs.values()]
    opened: set[tuple[str, ...]] = set()
    for source, reader in reads:
        written = scope(source)
        common = 0
        while common < min(len(written), len(reader)) and written[common] == reader[common]:
            common += 1
        for depth in range(common + 1, len(reader) + 1):
            c = containers.get(reader[:depth])
            if c is not None and source not in entries[c.path]:
                opened.add(c.path)
        for depth in range(common + 1, len(written) + 1):
            c = containers.get(written[:depth])
            if c is not None and c.output != source:
                opened.add(c.path)
    return opened


@dataclass
class _Step:
    out: str  # the node id whose value the statement computes
    base: str  # the variable name it would like
    inputs: list[str]
    expr: Callable[[list[str]], str]
    training: bool


def _forward(
    graph: ArchGraph,
    c: Container,
    containers: dict[tuple[str, ...], Container],
    inside: list[Node],
    eval_live: set[str],
    opened: set[tuple[str, ...]],
) -> None:
    """Straight-line statements for `c`, over its own children and those of the opened
    containers within it; `inside` are the live nodes within `c`, in graph order."""
    steps: list[_Step] = []
    called: set[tuple[str, ...]] = set()
    depth = len(c.path)
    for node in inside:
        node_id = node.id
        training = not c.path and node_id not in eval_live
        if node.scope == c.path:
            leaf = c.child(node.name)
            assert isinstance(leaf, Leaf)
            steps.append(_Step(node_id, node.name, node.inputs, _leaf_expr(leaf), training))
        else:
            path = node.scope[: depth + 1]
            while path in opened and len(path) < len(node.scope):
                path = node.scope[: len(path) + 1]
            owner = "self"
            for attr in path[depth:-1]:
                owner = attribute(attr, owner)
            if path in opened:  # a layer of an opened container, called through it
                leaf = containers[path].child(node.name)
                assert isinstance(leaf, Leaf)
                expr = _leaf_expr(leaf, attribute(path[-1], owner))
                steps.append(_Step(node_id, node.name, node.inputs, expr, training))
                continue
            if path in called:
                continue
            called.add(path)
            sub = containers[path]
            assert sub.output is not None
            call = attribute(sub.attr, owner)
            reads = [sub.input, *(n for n, _ in sub.extra_inputs)]
            apply = lambda a, f=call: f"{f}({', '.join(a)})"  # noqa: E731
            steps.append(_Step(sub.output, sub.attr, reads, apply, training))
    # the training-only heads run after the eval path, under `if self.training:`
    steps = [s for s in steps if not s.training] + [s for s in steps if s.training]
    results = [c.output] if c.path else list(graph.outputs.values())
    last_use: dict[str, float] = {}
    for i, step in enumerate(steps):
        for value in step.inputs:
            last_use[value] = i
    for value in results:
        last_use[value] = float("inf")
    uses: dict[str, list[int]] = {}
    for i, step in enumerate(steps):
        for value in step.inputs:
            uses.setdefault(value, []).append(i)

    # the named tuple of generated code
    reserved = frozenset({f"{graph.model_class}Outputs"})
    var = {c.input: "x"}
    holders = {"x": c.input, "out": None}  # what the two chain variables hold
    # variables named after layers: `sum_2` for a layer named `sum`, `F_2` for `F` (the layer
    # keeps its own name as an attribute)
    names = Namespace(
        {"x", "out"}, taken=lambda n: n in reserved or n in _HIDDEN or keyword.iskeyword(n)
    )
    c.params = []
    for node_id, name in c.extra_inputs:  # forward's further arguments
        param = names.create_name(identifier(name))
        c.params.append(param)
        var.setdefault(node_id, param)  # a value given twice is read by its first name
    for i, step in enumerate(steps):
        args = [var[v] for v in step.inputs]
        # a value that only the next statement reads, as its one input, flows on in `x` (or
        # `out` while `x` is still needed), as people write it; other values get their name
        last = i == len(steps) - 1
        chained = (last and c.path and step.out == c.output) or (
            not last
            and uses.get(step.out) == [i + 1]
            and last_use.get(step.out) == i + 1
            and steps[i + 1].inputs == [step.out]
            and steps[i + 1].training == step.training
        )
        free = [n for n, held in holders.items() if held is None or last_use.get(held, -1) <= i]
        if chained and free:
            # keep the variable this statement reads, if it reads one of the two
            name = next((n for n in free if n in args), free[0])
            var[step.out], holders[name] = name, step.out
        else:
            var[step.out] = names.create_name(identifier(step.base))
        statement = Statement(var[step.out], step.expr(args), step.out, tuple(args))
        (c.training_statements if step.training else c.statements).append(statement)
    if c.path:
        assert c.output is not None
        c.result = var[c.output]
    else:
        c.outputs = {
            name: (var[node_id], name in graph.train_only)
            for name, node_id in graph.outputs.items()
        }


def _leaf_expr(leaf: Leaf, owner: str = "self") -> Callable[[list[str]], str]:
    node = leaf.node
    if leaf.call is None:
        return lambda args: node.op.torch_expr(node.args, args, node.input_shapes)  # type: ignore[arg-type]
    pad = node.op.torch_pad(node.args, node.input_shapes)  # type: ignore[arg-type]
    call = attribute(leaf.attr, owner)

    def apply(x: str) -> str:
        return node.op.torch_apply(node.args, call, x, node.input_shapes)  # type: ignore[arg-type]

    if pad is None:
        return lambda args: apply(args[0])
    pads, value = pad
    fill = f'float("{value}")' if value in (INF, -INF) else repr(value)
    extra = f", value={fill}" if value else ""
    return lambda args: apply(f"F.pad({args[0]}, {pads!r}{extra})")


def is_chain(c: Container) -> bool:
    """Children applied one after another to the input, each a module: an nn.Sequential."""
    if not c.children or len(c.statements) != len(c.children):
        return False
    previous = "x"
    for statement, child in zip(c.statements, c.children, strict=True):
        if isinstance(child, Leaf) and child.call is None:
            return False
        if statement.expression != f"{attribute(child.attr)}({previous})":
            return False
        previous = statement.variable
    return c.result == previous


def render_forward(
    c: Container,
    outputs_class: str,
    comment: Callable[[str], str | None] = lambda node_id: None,
    indent: str = "    ",
) -> list[str]:
    """The body of `c`'s forward, one line each; `comment(node_id)` may annotate a value.

    Both back ends print forward with this function, so `build` runs the code `codegen`
    writes. The model returns its one output, or a named tuple whose training-only fields are
    None in eval mode. An opened container has no forward: no lines.
    """
    if c.opened:
        return []
    lines: list[str] = []

    def emit(statement: Statement, pad: str) -> None:
        lines.append(f"{pad}{statement.variable} = {statement.expression}")
        note = comment(statement.node)
        if note:
            lines.append(f"{pad}# {note}")

    lines += [f"{indent}{line}" for line in c.prologue]
    for statement in c.statements:
        emit(statement, indent)
    if c.path:
        return [*lines, f"{indent}return {c.result}"]
    if len(c.outputs) == 1:
        ((variable, _),) = c.outputs.values()
        return [*lines, f"{indent}return {variable}"]
    # a training-only output computed under `if self.training:`, or, when the eval path
    # computes its value anyway (a head on a layer the main path reads), None in eval mode
    lazy = {s.variable for s in c.training_statements}
    training = [v for v, train_only in c.outputs.values() if train_only and v in lazy]
    if training:
        # declared with their type, as TorchScript needs for a value that may be None
        lines += [f"{indent}{variable}: torch.Tensor | None = None" for variable in training]
        lines.append(f"{indent}if self.training:")
        for statement in c.training_statements:
            emit(statement, indent + "    ")
    fields = ", ".join(
        f"{variable} if self.training else None"
        if train_only and variable not in lazy
        else variable
        for variable, train_only in c.outputs.values()
    )
    return [*lines, f"{indent}return {outputs_class}({fields})"]


def module_classes(c: Container) -> set[str]:
    """The torch classes of the modules in `c`'s tree (`Conv2d`), for its initialisation."""
    out: set[str] = set()
    for child in c.children:
        if isinstance(child, Container):
            out |= module_classes(child)
        elif child.call is not None:
            out.add(child.call.cls)
    return out
