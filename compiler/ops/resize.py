"""Resizing a map: `upsample` (F.interpolate), to a size, by a factor, or to another value's."""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, model_validator

from ..expr import MAX_MAGNITUDE
from ..names import RefName
from ..syntax import fmt_shape
from .base import Context, Op, Shape, register
from .spatial import MAPS, MAX_AXES, PosSizes, WindowArgs, _per_axis, spatial_axes

Factor = Annotated[float, Field(gt=0, le=MAX_MAGNITUDE)]


def _factors(value: Any) -> Any:
    if isinstance(value, float) and not isinstance(value, bool):
        return (value, value)
    return _per_axis(value)


Factors = Annotated[
    tuple[Factor, ...],
    Field(min_length=1, max_length=MAX_AXES),
    BeforeValidator(
        _factors,
        json_schema_input_type=Factor
        | Annotated[list[Factor], Field(min_length=1, max_length=MAX_AXES)],
    ),
]

# the interpolating modes, by the spatial axes each works on
LINEAR = {"linear": 1, "bilinear": 2, "trilinear": 3}


class UpsampleArgs(WindowArgs):
    scale: Factors | None = Field(
        None,
        description="The factor each spatial size is multiplied by (and rounded down), as "
        "F.interpolate's `scale_factor`: one number for every axis (`upsample: 2`) or one per "
        "axis. Give one of `scale`, `size` and `like`.",
    )
    size: PosSizes | None = Field(
        None,
        description="The output's spatial size, as F.interpolate's `size`: one number for "
        "every axis or one per axis (`[56, 56]`). Give one of `scale`, `size` and `like`.",
    )
    like: RefName | None = Field(
        None,
        description="The name of another value whose spatial size the output takes, read at "
        "run time, as `F.interpolate(x, size=input.shape[-2:])` (`like: input`); that value is "
        "the layer's second input. Give one of `scale`, `size` and `like`.",
    )
    mode: Literal["nearest", "linear", "bilinear", "trilinear"] = Field(
        "nearest",
        description="The interpolation, as F.interpolate's `mode`: `nearest`, or `linear`, "
        "`bilinear`, `trilinear` on 1-D, 2-D and 3-D maps. Default: nearest.",
    )
    align_corners: Annotated[bool, Field(strict=True)] = Field(
        False,
        description="As F.interpolate's `align_corners`, for the linear modes only: the "
        "corner pixels of input and output line up. Default: false.",
    )

    @model_validator(mode="after")
    def _one_target(self) -> UpsampleArgs:
        given = [f"`{f}`" for f in ("scale", "size", "like") if getattr(self, f) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of `scale`, `size` or `like`"
                + (f", not {' and '.join(given)}" if given else "")
            )
        if self.align_corners and self.mode == "nearest":
            raise ValueError("`align_corners` applies to the linear modes only, not `nearest`")
        return self


@register
class Upsample(Op):
    """resizes a map by `scale`, to `size`, or to the size of the value `like` names.

    F.interpolate, `nearest` or (bi/tri)linear with `align_corners`. `like: input` is
    torchvision's segmentation heads' `F.interpolate(x, size=input_shape[-2:])`: the size is
    read from that value at run time, so the module works on other input sizes too.
    """

    name = "upsample"
    example = (
        (3, 8, 8),
        (
            "conv: {out: 4, kernel: 3, stride: 2, padding: 1}",
            "upsample: {like: input, mode: bilinear}",
        ),
    )
    Args = UpsampleArgs
    primary = "scale"
    kind = "pool"
    max_inputs = 2
    ref_fields: ClassVar[tuple[str, ...]] = ("like",)

    @classmethod
    def infer(cls, a: UpsampleArgs, inputs: list[Shape], ctx: Context) -> Shape | None:
        if (a.like is None) != (len(inputs) == 1):
            ctx.error(
                "wrong-inputs",
                f"`{ctx.name}` resizes one value, got {len(inputs)}",
                "from",
                help="name the value whose size it takes with `like:`, not in `from:`",
            )
            return None
        x = inputs[0]
        n = spatial_axes(ctx, a, x, "an upsample cannot follow a flatten or a linear layer")
        if n is None:
            return None
        if a.mode in LINEAR and LINEAR[a.mode] != n:
            ctx.error(
                "rank-mismatch",
                f"`{ctx.name}` interpolates `{a.mode}`, which needs a "
                f"{MAPS[LINEAR[a.mode]]} map, but `{ctx.source(0)}` gives {fmt_shape(x)}",
                "mode",
                help=f"use `mode: {next(m for m, k in LINEAR.items() if k == n)}` "
                f"or `nearest` on a {MAPS[n]} map",
            )
            return None
        if a.like is not None:
            other = inputs[1]
            if len(other) != len(x):
                ctx.error(
                    "rank-mismatch",
                    f"`{ctx.name}` takes the size of `{ctx.source(1)}`, {fmt_shape(other)}, "
                    f"which is not a {MAPS[n]} map like its input {fmt_shape(x)}",
                    "like",
                )
                return None
            return (x[0], *other[1:])
        if a.size is not None:
            return (x[0], *a.axes("size", n))
        sizes = tuple(math.floor(s * f) for s, f in zip(x[1:], a.axes("scale", n), strict=True))
        if min(sizes) <= 0:
            ctx.error(
                "spatial-collapse",
                f"`{ctx.name}` scales {fmt_shape(x[1:])} to {fmt_shape(sizes)}",
                "scale",
                label="the map is too small here",
                notes=(f"`{ctx.source(0)}` gives a {fmt_shape(x[1:])} map",),
            )
            return None
        return (x[0], *sizes)

    @classmethod
    def torch_expr(cls, a: UpsampleArgs, inputs: list[str], shapes: list[Shape]) -> str:
        n = len(shapes[0]) - 1
        if a.like is not None:
            target = f"size={inputs[1]}.shape[2:]"
        elif a.size is not None:
            target = f"size={_compact(a.axes('size', n))!r}"
        else:
            target = f"scale_factor={_compact(a.axes('scale', n))!r}"
        corners = "" if a.mode == "nearest" else f", align_corners={a.align_corners}"
        # spelled out: generated code imports torch only
        return f'torch.nn.functional.interpolate({inputs[0]}, {target}, mode="{a.mode}"{corners})'

    @classmethod
    def describe(cls, a: UpsampleArgs) -> str:
        return cls._describe(a, 2)

    @classmethod
    def describe_at(cls, a: UpsampleArgs, inputs: list[Shape]) -> str:
        n = len(inputs[0]) - 1 if inputs and inputs[0] else 2
        return cls._describe(a, n if 1 <= n <= MAX_AXES else 2)

    @classmethod
    def _describe(cls, a: UpsampleArgs, n: int) -> str:
        if a.like is not None:
            text = f"upsample like {a.like}"
        elif a.size is not None:
            text = f"upsample to {fmt_shape(a.axes('size', n))}"
        else:
            text = f"upsample x{'x'.join(f'{f:g}' for f in _once(a.axes('scale', n)))}"
        return f"{text} {a.mode}" + (" align_corners" if a.align_corners else "")


def _once(values: tuple[Any, ...]) -> tuple[Any, ...]:
    return values[:1] if len(set(values)) == 1 else values


def _compact(values: tuple[Any, ...]) -> Any:
    return values[0] if len(set(values)) == 1 else values
