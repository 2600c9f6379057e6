"""Stage 5d: an optimising inference build.

Graph passes are small functions over a copy of the resolved graph, each returning what it did;
`optimize(module, "inference")` runs them, builds the optimised module from the rewritten graph
through the same lowering as `build`, and carries the trained weights over (folding batch norm
into the conv before it). `yarch codegen --optimize inference` prints the same rewritten graph.

Passes:
- `drop_dropout`: dropout is the identity in eval mode;
- `fold_batchnorm`: a BatchNorm whose input is a conv read by nothing else becomes part of the
  conv (`w' = w * g / sqrt(v + eps)`, `b' = (b - m) * g / sqrt(v + eps) + beta`);
- channels-last memory format for the whole model (a prologue statement and the weights).
Horizontal fusion of an Inception module's parallel 1x1 convs is not written yet.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .graph import ArchGraph, Node

MODES = ("inference",)


@dataclass
class Plan:
    """What the passes did, for carrying weights over."""

    folded: list[tuple[str, str]] = field(default_factory=list)  # (conv id, batch-norm id)
    dropped: list[str] = field(default_factory=list)
    channels_last: bool = False


def _remove(graph: ArchGraph, node_id: str) -> None:
    """Remove a one-input node; whatever read it reads its input instead."""
    g = graph.graph
    node = graph.node(node_id)
    (source,) = node.inputs
    for consumer in list(g.successors(node_id)):
        c = graph.node(consumer)
        c.inputs = [source if i == node_id else i for i in c.inputs]
        g.add_edge(source, consumer)
    g.remove_node(node_id)
    graph.order.remove(node_id)
    for inst in graph.instances.values():
        if inst.output == node_id:
            inst.output = source
        if inst.input == node_id:
            inst.input = source
    for name, out in list(graph.outputs.items()):
        if out == node_id:
            graph.outputs[name] = source
    graph.instance_outputs = {
        (source if k == node_id else k): v for k, v in graph.instance_outputs.items()
    }


def _only_reader(graph: ArchGraph, node_id: str) -> str | None:
    readers = list(graph.graph.successors(node_id))
    return readers[0] if len(readers) == 1 else None


def drop_dropout(graph: ArchGraph, plan: Plan) -> None:
    for node in list(graph.nodes()):
        if node.op.name == "dropout":
            _remove(graph, node.id)
            plan.dropped.append(node.id)


def fold_batchnorm(graph: ArchGraph, plan: Plan) -> None:
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
        _remove(graph, node.id)
        plan.folded.append((conv.id, node.id))


def channels_last(graph: ArchGraph, plan: Plan) -> None:
    plan.channels_last = len(graph.input_shape) == 3


PASSES: tuple[Callable[[ArchGraph, Plan], None], ...] = (
    drop_dropout,
    fold_batchnorm,
    channels_last,
)


def optimize_graph(graph: ArchGraph, mode: str = "inference") -> tuple[ArchGraph, Plan]:
    """A rewritten copy of `graph`, and what was done to it."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    rewritten = copy.deepcopy(graph)
    plan = Plan()
    for run in PASSES:
        run(rewritten, plan)
    return rewritten, plan


def lowered(graph: ArchGraph, plan: Plan) -> Any:
    from .lower import lower

    root = lower(graph)
    if plan.channels_last:
        root.prologue.append("x = x.contiguous(memory_format=torch.channels_last)")
    return root


def optimize(module: Any, mode: str = "inference") -> Any:
    """An optimised copy of a module made by `compiler.build`, with its weights carried over.

    The copy is for inference: it is returned in eval mode, and its outputs equal the plain
    module's in eval mode (within float rounding).
    """
    import torch

    from .torchbuild import instantiate

    graph: ArchGraph | None = module.__dict__.get("yarch_graph")
    if graph is None:
        raise ValueError("optimize() takes a module made by compiler.build()")
    rewritten, plan = optimize_graph(graph, mode)
    fast = instantiate(lowered(rewritten, plan), rewritten.name)
    fast.__dict__["yarch_graph"] = rewritten
    old = module.state_dict()
    new = fast.state_dict()
    with torch.no_grad():
        for key in new:
            if key in old:
                new[key].copy_(old[key])
        for conv_id, bn_id in plan.folded:
            _fold_weights(old, new, conv_id, bn_id, graph.node(bn_id))
    fast.load_state_dict(new, strict=True)
    fast.eval()
    if plan.channels_last:
        fast = fast.to(memory_format=torch.channels_last)
    return fast


def _fold_weights(old: dict, new: dict, conv: str, bn: str, node: Node) -> None:
    import torch

    scale = old[f"{bn}.weight"] / torch.sqrt(old[f"{bn}.running_var"] + node.args.eps)
    weight = old[f"{conv}.weight"] * scale.reshape(-1, 1, 1, 1)
    bias = old.get(f"{conv}.bias")
    bias = torch.zeros_like(scale) if bias is None else bias
    new[f"{conv}.weight"].copy_(weight)
    new[f"{conv}.bias"].copy_((bias - old[f"{bn}.running_mean"]) * scale + old[f"{bn}.bias"])
