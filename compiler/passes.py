"""Stage 5d: an optimising inference build.

Graph passes are small functions over a copy of the resolved graph, each returning what it did;
`optimize(module, "inference")` runs them, builds the optimised module from the rewritten graph
through the same lowering as `build`, and carries the trained weights over (folding batch norm
into the conv before it). `yarch codegen --optimize inference` prints the same rewritten graph.

Passes:
- `drop_dropout`: dropout is the identity in eval mode;
- `fold_batchnorm`: a BatchNorm whose input is a conv read by nothing else becomes part of the
  conv (`w' = w * g / sqrt(v + eps)`, `b' = (b - m) * g / sqrt(v + eps) + beta`);
- `fuse_parallel_1x1`: the 1x1 convs that read the same value (an Inception module's branch
  heads) become one conv whose output is sliced per branch (horizontal fusion); when each of
  them feeds only a ReLU, one ReLU runs on the fused output;
- channels-last memory format for the whole model (a prologue statement and the weights).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from .gcpause import no_cyclic_gc
from .graph import ArchGraph, Node
from .names import Namespace
from .ops.base import NodeArgs, Op

MODES = ("inference",)


@dataclass
class Plan:
    """What the passes did, for carrying weights over."""

    folded: list[tuple[str, str]] = field(default_factory=list)  # (conv id, batch-norm id)
    dropped: list[str] = field(default_factory=list)
    # (fused conv id, the conv ids it replaces, in the order of its output channels)
    fused: list[tuple[str, list[str]]] = field(default_factory=list)
    channels_last: bool = False


def _only_reader(graph: ArchGraph, node_id: str) -> str | None:
    readers = list(graph.graph.successors(node_id))
    return readers[0] if len(readers) == 1 else None


def drop_dropout(graph: ArchGraph, plan: Plan) -> None:
    with graph.editing():
        for node in list(graph.nodes()):
            if node.op.name == "dropout":
                graph.remove_node(node.id, node.inputs[0])
                plan.dropped.append(node.id)


def fold_batchnorm(graph: ArchGraph, plan: Plan) -> None:
    with graph.editing():
        for node in list(graph.nodes()):
            if node.op.name != "bn" or len(node.inputs) != 1 or not node.args.affine:
                continue
            conv = graph.node(node.inputs[0])
            if (
                conv.op.name != "conv"
                or conv.scope != node.scope
                or _only_reader(graph, conv.id) != node.id
                or conv.id in graph.outputs.values()
            ):
                continue
            conv.args = conv.args.model_copy(update={"bias": True})
            conv.params = conv.op.count_params(conv.args, conv.input_shapes, conv.shape)  # type: ignore[arg-type]
            graph.remove_node(node.id, conv.id)
            plan.folded.append((conv.id, node.id))


class SliceArgs(NodeArgs):
    start: int
    stop: int


class ChannelSlice(Op):
    """Channels `start:stop` of its input: a branch's share of a fused conv. Not registered:
    only `fuse_parallel_1x1` writes it."""

    name = "channel_slice"
    Args = SliceArgs
    passthrough = False

    @classmethod
    def torch_expr(cls, args: SliceArgs, inputs: list[str], shapes: list[Any]) -> str:
        return f"{inputs[0]}[:, {args.start}:{args.stop}]"


def _pointwise(node: Node, source: str) -> bool:
    """A 1x1 conv with stride 1 and no padding that reads `source` alone."""
    if node.op.name != "conv" or node.inputs != [source]:
        return False
    a = node.args
    return (
        a.kernel == (1, 1)
        and a.stride == (1, 1)
        and a.padding in ((0, 0), "same")
        and a.groups == 1
        and a.dilation == (1, 1)
    )


def _common_scope(scopes: list[tuple[str, ...]]) -> tuple[str, ...]:
    first = scopes[0]
    n = 0
    while n < len(first) and all(len(s) > n and s[n] == first[n] for s in scopes):
        n += 1
    return first[:n]


def _fusable_group(graph: ArchGraph, source: str) -> list[Node]:
    """The 1x1 convs reading `source` that can share one conv: inside the common block, each
    block between it and a conv may read `source` through that conv only."""
    g = graph.graph
    outputs = set(graph.outputs.values())
    convs = [
        graph.node(r)
        for r in g.successors(source)
        if _pointwise(graph.node(r), source) and r not in outputs
    ]
    if len(convs) < 2:
        return []
    convs.sort(key=lambda n: n.index)
    scope = _common_scope([c.scope for c in convs])
    conv_ids = {c.id for c in convs}
    readers = [graph.node(r) for r in g.successors(source) if r not in conv_ids]
    for conv in convs:
        for depth in range(len(scope) + 1, len(conv.scope) + 1):
            inner = conv.scope[:depth]
            if any(r.scope[:depth] == inner for r in readers):
                return []  # the block reads `source` some other way too: leave it be
    return convs


def _relus_after(graph: ArchGraph, convs: list[Node]) -> list[Node] | None:
    """The ReLU each conv feeds, if each feeds one ReLU and nothing else."""
    outputs = set(graph.outputs.values())
    relus = []
    for conv in convs:
        reader = _only_reader(graph, conv.id)
        if reader is None or reader in outputs:
            return None
        node = graph.node(reader)
        if node.op.name != "relu" or node.inputs != [conv.id]:
            return None
        relus.append(node)
    return relus


def _fresh_id(
    graph: ArchGraph, scope: tuple[str, ...], name: str, spaces: dict[tuple[str, ...], Namespace]
) -> tuple[str, str]:
    """An id `name`, `name_2`, ... free in `scope`. One namespace per scope counts on where
    it got to, so that the thousandth fusion in one block does not try 999 taken ids."""
    if scope not in spaces:

        def taken(n: str) -> bool:
            key = ".".join((*scope, n))
            return key in graph.graph or key in graph.instances

        spaces[scope] = Namespace(taken=taken)
    fresh = spaces[scope].create_name(name)
    return ".".join((*scope, fresh)), fresh


def fuse_parallel_1x1(graph: ArchGraph, plan: Plan) -> None:
    g = graph.graph
    spaces: dict[tuple[str, ...], Namespace] = {}
    with graph.editing():  # the order and instances are brought up to date once, at the end
        for source in list(graph.order):
            if source in g:
                _fuse(graph, plan, source, spaces)


def _fuse(
    graph: ArchGraph, plan: Plan, source: str, spaces: dict[tuple[str, ...], Namespace]
) -> None:
    """Fuse the 1x1 convs that read `source`, if they can be."""
    convs = _fusable_group(graph, source)
    if not convs:
        return
    relus = _relus_after(graph, convs)
    scope = _common_scope([c.scope for c in convs])
    sizes = [c.args.out for c in convs]
    first = convs[0]
    fused_id, fused_name = _fresh_id(graph, scope, "fused_1x1", spaces)
    args = first.args.model_copy(
        update={"out": sum(sizes), "bias": any(c.args.bias for c in convs), "in_": None}
    )
    shape = (sum(sizes), *first.shape[1:])  # type: ignore[index]
    fused = Node(
        fused_id,
        fused_name,
        first.op,
        args,
        first.layer,
        scope,
        [source],
        first.index,
        shape=shape,
        input_shapes=list(first.input_shapes),
    )
    fused.params = fused.op.count_params(args, fused.input_shapes, shape)  # type: ignore[arg-type]
    fused.macs = sum(c.macs for c in convs)
    new = [fused]
    value = fused_id
    if relus is not None and all(r.scope == c.scope for r, c in zip(relus, convs, strict=True)):
        relu_id, relu_name = _fresh_id(graph, scope, "fused_relu", spaces)
        r0 = relus[0]
        new.append(
            Node(
                relu_id,
                relu_name,
                r0.op,
                r0.args,
                r0.layer,
                scope,
                [fused_id],
                r0.index,
                shape=shape,
                input_shapes=[shape],
            )
        )
        value = relu_id
    # each branch reads its channels of the fused value, sliced in the common block
    fuse_relu = value != fused_id
    replaced = relus if fuse_relu and relus is not None else convs
    start = 0
    for conv in convs:
        top = conv.scope[len(scope)] if len(conv.scope) > len(scope) else conv.name
        slice_id, slice_name = _fresh_id(graph, scope, f"{top}_in", spaces)
        stop = start + conv.args.out
        new.append(
            Node(
                slice_id,
                slice_name,
                ChannelSlice,
                SliceArgs(start=start, stop=stop),
                conv.layer,
                scope,
                [value],
                conv.index,
                shape=(stop - start, *shape[1:]),
                input_shapes=[shape],
            )
        )
        start = stop
    graph.insert(new, before=first.id)  # new nodes go before the first conv they replace
    for conv, old, piece in zip(convs, replaced, new[-len(convs) :], strict=True):
        # the blocks between the common block and the branch now take the slice
        for depth in range(len(scope) + 1, len(conv.scope) + 1):
            inst = graph.instances.get(".".join(conv.scope[:depth]))
            if inst is not None and inst.input == source:
                graph.set_instance_input(inst.id, piece.id)
        # the conv (and its ReLU) become the slice: their readers read it instead
        if old is not conv:
            graph.remove_node(old.id, piece.id)
        graph.remove_node(conv.id, piece.id)
    plan.fused.append((fused_id, [c.id for c in convs]))


def channels_last(graph: ArchGraph, plan: Plan) -> None:
    plan.channels_last = len(graph.input_shape) == 3


PASSES: tuple[Callable[[ArchGraph, Plan], None], ...] = (
    drop_dropout,
    fold_batchnorm,
    fuse_parallel_1x1,
    channels_last,
)


@no_cyclic_gc()
def optimize_graph(
    graph: ArchGraph, mode: str = "inference", without: Collection[str] = ()
) -> tuple[ArchGraph, Plan]:
    """A rewritten copy of `graph`, and what was done to it; `without` names passes to skip."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    unknown = set(without) - {p.__name__ for p in PASSES}
    if unknown:
        names = ", ".join(p.__name__ for p in PASSES)
        raise ValueError(f"unknown passes {sorted(unknown)}: the passes are {names}")
    rewritten = graph.copy()
    plan = Plan()
    for run in PASSES:
        if run.__name__ not in without:
            run(rewritten, plan)
    return rewritten, plan


