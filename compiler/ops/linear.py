"""Fully connected layers and the ops that turn maps into vectors."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field

from ..expr import MAX_MAGNITUDE
from ..syntax import Shape, fmt_shape
from .base import Context, NodeArgs, Op, PosInt, TorchCall, keywords, register


class LinearArgs(NodeArgs):
    out: PosInt = Field(
        description="The output features, as nn.Linear's `out_features` (`linear: 1000`).",
    )
    bias: Annotated[bool, Field(strict=True)] = Field(
        True,
        description="A learned bias per output feature, as nn.Linear's `bias`. Default: true.",
    )
    in_: PosInt | None = Field(
        None,
        alias="in",
        description="The input features the layer declares, as nn.Linear's `in_features` "
        "(`in: 9216`): optional, as they are inferred, but checked against what the layer "
        "receives (`feature-mismatch`, `flatten-mismatch`).",
    )
    over: Literal["features", "last"] = Field(
        "features",
        description="`features`: applied to a vector, so a map must be flattened first; "
        "`last`: at every position of a tensor, on its last dimension, as nn.Linear does "
        "(a channels-last map in ConvNeXt's blocks). Default: features.",
    )


def _as_map(features: int, channels: int) -> str | None:
    """`12544` with 256 channels -> `256x7x7`, if it is a square map."""
    if features % channels:
        return None
    side = math.isqrt(features // channels)
    return f"{channels}x{side}x{side}" if side * side * channels == features else None


@register
class Linear(Op):
    """a fully connected layer (nn.Linear) on features, or on the last dim (`over: last`).

    `over: last` applies it at every position of a tensor (a channels-last map, as ConvNeXt's
    blocks do); without it a map must be flattened first."""

    name = "linear"
    fresh_output = True
    example = ((3, 4, 4), ("flatten", "linear: {in: 48, out: 10}"))
    Args = LinearArgs
    primary = "out"
    kind = "linear"

    @classmethod
    def infer(cls, a: LinearArgs, inputs: list[Shape], ctx: Context) -> Shape | None:
        (x,) = inputs
        if len(x) != 1 and a.over == "features":
            ctx.error(
                "unflattened-linear",
                f"`{ctx.name}` is applied to a {fmt_shape(x)} map that was never flattened",
                notes=(f"`{ctx.source(0)}` gives {fmt_shape(x)}",),
                help=f"add `- flatten` before it (it then receives {math.prod(x)} features), "
                "or pool the map to 1x1 first",
            )
            return None
        if a.in_ is not None and len(x) == 1:
            cls.check_in(a.in_, x, ctx)
        elif a.in_ is not None and a.in_ != x[-1]:
            ctx.error(
                "feature-mismatch",
                f"`{ctx.name}` declares {a.in_} input features but its input's last dimension "
                f"has {x[-1]}",
                "in",
                label="declared here",
                notes=(f"`{ctx.source(0)}` gives {fmt_shape(x)}",),
                help=f"set `in: {x[-1]}`",
            )
        return (*x[:-1], a.out)

    @classmethod
    def check_in(cls, declared: int, x: Shape, ctx: Context) -> None:
        # a layer that failed validation may have been meant for a vector or for the last
        # dimension of a map: only a vector is checked then
        if len(x) != 1 or declared == x[0]:
            return
        (features,) = x
        producer = ctx.producer(0)
        if producer is None or producer.op.name not in ("flatten", "reshape"):
            ctx.error(
                "feature-mismatch",
                f"`{ctx.name}` declares {declared} input features but receives {features}",
                "in",
                label="declared here",
                notes=(f"`{ctx.source(0)}` outputs {features} features",),
                help=f"set `in: {features}`",
            )
            return
        flat_ins = ctx.inputs_of(producer.id)
        flat_in = flat_ins[0] if flat_ins else None
        notes = [f"`{ctx.display(producer.id)}` gives {features} features"]
        help = f"set `in: {features}`"
        if flat_in is not None and len(flat_in) == 3:
            notes[0] += f" = {' x '.join(map(str, flat_in))}"
            want = _as_map(declared, flat_in[0])
            if want:
                help += f", or make the map before it {want}"
        ctx.error(
            "flatten-mismatch",
            f"`{ctx.name}` declares {declared} input features but the {producer.op.name} "
            f"before it gives {features}",
            "in",
            label="declared here",
            notes=notes,
            help=help,
        )

    @classmethod
    def count_params(cls, a: LinearArgs, inputs: list[Shape], out: Shape) -> int:
        return inputs[0][-1] * a.out + (a.out if a.bias else 0)

    @classmethod
    def count_macs(cls, a: LinearArgs, inputs: list[Shape], out: Shape) -> int:
        return math.prod(out) * inputs[0][-1]

    @classmethod
    def torch_module(cls, a: LinearArgs, inputs: list[Shape]) -> TorchCall:
        return TorchCall(
            "Linear",
            (inputs[0][-1], a.out),
            keywords(bias=(a.bias, True)),
            names=("in_features", "out_features"),
        )

    @classmethod
    def describe(cls, a: LinearArgs) -> str:
        return f"linear {a.out}"


class FlattenArgs(NodeArgs):
    start_dim: Annotated[int, Field(ge=1, le=4, strict=True)] = Field(
        1,
        description="The first dimension flattened, counted as torch does with the batch 0, "
        "through the last, as nn.Flatten's `start_dim`: 1 makes `[C, H, W]` a vector, 2 "
        "keeps the channels. Default: 1.",
    )


@register
class Flatten(Op):
    """flattens the dimensions from `start_dim` on (1: all but the batch)."""

    name = "flatten"
    Args = FlattenArgs
    primary = "start_dim"
    kind = "reshape"

    @classmethod
    def infer(cls, a: FlattenArgs, inputs: list[Shape], ctx: Context) -> Shape | None:
        (x,) = inputs
        keep = a.start_dim - 1
        if keep >= len(x):
            return x
        return (*x[:keep], math.prod(x[keep:]))

    @classmethod
    def torch_module(cls, a: FlattenArgs, inputs: list[Shape]) -> TorchCall:
        return TorchCall("Flatten", (), keywords(start_dim=(a.start_dim, 1)))


BatchDim = Literal["N"]


class ReshapeArgs(NodeArgs):
    shape: list[Annotated[int, Field(ge=-1, le=MAX_MAGNITUDE, strict=True)] | BatchDim] = Field(
        min_length=1,
        description="The new shape, batch first, as `Tensor.reshape` takes it: `N` keeps the "
        "batch and one `-1` takes what is left (`reshape: [N, -1]`, `[N, 12, 7, 7]`).",
    )


@register
class Reshape(Op):
    """reshapes, batch first: `N` keeps the batch, `-1` takes what is left."""

    name = "reshape"
    example = ((3, 4, 4), ("reshape: [N, 12, -1]",))
    Args = ReshapeArgs
    primary = "shape"
    kind = "reshape"

    @classmethod
    def infer(cls, a: ReshapeArgs, inputs: list[Shape], ctx: Context) -> Shape | None:
        (x,) = inputs
        numel = math.prod(x)
        dims = list(a.shape)
        written = "[" + ", ".join(str(d) for d in dims) + "]"
        if dims.count(-1) > 1 or 0 in dims or "N" in dims[1:]:
            ctx.error(
                "reshape-invalid",
                f"`{ctx.name}` cannot reshape to {written}: use at most one -1, no 0, "
                "and `N` only first",
                "shape",
            )
            return None
        if dims[0] == "N":
            rest = dims[1:]
            fixed = math.prod(d for d in rest if d != -1)
            if (-1 in rest and numel % fixed) or (-1 not in rest and fixed != numel):
                ctx.error(
                    "reshape-invalid",
                    f"`{ctx.name}` cannot reshape {fmt_shape(x)} ({numel} values per sample) "
                    f"to {written}",
                    "shape",
                )
                return None
            return tuple(numel // fixed if d == -1 else d for d in rest)
        # the first dimension is the batch: it must come out as N, not N*k
        rest = dims[1:]
        if -1 in rest:
            ctx.error(
                "reshape-invalid",
                f"`{ctx.name}` reshapes to {written}: with a -1 after the first dimension the "
                "batch size is fixed in the spec",
                "shape",
                help="write `N` for the batch dimension: `[N, -1]`",
            )
            return None
        per_row = math.prod(rest) if rest else 1
        if numel % per_row:
            ctx.error(
                "reshape-invalid",
                f"`{ctx.name}` cannot reshape {fmt_shape(x)} ({numel} values per sample) to "
                f"{written}",
                "shape",
            )
            return None
        rows = numel // per_row
        if dims[0] == -1 and rows != 1:
            ctx.error(
                "reshape-batch",
                f"`{ctx.name}` folds {rows} positions into the batch: {written} turns a batch "
                f"of N {fmt_shape(x)} maps into N*{rows} rows of {per_row}",
                "shape",
                label="the batch size changes here",
                notes=(
                    f"`{ctx.source(0)}` ({ctx.producer(0).op.describe(ctx.producer(0).args)}) "
                    f"gives {fmt_shape(x)} = {numel} values per sample",
                ),
                help=f"reshape to `[N, -1]` ({numel} features), or reduce the map to "
                f"{per_row} values per sample first",
            )
        elif dims[0] != -1:
            # even when the numbers add up for one sample ([1, 256] on a 1x16x16 map), the
            # module then runs only on batches of exactly that size
            ctx.error(
                "reshape-batch",
                f"`{ctx.name}` reshapes to {written}, which fixes the batch size at {dims[0]}: "
                "the model would run only on batches of that size",
                "shape",
                help="write `N` for the batch dimension: "
                + (
                    f"`[N, {', '.join(map(str, rest))}]`"
                    if rest and per_row == numel
                    else f"`[N, -1]` ({numel} values per sample)"
                ),
            )
            return None
        return tuple(rest) if rest else (1,)

    @classmethod
    def torch_expr(cls, a: ReshapeArgs, inputs: list[str], shapes: list[Shape]) -> str:
        (x,) = inputs
        dims = [f"{x}.size(0)" if d == "N" else str(d) for d in a.shape]
        return f"{x}.reshape({', '.join(dims)})"
