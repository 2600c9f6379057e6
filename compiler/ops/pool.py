"""Max, average and adaptive pooling over 1, 2 or 3 spatial axes (their input's)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from ..syntax import fmt_shape
from .base import (
    REQUIRED,
    BuildError,
    Context,
    Op,
    Shape,
    TorchCall,
    keywords,
    register,
    square,
)
from .spatial import (
    DIMENSIONS,
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

Bool = Annotated[bool, Field(strict=True)]


class PoolArgs(WindowArgs):
    kernel: PosSizes = Field(
        description="The window's size, as nn.MaxPool2d's and nn.AvgPool2d's `kernel_size`: "
        "one number for every spatial axis (`kernel: 3`) or one per axis (`[1, 3, 3]` on a "
        "3-D map).",
    )
    stride: PosSizes | None = Field(
        None,
        description="The step between windows, as nn.MaxPool2d's and nn.AvgPool2d's "
        "`stride`: a number or one per axis. Default: the kernel size, as PyTorch's.",
    )
    padding: SizesPadding = Field(
        (0, 0),
        description="Padding on each side, at most half the kernel, as nn.MaxPool2d's and "
        "nn.AvgPool2d's `padding` (-inf for max, zeros for average): a number, one per axis, "
        "`valid` (0) or `same`, which keeps ceil(size / stride) as Keras does. Default: 0.",
    )
    ceil_mode: Bool = Field(
        False,
        description="Rounds the output size up rather than down, as nn.MaxPool2d's and "
        "nn.AvgPool2d's `ceil_mode`: a last, partial window is kept if it starts inside the "
        "input or the left padding (Caffe's pooling, GoogLeNet's). Default: false.",
    )

    def window(self, n: int = 2) -> Window:
        kernel = self.axes("kernel", n)
        dilation = self.axes("dilation", n) if hasattr(self, "dilation") else (1,) * n
        return Window(
            kernel,
            self.axes("stride", n) or kernel,
            self.axes("padding", n),
            dilation,
            self.ceil_mode,
        )


class MaxPoolArgs(PoolArgs):
    dilation: PosSizes = Field(
        (1, 1),
        description="The spacing between the window's taps, as nn.MaxPool2d's `dilation`: "
        "a number or one per axis. Default: 1.",
    )


class AvgPoolArgs(PoolArgs):
    count_include_pad: Bool = Field(
        True,
        description="Whether the padding's zeros count in each average's divisor, as "
        "nn.AvgPool2d's `count_include_pad`. Default: true.",
    )


class _Pool(Op):
    kind = "pool"
    primary = "kernel"
    label = "pool"

    @classmethod
    def infer(cls, a: Any, inputs: list[Shape], ctx: Context) -> Shape | None:
        (x,) = inputs
        n = spatial_axes(ctx, a, x)
        if n is None:
            return None
        win = a.window(n)
        if win.padding == "same" and cls.name == "avgpool" and any(win.same_pads(x[1:])):
            ctx.error(
                "pool-padding",
                f"`{ctx.name}` has `padding: same`, which must pad its {fmt_shape(x)} input: "
                "Keras then averages over the image pixels only, which PyTorch's average pools "
                "cannot express",
                "padding",
                label="cannot be built",
                help="write the padding as a number (with `count_include_pad: false` to leave "
                "the zeros out of the averages), or pool a map the window divides",
            )
        if win.padding != "same":
            for axis in range(n):
                # PyTorch compares with the kernel itself, dilation left out
                if 2 * win.padding[axis] > win.kernel[axis]:
                    ctx.error(
                        "pool-padding",
                        f"`{ctx.name}` pads {win.padding[axis]} on each side, more than half "
                        f"of its {win.kernel[axis]}-wide kernel",
                        "padding",
                        label="padding too large",
                        notes=(
                            "PyTorch rejects this: pad should be at most half of the kernel size",
                        ),
                        help=f"use padding {win.kernel[axis] // 2} or less",
                    )
                    # the output size is still defined: the layers after it are checked
                    # (an independent mistake there is reported now, not after this fix)
                    break
        sizes = window_out(ctx, cls.describe_at(a, inputs), x[1:], win)
        if sizes is None:
            return None
        for axis, size in enumerate(x[1:]):
            blind = win.blind(size, axis)
            if blind:
                ctx.error(
                    "pool-padding",
                    f"`{ctx.name}` ({cls.describe_at(a, inputs)} dilation "
                    f"{fmt_pair(win.dilation)}) has {len(blind)} of its {sizes[axis]} windows "
                    f"along the {DIMENSIONS[n][axis]} reading padding only: its taps skip the "
                    f"{size} input pixel{'s' if size > 1 else ''}",
                    "dilation",
                    label="these windows see no input",
                    notes=(
                        "max pooling pads with -inf, so those outputs are -inf (NaN after "
                        "the next layer)",
                    ),
                    help="use a smaller dilation, or pool a larger map",
                )
                return None
        return (x[0], *sizes)

    @classmethod
    def torch_pad(cls, a: Any, inputs: list[Shape]) -> tuple[tuple[int, ...], float] | None:
        win = a.window(input_axes(inputs))
        if win.padding != "same":
            return None
        pads = win.same_pads(inputs[0][1:])
        if not any(pads):
            return None
        if cls.name != "maxpool":
            raise BuildError(
                "avgpool with `padding: same` averages over the image pixels only (as Keras "
                "does), which PyTorch's AvgPool2d cannot express: use a numeric padding"
            )
        return pads, float("-inf")

    @classmethod
    def _torch_common(cls, a: Any, inputs: list[Shape]) -> tuple[tuple[str, Any, Any], ...]:
        win = a.window(input_axes(inputs))
        padding = 0 if win.padding == "same" else square(win.padding)
        return keywords(
            kernel_size=(square(win.kernel), REQUIRED),
            stride=(square(win.stride), square(win.kernel)),
            padding=(padding, 0),
        )

    @classmethod
    def describe(cls, a: Any) -> str:
        return cls._describe(a, 2)

    @classmethod
    def describe_at(cls, a: Any, inputs: list[Shape]) -> str:
        return cls._describe(a, input_axes(inputs))

    @classmethod
    def _describe(cls, a: Any, n: int) -> str:
        win = a.window(n)
        text = f"{cls.label} {'x'.join(map(str, win.kernel))}"
        if set(win.stride) != {1}:
            text += f"/{fmt_pair(win.stride)}"
        if win.padding == "same" or set(win.padding) != {0}:
            text += f" pad {fmt_pair(win.padding)}"
        if win.ceil_mode:
            text += " ceil"
        return text

    @classmethod
    def hint(cls, a: Any, inputs: list[Shape], expected: Shape) -> str | None:
        x = inputs[0]
        if len(x) < 2 or len(x) != len(expected) or expected[0] != x[0]:
            return None
        if a.rank_problem(len(x) - 1):
            return None
        win = a.window(len(x) - 1)
        if win.out_sizes(x[1:]) == expected[1:]:
            return None
        return padding_hint(win, x[1:], expected[1:])


@register
class MaxPool(_Pool):
    """max pooling over a `kernel` window (`stride` defaults to the kernel), 1-D to 3-D."""

    name = "maxpool"
    example = ((3, 8, 8), ("maxpool: {kernel: 3, stride: 2, padding: 1}",))
    Args = MaxPoolArgs
    label = "maxpool"

    @classmethod
    def torch_module(cls, a: MaxPoolArgs, inputs: list[Shape]) -> TorchCall:
        return TorchCall(
            f"MaxPool{input_axes(inputs)}d",
            (),
            (
                *cls._torch_common(a, inputs),
                *keywords(
                    dilation=(square(a.window(input_axes(inputs)).dilation), 1),
                    ceil_mode=(a.ceil_mode, False),
                ),
            ),
        )


@register
class AvgPool(_Pool):
    """average pooling over a `kernel` window (`stride` defaults to the kernel), 1-D to 3-D."""

    name = "avgpool"
    example = ((3, 8, 8), ("avgpool: 2",))
    Args = AvgPoolArgs
    label = "avgpool"

    @classmethod
    def torch_module(cls, a: AvgPoolArgs, inputs: list[Shape]) -> TorchCall:
        return TorchCall(
            f"AvgPool{input_axes(inputs)}d",
            (),
            (
                *cls._torch_common(a, inputs),
                *keywords(
                    ceil_mode=(a.ceil_mode, False),
                    count_include_pad=(a.count_include_pad, True),
                ),
            ),
        )


class AdaptiveArgs(WindowArgs):
    output: PosSizes = Field(
        (1, 1),
        description="The output's spatial size, whatever the input's, as "
        "nn.AdaptiveAvgPool2d's and nn.AdaptiveMaxPool2d's `output_size`: one number for "
        "every axis (`output: 1`, global pooling) or one per axis (`[7, 7]`). Default: 1.",
    )


class _Adaptive(Op):
    kind = "pool"
    primary = "output"
    Args = AdaptiveArgs
    label = "adaptive pool"
    torch_name = "AdaptiveAvgPool"

    @classmethod
    def infer(cls, a: AdaptiveArgs, inputs: list[Shape], ctx: Context) -> Shape | None:
        (x,) = inputs
        n = spatial_axes(ctx, a, x)
        if n is None:
            return None
        return (x[0], *a.axes("output", n))

    @classmethod
    def describe(cls, a: AdaptiveArgs) -> str:
        return f"{cls.name} {'x'.join(map(str, a.axes('output', 2)))}"

    @classmethod
    def describe_at(cls, a: AdaptiveArgs, inputs: list[Shape]) -> str:
        return f"{cls.name} {'x'.join(map(str, a.axes('output', input_axes(inputs))))}"

    @classmethod
    def torch_module(cls, a: AdaptiveArgs, inputs: list[Shape]) -> TorchCall:
        n = input_axes(inputs)
        output = square(a.axes("output", n))
        return TorchCall(f"{cls.torch_name}{n}d", (output,), names=("output_size",))


@register
class AdaptiveAvgPool(_Adaptive):
    """average pooling to an `output` size, whatever the input size (1, 2 or 3 axes)."""

    name = "adaptive_avgpool"
    example = ((3, 8, 8), ("adaptive_avgpool: 1",))
    label = "adaptive avgpool"


@register
class AdaptiveMaxPool(_Adaptive):
    """max pooling to an `output` size, whatever the input size (1, 2 or 3 axes)."""

    name = "adaptive_maxpool"
    example = ((3, 8, 8), ("adaptive_maxpool: [2, 3]",))
    label = "adaptive maxpool"
    torch_name = "AdaptiveMaxPool"