def lowered(graph: ArchGraph, plan: Plan) -> Any:
    from .lower import lower

    root = lower(graph)
    if plan.channels_last:
        root.prologue.append("x = x.contiguous(memory_format=torch.channels_last)")
    return root


def optimize(module: Any, mode: str = "inference", *, without: Collection[str] = ()) -> Any:
    """An optimised copy of a module made by `compiler.build`, with its weights carried over.

    The copy is for inference: it is returned in eval mode, and its outputs equal the plain
    module's in eval mode (within float rounding). `without` names passes to skip
    (`without=["fuse_parallel_1x1"]`).
    """
    import torch

    from .torchbuild import instantiate

    graph: ArchGraph | None = module.__dict__.get("yarch_graph")
    if graph is None:
        raise ValueError("optimize() takes a module made by compiler.build()")
    rewritten, plan = optimize_graph(graph, mode, without)
    fast = instantiate(lowered(rewritten, plan), rewritten.model_class)
    fast.__dict__["yarch_graph"] = rewritten
    old = module.state_dict()
    new = fast.state_dict()
    with torch.no_grad():
        weights = dict(old)
        for conv_id, bn_id in plan.folded:
            _fold_weights(old, weights, conv_id, bn_id, graph.node(bn_id))
        for fused_id, conv_ids in plan.fused:
            _fuse_weights(weights, fused_id, conv_ids)
        for key in new:
            new[key].copy_(weights[key])
    fast.load_state_dict(new, strict=True)
    fast.eval()
    if plan.channels_last:
        fast = fast.to(memory_format=torch.channels_last)
    return fast


