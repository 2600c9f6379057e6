"""Ops that split or rearrange a tensor's channels: `chunk`, `split` and `channel_shuffle`
(ShuffleNet)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from ..syntax import Shape, fmt_shape
from .base import Context, NodeArgs, Op, PosInt, TorchCall, register, require_map

AXES = {1: "channels", 2: "rows", 3: "columns"}


class ChunkArgs(NodeArgs):
    chunks: Annotated[int, Field(ge=2, le=100_000, strict=True)] = Field(
        description="How many parts to split into, as `torch.chunk`'s `chunks`: each has "
        "ceil(size / chunks), the last fewer (so there may be fewer parts than `chunks`).",
    )
    part: Annotated[int, Field(ge=0, le=100_000, strict=True)] = Field(
        description="Which part the layer outputs, from 0, as `x.chunk(chunks, dim)[part]`; "
        "each part needed takes a layer of its own.",
    )
    dim: Annotated[int, Field(ge=1, le=3, strict=True)] = Field(
        1,
        description="The dimension split, counted as torch does with the batch 0: 1 the "
        "channels (or features), 2 the rows, 3 the columns of a map. Default: 1.",
    )

    @model_validator(mode="after")
    def _part_in_range(self) -> ChunkArgs:
        if self.part >= self.chunks:
            raise ValueError(
                f"part {self.part} does not exist: the parts of {self.chunks} chunks are "
                f"numbered 0 to {self.chunks - 1}"
            )
        return self


def chunk_sizes(size: int, chunks: int) -> list[int]:
    """The sizes of the parts `torch.chunk` makes: ceil(size / chunks) each, the last smaller;
    fewer than `chunks` parts when the rounding up uses the size before the last."""
    step = -(-size // chunks)
    return [min(step, size - start) for start in range(0, size, step)]


def _axis(ctx: Context, x: Shape, dim: int) -> int | None:
    """The axis of `x` (without the batch) that `dim` splits, or None, reported."""
    if dim - 1 < len(x):
        return dim - 1
    ctx.error(
        "rank-mismatch",
        f"`{ctx.name}` splits dimension {dim}, but `{ctx.source(0)}` gives "
        f"{fmt_shape(x)}, {len(x)} dimension{'s' if len(x) > 1 else ''} after the batch",
        "dim",
        help="`dim: 1` splits the channels or features",
    )
    return None


def _what(x: Shape, dim: int) -> str:
    """What dimension `dim` of a map or tensor `x` holds, in a message: `channels`, `rows`."""
    return AXES[dim] if len(x) == 3 else f"dimension {dim}"


@register
class Chunk(Op):
    """one part of its input split into `chunks` along `dim` (1: the channels), as
    `x.chunk(chunks, dim)[part]`; each part is a layer of its own."""

    name = "chunk"
    example = ((4, 8, 8), ("chunk: {chunks: 2, part: 1}",))
    Args = ChunkArgs
    kind = "reshape"

    @classmethod
    def infer(cls, a: ChunkArgs, inputs: list[Shape], ctx: Context) -> Shape | None:
        (x,) = inputs
        axis = _axis(ctx, x, a.dim)
        if axis is None:
            return None
        sizes = chunk_sizes(x[axis], a.chunks)
        if a.part >= len(sizes):
            what = _what(x, a.dim)
            ctx.error(
                "empty-chunk",
                f"`{ctx.name}` takes part {a.part} of {a.chunks}, but torch splits "
                f"{x[axis]} {what} into {len(sizes)} part{'s' if len(sizes) > 1 else ''} "
                f"({' + '.join(map(str, sizes))})",
                "part",
                label="this part is empty",
                notes=(f"`{ctx.source(0)}` gives {fmt_shape(x)}",),
                help=f"torch.chunk makes parts of ceil({x[axis]} / {a.chunks}) = {sizes[0]}: "
                f"take a part below {len(sizes)}, or split into fewer chunks",
            )
            return None
        return (*x[:axis], sizes[a.part], *x[axis + 1 :])

    @classmethod
    def torch_expr(cls, a: ChunkArgs, inputs: list[str], shapes: list[Shape]) -> str:
        return f"{inputs[0]}.chunk({a.chunks}, {a.dim})[{a.part}]"

    @classmethod
    def describe(cls, a: ChunkArgs) -> str:
        return f"chunk {a.part}/{a.chunks}" + (f" dim {a.dim}" if a.dim != 1 else "")


class SplitArgs(NodeArgs):
    sizes: Annotated[list[PosInt], Field(min_length=2, max_length=10_000)] = Field(
        description="The size of each part along `dim`, as `torch.split`'s "
        "`split_size_or_sections` (`sizes: [64, 32]`); they must add up to the input's size.",
    )
    part: Annotated[int, Field(ge=0, le=100_000, strict=True)] = Field(
        description="Which part the layer outputs, from 0, as `x.split(sizes, dim)[part]`; "
        "each part needed takes a layer of its own.",
    )
    dim: Annotated[int, Field(ge=1, le=3, strict=True)] = Field(
        1,
        description="The dimension split, counted as torch does with the batch 0: 1 the "
        "channels (or features), 2 the rows, 3 the columns of a map. Default: 1.",
    )

    @model_validator(mode="after")
    def _part_in_range(self) -> SplitArgs:
        if self.part >= len(self.sizes):
            raise ValueError(
                f"part {self.part} does not exist: the {len(self.sizes)} parts of `sizes` are "
                f"numbered 0 to {len(self.sizes) - 1}"
            )
        return self


@register
class Split(Op):
    """one part of its input split into parts of the given `sizes` along `dim` (1: the
    channels), as `x.split(sizes, dim)[part]`; each part is a layer of its own."""

    name = "split"
    example = ((6, 8, 8), ("split: {sizes: [2, 4], part: 1}",))
    Args = SplitArgs
    kind = "reshape"

    @classmethod
    def infer(cls, a: SplitArgs, inputs: list[Shape], ctx: Context) -> Shape | None:
        (x,) = inputs
        axis = _axis(ctx, x, a.dim)
        if axis is None:
            return None
        if sum(a.sizes) != x[axis]:
            what = _what(x, a.dim)
            ctx.error(
                "split-mismatch",
                f"`{ctx.name}` splits {x[axis]} {what} into parts of "
                f"{' + '.join(map(str, a.sizes))} = {sum(a.sizes)}",
                "sizes",
                notes=(f"`{ctx.source(0)}` gives {fmt_shape(x)}",),
                help=f"the sizes must add up to {x[axis]}",
            )
            return None
        return (*x[:axis], a.sizes[a.part], *x[axis + 1 :])

    @classmethod
    def torch_expr(cls, a: SplitArgs, inputs: list[str], shapes: list[Shape]) -> str:
        return f"{inputs[0]}.split({list(a.sizes)}, {a.dim})[{a.part}]"

    @classmethod
    def describe(cls, a: SplitArgs) -> str:
        sizes = "+".join(map(str, a.sizes))
        return f"split {a.part} of {sizes}" + (f" dim {a.dim}" if a.dim != 1 else "")


class ChannelShuffleArgs(NodeArgs):
    groups: PosInt = Field(
        description="The number of channel groups interleaved, as nn.ChannelShuffle's "
        "`groups` (`channel_shuffle: 2`); it must divide the input's channels.",
    )


@register
class ChannelShuffle(Op):
    """interleaves the channels of `groups` groups (nn.ChannelShuffle; ShuffleNet's
    view, transpose, view), so the next grouped conv mixes information across groups."""

    name = "channel_shuffle"
    example = ((4, 8, 8), ("channel_shuffle: 2",))
    Args = ChannelShuffleArgs
    primary = "groups"
    kind = "reshape"

    @classmethod
    def infer(cls, a: ChannelShuffleArgs, inputs: list[Shape], ctx: Context) -> Shape | None:
        (x,) = inputs
        if not require_map(ctx, x):
            return None
        if x[0] % a.groups:
            divisors = [str(g) for g in range(2, x[0] + 1) if x[0] % g == 0][:6]
            ctx.error(
                "invalid-groups",
                f"`{ctx.name}` shuffles {a.groups} groups, which must divide the {x[0]} "
                f"channels of `{ctx.source(0)}`",
                "groups",
                help=f"{x[0]} channels divide into "
                + (f"{', '.join(divisors[:-1])} or " if len(divisors) > 1 else "")
                + f"{divisors[-1]} groups"
                if divisors
                else None,
            )
            return None
        return x

    @classmethod
    def torch_module(cls, a: ChannelShuffleArgs, inputs: list[Shape]) -> TorchCall:
        # nn.ChannelShuffle permutes exactly as torchvision's view/transpose/view does, and
        # also on a channels-last tensor, where `view` would fail
        return TorchCall("ChannelShuffle", (a.groups,), names=("groups",))

    @classmethod
    def describe(cls, a: ChannelShuffleArgs) -> str:
        return f"channel shuffle {a.groups}"
