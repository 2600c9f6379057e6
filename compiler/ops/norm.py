"""Normalisation: batch, layer, group and local response normalisation."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .base import (
    Context,
    NodeArgs,
    Op,
    PosInt,
    Shape,
    ShapeKeeping,
    TorchCall,
    channel_note,
    fmt_shape,
    keywords,
    register,
    require_map,
)


class BatchNormArgs(NodeArgs):
    eps: Annotated[float, Field(gt=0)] = Field(
        1e-5,
        description="Added to the variance for numerical stability, as nn.BatchNorm2d's "
        "`eps` (`eps: 0.001`). Default: 1e-5.",
    )
    momentum: Annotated[float, Field(ge=0, le=1)] = Field(
        0.1,
        description="The weight of each batch in the running mean and variance, as "
        "nn.BatchNorm2d's `momentum`. Default: 0.1.",
    )
    affine: Annotated[bool, Field(strict=True)] = Field(
        True,
        description="A learned scale and shift per channel, as nn.BatchNorm2d's `affine`. "
        "Default: true.",
    )
    in_: PosInt | None = Field(
        None,
        alias="in",
        description="The channels (or features) the layer declares, as nn.BatchNorm2d's "
        "`num_features`: optional, as they are inferred, but checked against what the layer "
        "receives (`channel-mismatch`).",
    )


@register
class BatchNorm(Op):
    """batch normalisation of features or channels (nn.BatchNorm1d, 2d or 3d, by the input).

    nn.BatchNorm1d on [F] or [C, L], BatchNorm2d on [C, H, W], BatchNorm3d on [C, D, H, W]."""

    name = "bn"
    fresh_output = True
    Args = BatchNormArgs
    kind = "norm"
    passthrough = True

    @classmethod
    def infer(cls, a: BatchNormArgs, inputs: list[Shape], ctx: Context) -> Shape | None:
        (x,) = inputs
        if not 1 <= len(x) <= 4:
            ctx.error("rank-mismatch", f"`{ctx.name}` needs features or a map, got {fmt_shape(x)}")
            return None
        if a.in_ is not None:
            cls.check_in(a.in_, x, ctx)
        return x

    @classmethod
    def buffers(cls, a: BatchNormArgs, inputs: list[Shape]) -> dict[str, tuple[int, str]]:
        # kept whether or not `affine`, as torch keeps them (track_running_stats)
        c = inputs[0][0]
        return {
            "running_mean": (c, "float32"),
            "running_var": (c, "float32"),
            "num_batches_tracked": (1, "int64"),
        }

    @classmethod
    def check_in(cls, declared: int, x: Shape, ctx: Context) -> None:
        if declared != x[0]:
            ctx.error(
                "channel-mismatch",
                f"`{ctx.name}` declares {declared} channels but receives {x[0]}",
                "in",
                label="declared here",
                notes=(channel_note(ctx, 0, x[0]),),
                help=f"set `in: {x[0]}`",
            )

    @classmethod
    def count_params(cls, a: BatchNormArgs, inputs: list[Shape], out: Shape) -> int:
        return 2 * inputs[0][0] if a.affine else 0

    @classmethod
    def torch_module(cls, a: BatchNormArgs, inputs: list[Shape]) -> TorchCall:
        return TorchCall(
            f"BatchNorm{max(len(inputs[0]) - 1, 1)}d",
            (inputs[0][0],),
            keywords(eps=(a.eps, 1e-5), momentum=(a.momentum, 0.1), affine=(a.affine, True)),
            names=("num_features",),
        )


class LrnArgs(NodeArgs):
    size: PosInt = Field(
        5,
        description="How many neighbouring channels each channel is normalised over, as "
        "nn.LocalResponseNorm's `size` (`lrn: 5`). Default: 5.",
    )
    alpha: Annotated[float, Field(ge=0)] = Field(
        1e-4,
        description="The multiplicative factor, as nn.LocalResponseNorm's `alpha`. "
        "Default: 0.0001.",
    )
    beta: Annotated[float, Field(ge=0)] = Field(
        0.75,
        description="The exponent, as nn.LocalResponseNorm's `beta`. Default: 0.75.",
    )
    k: Annotated[float, Field(gt=0)] = Field(
        1.0,
        description="The additive constant, as nn.LocalResponseNorm's `k`. Default: 1.",
    )


@register
class LocalResponseNorm(Op):
    """local response normalisation across `size` neighbouring channels (AlexNet)."""

    name = "lrn"
    Args = LrnArgs
    primary = "size"
    kind = "norm"
    passthrough = True

    @classmethod
    def infer(cls, a: LrnArgs, inputs: list[Shape], ctx: Context) -> Shape | None:
        (x,) = inputs
        if not require_map(ctx, x):
            return None
        return x

    @classmethod
    def torch_module(cls, a: LrnArgs, inputs: list[Shape]) -> TorchCall:
        return TorchCall(
            "LocalResponseNorm",
            (a.size,),
            keywords(alpha=(a.alpha, 1e-4), beta=(a.beta, 0.75), k=(a.k, 1.0)),
            names=("size",),
        )

    @classmethod
    def describe(cls, a: LrnArgs) -> str:
        return f"lrn {a.size}"


class LayerNormArgs(NodeArgs):
    over: Literal["channels", "last"] = Field(
        "channels",
        description="`channels`: normalises dimension 1, the channels at each position of a "
        "map (ConvNeXt's LayerNorm2d) or a vector's features; `last`: the last dimension, as "
        "nn.LayerNorm does (a channels-last map). Default: channels.",
    )
    eps: Annotated[float, Field(gt=0)] = Field(
        1e-5,
        description="Added to the variance for numerical stability, as nn.LayerNorm's `eps` "
        "(`eps: 1.0e-6` in ConvNeXt). Default: 1e-5.",
    )
    affine: Annotated[bool, Field(strict=True)] = Field(
        True,
        description="A learned scale and shift per element normalised, as nn.LayerNorm's "
        "`elementwise_affine`. Default: true.",
    )


def _to_last(rank: int) -> tuple[str, str]:
    """`Tensor.permute` arguments that move dimension 1 last, and back (batch included)."""
    there = [0, *range(2, rank + 1), 1]
    back = [0, rank, *range(1, rank)]
    return ", ".join(map(str, there)), ", ".join(map(str, back))


@register
class LayerNorm(ShapeKeeping):
    """layer normalisation over the channels (ConvNeXt's LayerNorm2d) or the last dim (`last`).

    `over: channels` normalises the channels at each position of a map (or the features);
    `over: last` the last dimension, as nn.LayerNorm does (a channels-last map)."""

    name = "layer_norm"
    example = ((4, 5, 6), ("layer_norm: {eps: 1.0e-6}",))
    Args = LayerNormArgs
    primary = "over"
    kind = "norm"

    @classmethod
    def _size(cls, a: LayerNormArgs, x: Shape) -> int:
        return x[0] if a.over == "channels" else x[-1]

    @classmethod
    def count_params(cls, a: LayerNormArgs, inputs: list[Shape], out: Shape) -> int:
        return 2 * cls._size(a, inputs[0]) if a.affine else 0

    @classmethod
    def torch_module(cls, a: LayerNormArgs, inputs: list[Shape]) -> TorchCall:
        return TorchCall(
            "LayerNorm",
            (cls._size(a, inputs[0]),),
            keywords(eps=(a.eps, 1e-5), elementwise_affine=(a.affine, True)),
            names=("normalized_shape",),
        )

    @classmethod
    def torch_apply(cls, a: LayerNormArgs, module: str, x: str, shapes: list[Shape]) -> str:
        rank = len(shapes[0])
        if a.over == "last" or rank == 1:
            return f"{module}({x})"
        # nn.LayerNorm normalises the last dimension: the channels go there and back, as
        # torchvision's LayerNorm2d does, and the weights keep nn.LayerNorm's names
        there, back = _to_last(rank)
        return f"{module}({x}.permute({there})).permute({back})"

    @classmethod
    def describe(cls, a: LayerNormArgs) -> str:
        return f"layer norm over {'the channels' if a.over == 'channels' else 'the last dim'}"


class GroupNormArgs(NodeArgs):
    groups: PosInt = Field(
        description="The number of channel groups normalised separately, as nn.GroupNorm's "
        "`num_groups` (`group_norm: 32`); it must divide the channels.",
    )
    eps: Annotated[float, Field(gt=0)] = Field(
        1e-5,
        description="Added to the variance for numerical stability, as nn.GroupNorm's `eps`. "
        "Default: 1e-5.",
    )
    affine: Annotated[bool, Field(strict=True)] = Field(
        True,
        description="A learned scale and shift per channel, as nn.GroupNorm's `affine`. "
        "Default: true.",
    )


@register
class GroupNorm(Op):
    """group normalisation (nn.GroupNorm): each of `groups` groups of channels on its own."""

    name = "group_norm"
    fresh_output = True
    example = ((4, 5, 5), ("group_norm: 2",))
    Args = GroupNormArgs
    primary = "groups"
    kind = "norm"
    passthrough = True

    @classmethod
    def infer(cls, a: GroupNormArgs, inputs: list[Shape], ctx: Context) -> Shape | None:
        (x,) = inputs
        if x[0] % a.groups:
            ctx.error(
                "invalid-groups",
                f"`{ctx.name}` has {a.groups} groups, which must divide its {x[0]} channels",
                "groups",
                notes=(channel_note(ctx, 0, x[0]),),
            )
            return None
        return x

    @classmethod
    def count_params(cls, a: GroupNormArgs, inputs: list[Shape], out: Shape) -> int:
        return 2 * inputs[0][0] if a.affine else 0

    @classmethod
    def torch_module(cls, a: GroupNormArgs, inputs: list[Shape]) -> TorchCall:
        return TorchCall(
            "GroupNorm",
            (a.groups, inputs[0][0]),
            keywords(eps=(a.eps, 1e-5), affine=(a.affine, True)),
            names=("num_groups", "num_channels"),
        )

    @classmethod
    def describe(cls, a: GroupNormArgs) -> str:
        return f"group norm {a.groups}"