def _fold_weights(old: dict, weights: dict, conv: str, bn: str, node: Node) -> None:
    """`weights[conv]` := the conv with batch norm `bn` (its statistics from `old`) folded in."""
    import torch

    # the conv as folded so far: conv -> bn -> bn folds twice
    scale = old[f"{bn}.weight"] / torch.sqrt(old[f"{bn}.running_var"] + node.args.eps)
    bias = weights.get(f"{conv}.bias")
    bias = torch.zeros_like(scale) if bias is None else bias
    weight = weights[f"{conv}.weight"]
    # one scale per output channel, whatever the conv's rank (Conv1d, 2d, 3d)
    weights[f"{conv}.weight"] = weight * scale.reshape(-1, *[1] * (weight.dim() - 1))
    weights[f"{conv}.bias"] = (bias - old[f"{bn}.running_mean"]) * scale + old[f"{bn}.bias"]


def _fuse_weights(weights: dict, fused: str, convs: list[str]) -> None:
    """`weights[fused]` := the convs' weights stacked along the output channels."""
    import torch

    stack = [weights[f"{c}.weight"] for c in convs]
    weights[f"{fused}.weight"] = torch.cat(stack)
    if any(f"{c}.bias" in weights for c in convs):
        weights[f"{fused}.bias"] = torch.cat(
            [
                weights.get(f"{c}.bias", torch.zeros(w.shape[0]))
                for c, w in zip(convs, stack, strict=True)
            ]
        )
