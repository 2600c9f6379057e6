"""2-D convolution, and its transpose."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, model_validator

from ..syntax import fmt_shape
from .base import (
    REQUIRED,
    Context,
    NodeArgs,
    NonNegInt,
    Op,
    Padding,
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
from .spatial import Window, fmt_pair, padding_hint, window_out


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


def _describe(what: str, a: Any, output_padding: tuple[int, int] = (0, 0)) -> str:
    """`conv 3x3/2 pad 1 groups 32, 64`: the window's fields that differ from the defaults."""
    text = f"{what} {a.kernel[0]}x{a.kernel[1]}"
    if a.stride != (1, 1):
        text += f"/{fmt_pair(a.stride)}"
    if a.padding != (0, 0):
        text += f" pad {fmt_pair(a.padding)}"
    if output_padding != (0, 0):
        text += f" out-pad {fmt_pair(output_padding)}"
    if a.dilation != (1, 1):
        text += f" dil {fmt_pair(a.dilation)}"
    if a.groups != 1:
        text += f" groups {a.groups}"
    return f"{text}, {a.out}"


class ConvArgs(NodeArgs):
    out: PosInt
    kernel: PosPair
    stride: PosPair = (1, 1)
    padding: Padding = (0, 0)
    dilation: PosPair = (1, 1)
    groups: PosInt = 1
    bias: Annotated[bool, Field(strict=True)] = True
    in_: PosInt | None = Field(None, alias="in")

    def window(self) -> Window:
        return Window(self.kernel, self.stride, self.padding, self.dilation)


@register
class Conv(Op):
    """2-D convolution (nn.Conv2d); `padding: same` keeps ceil(size / stride), as Keras does."""

    name = "conv"
    example = ((3, 8, 8), ("conv: {in: 3, out: 16, kernel: 3, stride: 2, padding: 1}",))
    Args = ConvArgs
    kind = "conv"

    @classmethod
    def infer(cls, a: ConvArgs, inputs: list[Shape], ctx: Context) -> Shape | None:
        (x,) = inputs
        if not require_map(ctx, x, "a conv cannot follow a flatten or a linear layer"):
            return None
        c, h, w = x
        if a.in_ is not None:
            cls.check_in(a.in_, x, ctx)
        if not _groups_divide(ctx, a.groups, c, a.out):
            return None
        hw = window_out(ctx, cls.describe(a), (h, w), a.window())
        return None if hw is None else (a.out, *hw)

    @classmethod
    def check_in(cls, declared: int, x: Shape, ctx: Context) -> None:
        if len(x) == 3 and declared != x[0]:
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
        weights = a.out * (c // a.groups) * a.kernel[0] * a.kernel[1]
        return weights + (a.out if a.bias else 0)

    @classmethod
    def count_macs(cls, a: ConvArgs, inputs: list[Shape], out: Shape) -> int:
        c = inputs[0][0]
        return a.out * (c // a.groups) * a.kernel[0] * a.kernel[1] * out[1] * out[2]

    @classmethod
    def torch_module(cls, a: ConvArgs, inputs: list[Shape]) -> TorchCall:
        padding: Any = square(a.padding) if a.padding != "same" else "same"
        if a.padding == "same" and a.stride != (1, 1):
            padding = 0  # applied by torch_pad: PyTorch's "same" allows stride 1 only
        return TorchCall(
            "Conv2d",
            (inputs[0][0], a.out),
            keywords(
                kernel_size=(square(a.kernel), REQUIRED),
                stride=(square(a.stride), 1),
                padding=(padding, 0),
                dilation=(square(a.dilation), 1),
                groups=(a.groups, 1),
                bias=(a.bias, True),
            ),
            names=("in_channels", "out_channels"),
        )

    @classmethod
    def torch_pad(cls, a: ConvArgs, inputs: list[Shape]) -> tuple[tuple[int, ...], float] | None:
        if a.padding != "same" or a.stride == (1, 1):
            return None
        return a.window().same_pads(inputs[0][1:]), 0.0

    @classmethod
    def describe(cls, a: ConvArgs) -> str:
        return _describe("conv", a)

    @classmethod
    def hint(cls, a: ConvArgs, inputs: list[Shape], expected: Shape) -> str | None:
        x = inputs[0]
        if len(x) != 3 or len(expected) != 3:
            return None
        parts = []
        if expected[0] != a.out:
            parts.append(f"`out: {expected[0]}` gives {expected[0]} channels")
        win = a.window()
        if (win.out_size(x[1], 0), win.out_size(x[2], 1)) != expected[1:]:
            hint = padding_hint(win, (x[1], x[2]), (expected[1], expected[2]))
            if hint:
                parts.append(hint)
        return "; ".join(parts) or None


NonNegPair = Annotated[
    tuple[NonNegInt, NonNegInt],
    BeforeValidator(_pair, json_schema_input_type=NonNegInt | tuple[NonNegInt, NonNegInt]),
]


class ConvTransposeArgs(NodeArgs):
    out: PosInt
    kernel: PosPair
    stride: PosPair = (1, 1)
    padding: NonNegPair = (0, 0)
    output_padding: NonNegPair = (0, 0)
    dilation: PosPair = (1, 1)
    groups: PosInt = 1
    bias: Annotated[bool, Field(strict=True)] = True
    in_: PosInt | None = Field(None, alias="in")

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
