"""Convolution over 1, 2 or 3 spatial axes (its input's), and the 2-D transpose."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, model_validator

from ..syntax import fmt_shape
from .base import (
    REQUIRED,
    Context,
    NodeArgs,
    NonNegInt,
    Op,
    PosInt,
    PosPair,
    Shape,
    TorchCall,
    _pair,
    channel_note,
    keywords,
    register,
    require_map,
    square,
)
from .spatial import (
    PosSizes,
    SizesPadding,
    Window,
    WindowArgs,
    fmt_pair,
    input_axes,
    padding_hint,
    spatial_axes,
    window_out,
)


def _groups_divide(ctx: Context, groups: int, c: int, out: int) -> bool:
    """Report `invalid-groups` unless `groups` divides both channel counts."""
    if c % groups == 0 and out % groups == 0:
        return True
    ctx.error(
        "invalid-groups",
        f"`{ctx.name}` has {groups} groups, which must divide both its {c} input "
        f"and {out} output channels",
        "groups",
    )
    return False


def _describe(what: str, a: Any, output_padding: tuple[int, ...] = (0, 0), n: int = 2) -> str:
    """`conv 3x3/2 pad 1 groups 32, 64`: the window's fields that differ from the defaults,
    for `n` spatial axes (a 3-D conv reads `conv 3x7x7/1x2x2 pad 1x3x3, 64`)."""
    kernel = a.axes("kernel", n) if isinstance(a, WindowArgs) else a.kernel
    stride = a.axes("stride", n) if isinstance(a, WindowArgs) else a.stride
    padding = a.axes("padding", n) if isinstance(a, WindowArgs) else a.padding
    dilation = a.axes("dilation", n) if isinstance(a, WindowArgs) else a.dilation
    text = f"{what} {'x'.join(map(str, kernel))}"
    if set(stride) != {1}:
        text += f"/{fmt_pair(stride)}"
    if padding == "same" or set(padding) != {0}:
        text += f" pad {fmt_pair(padding)}"
    if output_padding != (0, 0):
        text += f" out-pad {fmt_pair(output_padding)}"
    if set(dilation) != {1}:
        text += f" dil {fmt_pair(dilation)}"
    if a.groups != 1:
        text += f" groups {a.groups}"
    return f"{text}, {a.out}"


# the descriptions of the fields conv and conv_transpose share, naming `torch`'s module
def _in(torch: str) -> str:
    return (
        f"The input channels the layer declares, as {torch}'s `in_channels` (`in: 3`): "
        "optional, as they are inferred, but checked against what the layer receives "
        "(`channel-mismatch`)."
    )


def _groups(torch: str) -> str:
    return (
        f"Groups of channels convolved separately, as {torch}'s `groups`: it must divide the "
        "input and output channels (as many groups as channels makes a depthwise conv). "
        "Default: 1."
    )


def _bias(torch: str) -> str:
    return (
        f"A learned bias per output channel, as {torch}'s `bias`; usually false before a "
        "batch norm. Default: true."
    )


class ConvArgs(WindowArgs):
    out: PosInt = Field(
        description="The output channels, as nn.Conv2d's `out_channels` (`out: 64`).",
    )
    kernel: PosSizes = Field(
        description="The window's size, as nn.Conv2d's `kernel_size`: one number for every "
        "spatial axis (`kernel: 3`) or one per axis (`[1, 7]`, `[3, 7, 7]` on a 3-D map).",
    )
    stride: PosSizes = Field(
        (1, 1),
        description="The step between windows, as nn.Conv2d's `stride`: a number or one per "
        "axis (`stride: 2` halves the size). Default: 1.",
    )
    padding: SizesPadding = Field(
        (0, 0),
        description="Zeros added on each side, as nn.Conv2d's `padding`: a number, one per "
        "axis, `valid` (0) or `same`, which keeps ceil(size / stride) as Keras does (the size "
        "itself at stride 1). Default: 0.",
    )
    dilation: PosSizes = Field(
        (1, 1),
        description="The spacing between the kernel's taps, as nn.Conv2d's `dilation` "
        "(`dilation: 2`, an atrous conv): a number or one per axis. Default: 1.",
    )
    groups: PosInt = Field(1, description=_groups("nn.Conv2d"))
    bias: Annotated[bool, Field(strict=True)] = Field(True, description=_bias("nn.Conv2d"))
    in_: PosInt | None = Field(None, alias="in", description=_in("nn.Conv2d"))

    def window(self, n: int = 2) -> Window:
        return Window(
            self.axes("kernel", n),
            self.axes("stride", n),
            self.axes("padding", n),
            self.axes("dilation", n),
        )


@register
class Conv(Op):
    """convolution on 1, 2 or 3 spatial axes (nn.Conv1d, 2d or 3d, by the input's rank).

    On [C, L], [C, H, W] or [C, D, H, W]; `padding: same` keeps ceil(size / stride), as Keras
    does."""

    name = "conv"
    fresh_output = True
    example = ((3, 8, 8), ("conv: {in: 3, out: 16, kernel: 3, stride: 2, padding: 1}",))
    Args = ConvArgs
    kind = "conv"

    @classmethod
    def infer(cls, a: ConvArgs, inputs: list[Shape], ctx: Context) -> Shape | None:
        (x,) = inputs
        n = spatial_axes(ctx, a, x, "a conv cannot follow a flatten or a linear layer")
        if n is None:
            return None
        c = x[0]
        if a.in_ is not None:
            cls.check_in(a.in_, x, ctx)
        if not _groups_divide(ctx, a.groups, c, a.out):
            return None
        sizes = window_out(ctx, cls.describe_at(a, inputs), x[1:], a.window(n))
        return None if sizes is None else (a.out, *sizes)

    @classmethod
    def check_in(cls, declared: int, x: Shape, ctx: Context) -> None:
        if len(x) >= 2 and declared != x[0]:
            ctx.error(
                "channel-mismatch",
                f"`{ctx.name}` declares {declared} input channels but receives {x[0]}",
                "in",
                label="declared here",
                notes=(channel_note(ctx, 0, x[0]),),
                help=f"set `in: {x[0]}`, or change the layer that feeds it",
            )

    @classmethod
    def count_params(cls, a: ConvArgs, inputs: list[Shape], out: Shape) -> int:
        c = inputs[0][0]
        weights = a.out * (c // a.groups) * math.prod(a.axes("kernel", len(out) - 1))
        return weights + (a.out if a.bias else 0)

    @classmethod
    def count_macs(cls, a: ConvArgs, inputs: list[Shape], out: Shape) -> int:
        c = inputs[0][0]
        kernel = math.prod(a.axes("kernel", len(out) - 1))
        return a.out * (c // a.groups) * kernel * math.prod(out[1:])

    @classmethod
    def torch_module(cls, a: ConvArgs, inputs: list[Shape]) -> TorchCall:
        n = len(inputs[0]) - 1
        win = a.window(n)
        padding: Any = square(win.padding) if win.padding != "same" else "same"
        if win.padding == "same" and set(win.stride) != {1}:
            padding = 0  # applied by torch_pad: PyTorch's "same" allows stride 1 only
        return TorchCall(
            f"Conv{n}d",
            (inputs[0][0], a.out),
            keywords(
                kernel_size=(square(win.kernel), REQUIRED),
                stride=(square(win.stride), 1),
                padding=(padding, 0),
                dilation=(square(win.dilation), 1),
                groups=(a.groups, 1),
                bias=(a.bias, True),
            ),
            names=("in_channels", "out_channels"),
        )

    @classmethod
    def torch_pad(cls, a: ConvArgs, inputs: list[Shape]) -> tuple[tuple[int, ...], float] | None:
        win = a.window(len(inputs[0]) - 1)
        if win.padding != "same" or set(win.stride) == {1}:
            return None
        return win.same_pads(inputs[0][1:]), 0.0

    @classmethod
    def describe(cls, a: ConvArgs) -> str:
        return _describe("conv", a)

    @classmethod
    def describe_at(cls, a: ConvArgs, inputs: list[Shape]) -> str:
        return _describe("conv", a, n=input_axes(inputs))

    @classmethod
    def hint(cls, a: ConvArgs, inputs: list[Shape], expected: Shape) -> str | None:
        x = inputs[0]
        if len(x) < 2 or len(x) != len(expected) or a.rank_problem(len(x) - 1):
            return None
        parts = []
        if expected[0] != a.out:
            parts.append(f"`out: {expected[0]}` gives {expected[0]} channels")
        win = a.window(len(x) - 1)
        if win.out_sizes(x[1:]) != expected[1:]:
            hint = padding_hint(win, x[1:], expected[1:])
            if hint:
                parts.append(hint)
        return "; ".join(parts) or None


NonNegPair = Annotated[
    tuple[NonNegInt, NonNegInt],
    BeforeValidator(_pair, json_schema_input_type=NonNegInt | tuple[NonNegInt, NonNegInt]),
]


class ConvTransposeArgs(NodeArgs):
    out: PosInt = Field(
        description="The output channels, as nn.ConvTranspose2d's `out_channels` (`out: 64`).",
    )
    kernel: PosPair = Field(
        description="The window's size, as nn.ConvTranspose2d's `kernel_size`: a number or "
        "`[height, width]`.",
    )
    stride: PosPair = Field(
        (1, 1),
        description="The upsampling factor, as nn.ConvTranspose2d's `stride`: a number or "
        "`[height, width]` (`kernel: 2, stride: 2` doubles the size). Default: 1.",
    )
    padding: NonNegPair = Field(
        (0, 0),
        description="As nn.ConvTranspose2d's `padding`: trims this many rows and columns from "
        "each side of the output; a number or `[height, width]`. Default: 0.",
    )
    output_padding: NonNegPair = Field(
        (0, 0),
        description="Rows and columns added to one side of the output, as "
        "nn.ConvTranspose2d's `output_padding`: picks among the sizes a stride can give, and "
        "must be smaller than the stride or the dilation. Default: 0.",
    )
    dilation: PosPair = Field(
        (1, 1),
        description="The spacing between the kernel's taps, as nn.ConvTranspose2d's "
        "`dilation`: a number or `[height, width]`. Default: 1.",
    )
    groups: PosInt = Field(1, description=_groups("nn.ConvTranspose2d"))
    bias: Annotated[bool, Field(strict=True)] = Field(True, description=_bias("nn.ConvTranspose2d"))
    in_: PosInt | None = Field(None, alias="in", description=_in("nn.ConvTranspose2d"))

    @model_validator(mode="after")
    def _output_padding(self) -> ConvTransposeArgs:
        for axis in (0, 1):
            if self.output_padding[axis] >= max(self.stride[axis], self.dilation[axis]):
                raise ValueError(
                    f"output_padding {fmt_pair(self.output_padding)} must be smaller than the "
                    f"stride or the dilation ({fmt_pair(self.stride)}, "
                    f"{fmt_pair(self.dilation)}): it picks one of the sizes a stride makes"
                )
        return self


@register
class ConvTranspose(Op):
    """2-D transposed convolution (nn.ConvTranspose2d): upsamples by `stride`, as a U-Net's
    decoder does; `output_padding` picks among the sizes a stride can give."""

    name = "conv_transpose"
    fresh_output = True
    Args = ConvTransposeArgs
    kind = "conv"
    example = ((8, 4, 4), ("conv_transpose: {in: 8, out: 4, kernel: 2, stride: 2}",))

    @staticmethod
    def size(a: ConvTransposeArgs, size: int, axis: int) -> int:
        """PyTorch's output size along an axis."""
        return (
            (size - 1) * a.stride[axis]
            - 2 * a.padding[axis]
            + a.dilation[axis] * (a.kernel[axis] - 1)
            + a.output_padding[axis]
            + 1
        )

    @classmethod
    def infer(cls, a: ConvTransposeArgs, inputs: list[Shape], ctx: Context) -> Shape | None:
        (x,) = inputs
        if not require_map(ctx, x, "a transposed conv cannot follow a flatten or a linear layer"):
            return None
        c, h, w = x
        if a.in_ is not None:
            cls.check_in(a.in_, x, ctx)
        if not _groups_divide(ctx, a.groups, c, a.out):
            return None
        hw = (cls.size(a, h, 0), cls.size(a, w, 1))
        if min(hw) <= 0:
            ctx.error(
                "spatial-collapse",
                f"`{ctx.name}` ({cls.describe(a)}) turns {fmt_shape((h, w))} into "
                f"{fmt_shape(hw)}: its padding removes more than the map has",
                "padding",
                label="the map is too small here",
                notes=(f"`{ctx.source(0)}` gives a {fmt_shape((h, w))} map",),
            )
            return None
        return (a.out, *hw)

    check_in = classmethod(Conv.check_in.__func__)  # the same `in:` check as a conv

    @classmethod
    def count_params(cls, a: ConvTransposeArgs, inputs: list[Shape], out: Shape) -> int:
        weights = inputs[0][0] * (a.out // a.groups) * a.kernel[0] * a.kernel[1]
        return weights + (a.out if a.bias else 0)

    @classmethod
    def count_macs(cls, a: ConvTransposeArgs, inputs: list[Shape], out: Shape) -> int:
        # every input pixel is multiplied by every weight of its group: in x out/groups x k x k
        c, h, w = inputs[0]
        return c * (a.out // a.groups) * a.kernel[0] * a.kernel[1] * h * w

    @classmethod
    def torch_module(cls, a: ConvTransposeArgs, inputs: list[Shape]) -> TorchCall:
        return TorchCall(
            "ConvTranspose2d",
            (inputs[0][0], a.out),
            keywords(
                kernel_size=(square(a.kernel), REQUIRED),
                stride=(square(a.stride), 1),
                padding=(square(a.padding), 0),
                output_padding=(square(a.output_padding), 0),
                groups=(a.groups, 1),
                bias=(a.bias, True),
                dilation=(square(a.dilation), 1),
            ),
            names=("in_channels", "out_channels"),
        )

    @classmethod
    def describe(cls, a: ConvTransposeArgs) -> str:
        return _describe("conv transpose", a, a.output_padding)
