"""Ops that rearrange or reduce the dimensions of a tensor: `permute` and `mean`."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ..syntax import Shape, fmt_shape
from .base import Context, NodeArgs, Op, register

# a dimension as torch counts them, the batch being 0: `[0, 2, 3, 1]`, `[2, 3]`, `-1`
Dim = Annotated[int, Field(ge=-8, le=8, strict=True)]


def _written(dims: list[int]) -> str:
    return "[" + ", ".join(map(str, dims)) + "]"


def _rank_note(ctx: Context, x: Shape) -> str:
    return f"`{ctx.source(0)}` gives {fmt_shape(x)}: dimensions 0 (the batch) to {len(x)}"


class PermuteArgs(NodeArgs):
    dims: list[Dim] = Field(
        min_length=2,
        max_length=9,
        description="The new order of all the dimensions, the batch (0) first and staying "
        "first, as `Tensor.permute` takes it: `[0, 2, 3, 1]` makes a map channels-last.",
    )


@register
class Permute(Op):
    """reorders the dimensions, batch first (`Tensor.permute`): `[0, 2, 3, 1]` is channels-last."""

    name = "permute"
    example = ((3, 4, 5), ("permute: [0, 2, 3, 1]",))
    Args = PermuteArgs
    primary = "dims"
    kind = "reshape"

    @classmethod
    def infer(cls, a: PermuteArgs, inputs: list[Shape], ctx: Context) -> Shape | None:
        (x,) = inputs
        rank = len(x) + 1
        dims = list(a.dims)
        if len(dims) != rank or sorted(dims) != list(range(rank)):
            ctx.error(
                "invalid-dims",
                f"`{ctx.name}` permutes {_written(dims)}, which is not an order of the "
                f"{rank} dimensions of its input",
                "dims",
                notes=(_rank_note(ctx, x),),
                help=f"list each of 0 to {rank - 1} once, the batch (0) first: "
                f"`{_written([0, *range(2, rank), 1])}` moves the channels last",
            )
            return None
        if dims[0] != 0:
            ctx.error(
                "invalid-dims",
                f"`{ctx.name}` permutes {_written(dims)}, which moves the batch: dimension 0 "
                "must stay first",
                "dims",
                help="the batch stays dimension 0 in every layer",
            )
            return None
        return tuple(x[d - 1] for d in dims[1:])

    @classmethod
    def torch_expr(cls, a: PermuteArgs, inputs: list[str], shapes: list[Shape]) -> str:
        return f"{inputs[0]}.permute({', '.join(map(str, a.dims))})"

    @classmethod
    def describe(cls, a: PermuteArgs) -> str:
        return f"permute {_written(list(a.dims))}"


class MeanArgs(NodeArgs):
    dims: list[Dim] = Field(
        min_length=1,
        max_length=8,
        description="The dimensions averaged over, counted as torch does with the batch 0 "
        "(negative ones from the end), as `Tensor.mean`'s `dim`: `[2, 3]` averages a map's "
        "height and width. Never the batch.",
    )
    keepdim: Annotated[bool, Field(strict=True)] = Field(
        False,
        description="Keeps the averaged dimensions with size 1 (`[C, 1, 1]`), as "
        "`Tensor.mean`'s `keepdim`. Default: false.",
    )


@register
class Mean(Op):
    """averages over `dims`, numbered as torch does (the batch 0): `[2, 3]` pools a map.

    `keepdim: true` keeps them, with size 1."""

    name = "mean"
    example = ((3, 4, 5), ("mean: {dims: [2, 3], keepdim: true}",))
    Args = MeanArgs
    primary = "dims"
    kind = "pool"

    @classmethod
    def _dims(cls, a: MeanArgs, x: Shape, ctx: Context) -> list[int] | None:
        """The averaged dimensions, counted from 1 (negative ones resolved), or None."""
        rank = len(x) + 1
        dims = [d + rank if d < 0 else d for d in a.dims]
        if any(not 0 <= d < rank for d in dims) or len(set(dims)) != len(dims):
            ctx.error(
                "invalid-dims",
                f"`{ctx.name}` averages over {_written(list(a.dims))}, which are not distinct "
                f"dimensions of its input",
                "dims",
                notes=(_rank_note(ctx, x),),
            )
            return None
        if 0 in dims:
            ctx.error(
                "invalid-dims",
                f"`{ctx.name}` averages over the batch (dimension 0): each sample's result "
                "would depend on the others in its batch",
                "dims",
                help=f"average over dimensions 1 to {rank - 1} only",
            )
            return None
        return sorted(dims)

    @classmethod
    def infer(cls, a: MeanArgs, inputs: list[Shape], ctx: Context) -> Shape | None:
        (x,) = inputs
        dims = cls._dims(a, x, ctx)
        if dims is None:
            return None
        if a.keepdim:
            return tuple(1 if i + 1 in dims else n for i, n in enumerate(x))
        kept = tuple(n for i, n in enumerate(x) if i + 1 not in dims)
        if not kept:
            ctx.error(
                "invalid-dims",
                f"`{ctx.name}` averages over every dimension but the batch, leaving one number "
                "per sample with no dimension",
                "dims",
                help="set `keepdim: true`, or keep one dimension",
            )
            return None
        return kept

    @classmethod
    def torch_expr(cls, a: MeanArgs, inputs: list[str], shapes: list[Shape]) -> str:
        dims = ", ".join(map(str, a.dims)) + ("," if len(a.dims) == 1 else "")
        keep = ", keepdim=True" if a.keepdim else ""
        return f"{inputs[0]}.mean(({dims}){keep})"

    @classmethod
    def describe(cls, a: MeanArgs) -> str:
        return f"mean {_written(list(a.dims))}"
