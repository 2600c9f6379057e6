"""Stage 3: a validated spec -> `ArchGraph`, in four steps run in order:

1. `params`: the spec's parameters, as the chosen scale and `--set` leave them, and the input
   shape;
2. `blocks`: the block definitions and the layers as written, normalized (and the name policy
   of block types and their classes);
3. `expand` (under the size guard of `limits`): layers, blocks, repeats and composites into
   nodes and block instances, every name registered;
4. `link`: references looked up in the scope they were written in (`input` names the scope's
   input), edges added, nodes ordered, cycles reported, outputs found.

A broken layer registers its name as broken, so references to it do not cascade into more
errors.
"""

from __future__ import annotations

from typing import Any

from .blocks import define_blocks, normalize_list
from .diagnostics import Diagnostic, error, warning
from .expand import Expander
from .expr import is_reference
from .graph import ArchGraph, Node
from .init import problem as init_problem
from .limits import TooLarge, check_size
from .link import Linker, Ref
from .loader import Document
from .names import Suggestions
from .ops import NodeArgs
from .ops.base import InputOp
from .params import Parameters
from .schema import Spec
from .syntax import RawLayer


def resolve(
    doc: Document,
    spec: Spec,
    overrides: dict[str, Any] | None = None,
    scale: str | None = None,
) -> tuple[ArchGraph, list[Diagnostic]]:
    diags: list[Diagnostic] = []
    suggest = Suggestions()  # one budget of did-you-mean comparisons for the whole run
    graph = ArchGraph(spec.name or "model", ())
    graph.class_ = spec.class_
    graph.init = spec.init or "none"
    why = init_problem(graph.init, graph.model_class)
    if why:
        diags.append(
            error(
                "invalid-value",
                why,
                doc.span(("init",)),
                help="use `init: kaiming` (He et al., as torchvision's ResNet) or `init: none`",
            )
        )

    params = Parameters(doc, spec, diags, suggest, overrides, scale)
    env = params.top_env()
    graph.params = {name: p.value for name, p in env.params.items()}
    row = spec.scales.get(params.scale) if params.scale is not None else None
    scaled = set(row.model_extra or {}) if row is not None else set()
    graph.param_exprs = {
        name: value
        for name, value in spec.params.items()
        if is_reference(value) and name not in scaled and name not in (overrides or {})
    }
    if params.scale is not None:
        graph.scale = params.scale
    graph.input_shape = params.input_shape(env)
    diags += hwc_input(doc, graph.input_shape)
    add_input(doc, graph)

    blocks = define_blocks(doc, spec, graph, diags)
    items = normalize_list(doc, spec.layers, ("layers",), blocks, diags)

    linker = Linker(graph, diags, suggest)
    linker.targets["input"] = ArchGraph.INPUT
    expander = Expander(doc, graph, diags, params, blocks, linker)
    try:
        check_size(items, {name: block.layers for name, block in blocks.items()})
        last = expander.expand_list(items, (), env, Ref((), "input", None), numbered=False)
    except TooLarge as exc:
        diags.append(exc.diagnostic)
        return abandon(graph), diags

    linker.expect_outputs(doc, spec, last)
    linker.link()
    linker.link_outputs()
    linker.check_removed()
    for block in blocks.values():
        if not block.used:
            diags.append(
                warning(
                    "unused-block",
                    f"block `{block.name}` is never used",
                    doc.key_span(("blocks", block.name)),
                    help="use it in `layers:` or remove it",
                )
            )
    return graph, diags


def hwc_input(doc: Document, shape: tuple[int, ...]) -> list[Diagnostic]:
    """Keras's and TensorFlow's `[224, 224, 3]`, which yarch (as PyTorch) reads as 224
    channels of 224x3: said once, at the input, rather than only as the channel and shape
    errors it causes further down."""
    if len(shape) != 3 or shape[2] not in (1, 3, 4) or min(shape[:2]) < 8 * shape[2]:
        return []
    c, h, w = shape[2], shape[0], shape[1]
    return [
        warning(
            "hwc-input",
            f"`input: [{', '.join(map(str, shape))}]` reads as {shape[0]} channels of "
            f"{shape[1]}x{shape[2]}: an input is [channels, height, width], as in PyTorch",
            doc.span(("input",)),
            help=f"for {c} channels of {h}x{w}, write `input: [{c}, {h}, {w}]`",
        )
    ]


def add_input(doc: Document, graph: ArchGraph) -> None:
    node = Node(
        ArchGraph.INPUT,
        ArchGraph.INPUT,
        InputOp,
        NodeArgs(),
        RawLayer("input", {}, doc.span(("input",))),
        index=-1,
    )
    node.shape = graph.input_shape or None
    graph.add_node(node)


def abandon(graph: ArchGraph) -> ArchGraph:
    """The graph of a spec too large to resolve: its input only, marked incomplete."""
    out = ArchGraph(graph.name, graph.input_shape)
    out.class_ = graph.class_
    out.add_node(graph.node(ArchGraph.INPUT))
    out.order = [ArchGraph.INPUT]
    out.complete = False
    return out
