"""Ops that merge several inputs: channel concatenation, elementwise addition and product."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ..syntax import Shape, fmt_shape
from .base import Context, NodeArgs, Op, register


class ConcatArgs(NodeArgs):
    dim: Annotated[int, Field(ge=1, le=4, strict=True)] = Field(
        1,
        description="The dimension concatenated along, counted as torch does with the batch "
        "0, as `torch.cat`'s `dim`: 1 is the channels of maps or the features of vectors. "
        "Default: 1.",
    )


def _listing(ctx: Context, inputs: list[Shape]) -> list[str]:
    return [f"`{ctx.source(i)}` gives {fmt_shape(s)}" for i, s in enumerate(inputs)]


@register
class Concat(Op):
    """concatenates its inputs along `dim` (1: the channels)."""

    name = "concat"
    example = (
        (3, 8, 8),
        (
            "conv: {name: a, out: 4, kernel: 1}",
            "conv: {name: b, from: input, out: 6, kernel: 3, padding: 1}",
            "concat: [a, b]",
        ),
    )
    Args = ConcatArgs
    primary = "from"
    kind = "merge"
    min_inputs = 1
    max_inputs = None

    @classmethod
    def infer(cls, a: ConcatArgs, inputs: list[Shape], ctx: Context) -> Shape | None:
        axis = a.dim - 1
        ranks = {len(s) for s in inputs}
        if len(ranks) != 1 or axis >= min(ranks):
            ctx.error(
                "concat-mismatch",
                f"`{ctx.name}` concatenates inputs of different ranks",
                notes=_listing(ctx, inputs),
            )
            return None
        others = {s[:axis] + s[axis + 1 :] for s in inputs}
        if len(others) != 1:
            what = "spatial sizes" if axis == 0 and min(ranks) == 3 else "shapes"
            ctx.error(
                "concat-mismatch",
                f"`{ctx.name}` concatenates inputs with different {what}",
                label="inputs disagree",
                notes=_listing(ctx, inputs),
                help="every input must have the same size on all axes but the concatenated "
                "one: check the padding and stride of each branch",
            )
            return None
        total = sum(s[axis] for s in inputs)
        if len(inputs) > 1 and axis == 0:
            ctx.set_explain(" + ".join(str(s[0]) for s in inputs))
        first = inputs[0]
        return (*first[:axis], total, *first[axis + 1 :])

    @classmethod
    def torch_expr(cls, a: ConcatArgs, inputs: list[str], shapes: list[Shape]) -> str:
        if len(inputs) == 1:
            return inputs[0]
        return f"torch.cat([{', '.join(inputs)}], {a.dim})"


@register
class Add(Op):
    """adds its inputs elementwise (a residual connection)."""

    name = "add"
    fresh_output = True
    example = ((3, 8, 8), ("conv: {out: 3, kernel: 3, padding: 1}", "add: [conv_1, input]"))
    primary = "from"
    kind = "merge"
    min_inputs = 2
    max_inputs = None

    @classmethod
    def infer(cls, a: NodeArgs, inputs: list[Shape], ctx: Context) -> Shape | None:
        if len(set(inputs)) != 1:
            help = None
            if all(len(s) == 3 for s in inputs):
                if len({s[0] for s in inputs}) > 1:
                    widest = max(s[0] for s in inputs)
                    help = f"give the shortcut a 1x1 conv (a projection) to {widest} channels"
                if len({s[1:] for s in inputs}) > 1:
                    help = (help + ", with" if help else "give the shortcut") + (
                        " the same stride as the main path"
                    )
            ctx.error(
                "add-mismatch",
                f"`{ctx.name}` adds inputs of different shapes",
                label="inputs disagree",
                notes=_listing(ctx, inputs),
                help=help,
            )
            return None
        return inputs[0]

    @classmethod
    def torch_expr(cls, a: NodeArgs, inputs: list[str], shapes: list[Shape]) -> str:
        return " + ".join(inputs)


def broadcast(shapes: list[Shape]) -> Shape | None:
    """The shape torch's broadcasting gives tensors of these shapes (batch left out, equal
    ranks): each axis equal or 1; None when they do not broadcast."""
    out = []
    for sizes in zip(*shapes, strict=True):
        wide = {s for s in sizes if s != 1}
        if len(wide) > 1:
            return None
        out.append(wide.pop() if wide else 1)
    return tuple(out)


@register
class Mul(Op):
    """multiplies its inputs elementwise, broadcasting as torch does (a squeeze-excitation
    gate: `[C, 1, 1]` times `[C, H, W]`)."""

    name = "mul"
    example = (
        (3, 8, 8),
        (
            "adaptive_avgpool: {name: squeeze, output: 1}",
            "sigmoid: {name: gate}",
            "mul: [gate, input]",
        ),
    )
    primary = "from"
    kind = "merge"
    min_inputs = 2
    max_inputs = None

    @classmethod
    def infer(cls, a: NodeArgs, inputs: list[Shape], ctx: Context) -> Shape | None:
        ranks = {len(s) for s in inputs}
        # with the batch in front, inputs of different ranks would broadcast the batch against
        # another axis: the result would depend on the batch size
        out = broadcast(inputs) if len(ranks) == 1 else None
        if out is not None:
            return out
        if len(ranks) > 1:
            message = f"`{ctx.name}` multiplies inputs of different ranks"
            help = "give every input the same number of dimensions: a gate of a CxHxW map is Cx1x1"
        else:
            message = f"`{ctx.name}` multiplies inputs whose shapes do not broadcast"
            help = "each dimension must be the same in every input, or 1 in all but one of them"
        ctx.error(
            "mul-mismatch",
            message,
            label="inputs disagree",
            notes=_listing(ctx, inputs),
            help=help,
        )
        return None

    @classmethod
    def torch_expr(cls, a: NodeArgs, inputs: list[str], shapes: list[Shape]) -> str:
        return " * ".join(inputs)
