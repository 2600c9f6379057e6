"""Max, average and adaptive pooling."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from .base import (
    REQUIRED,
    BuildError,
    Context,
    NodeArgs,
    Op,
    Padding,
    PosPair,
    Shape,
    TorchCall,
    keywords,
    register,
    require_map,
    square,
)
from .spatial import Window, fmt_pair, padding_hint, window_out

Bool = Annotated[bool, Field(strict=True)]


class PoolArgs(NodeArgs):
    kernel: PosPair
    stride: PosPair | None = None  # PyTorch's default: the kernel size
    padding: Padding = (0, 0)
    ceil_mode: Bool = False

    def window(self) -> Window:
        stride = self.stride or self.kernel
        return Window(
            self.kernel, stride, self.padding, getattr(self, "dilation", (1, 1)), self.ceil_mode
        )


class MaxPoolArgs(PoolArgs):
    dilation: PosPair = (1, 1)


class AvgPoolArgs(PoolArgs):
    count_include_pad: Bool = True


class _Pool(Op):
    kind = "pool"
    primary = "kernel"
    label = "pool"

    @classmethod
    def infer(cls, a: Any, inputs: list[Shape], ctx: Context) -> Shape | None:
        (x,) = inputs
        if not require_map(ctx, x):
            return None
        win = a.window()
        if win.padding != "same":
            for axis in (0, 1):
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
                    return None
        hw = window_out(ctx, cls.describe(a), (x[1], x[2]), win)
        if hw is None:
            return None
        for axis, size in ((0, x[1]), (1, x[2])):
            blind = win.blind(size, axis)
            if blind:
                ctx.error(
                    "pool-padding",
                    f"`{ctx.name}` ({cls.describe(a)} dilation {fmt_pair(win.dilation)}) has "
                    f"{len(blind)} of its {hw[axis]} windows along the "
                    f"{('height', 'width')[axis]} reading padding only: its taps skip the "
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
        return (x[0], *hw)

    @classmethod
    def torch_pad(cls, a: Any, inputs: list[Shape]) -> tuple[tuple[int, ...], float] | None:
        win = a.window()
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
    def _torch_common(cls, a: Any) -> tuple[tuple[str, Any], ...]:
        win = a.window()
        padding = 0 if win.padding == "same" else square(win.padding)
        return keywords(
            kernel_size=(square(a.kernel), REQUIRED),
            stride=(square(win.stride), square(a.kernel)),
            padding=(padding, 0),
        )

    @classmethod
    def describe(cls, a: Any) -> str:
        win = a.window()
        text = f"{cls.label} {a.kernel[0]}x{a.kernel[1]}"
        if win.stride != (1, 1):
            text += f"/{fmt_pair(win.stride)}"
        if win.padding != (0, 0):
            text += f" pad {fmt_pair(win.padding)}"
        if win.ceil_mode:
            text += " ceil"
        return text

    @classmethod
    def hint(cls, a: Any, inputs: list[Shape], expected: Shape) -> str | None:
        x = inputs[0]
        if len(x) != 3 or len(expected) != 3 or expected[0] != x[0]:
            return None
        win = a.window()
        if (win.out_size(x[1], 0), win.out_size(x[2], 1)) == expected[1:]:
            return None
        return padding_hint(win, (x[1], x[2]), (expected[1], expected[2]))


@register
class MaxPool(_Pool):
    """max pooling over a `kernel` window (`stride` defaults to the kernel)."""

    name = "maxpool"
    example = ((3, 8, 8), ("maxpool: {kernel: 3, stride: 2, padding: 1}",))
    Args = MaxPoolArgs
    label = "maxpool"

    @classmethod
    def torch_module(cls, a: MaxPoolArgs, inputs: list[Shape]) -> TorchCall:
        return TorchCall(
            "MaxPool2d",
            (),
            (
                *cls._torch_common(a),
                *keywords(dilation=(square(a.dilation), 1), ceil_mode=(a.ceil_mode, False)),
            ),
        )


@register
class AvgPool(_Pool):
    """average pooling over a `kernel` window (`stride` defaults to the kernel)."""

    name = "avgpool"
    example = ((3, 8, 8), ("avgpool: 2",))
    Args = AvgPoolArgs
    label = "avgpool"

    @classmethod
    def torch_module(cls, a: AvgPoolArgs, inputs: list[Shape]) -> TorchCall:
        return TorchCall(
            "AvgPool2d",
            (),
            (
                *cls._torch_common(a),
                *keywords(
                    ceil_mode=(a.ceil_mode, False),
                    count_include_pad=(a.count_include_pad, True),
                ),
            ),
        )


class AdaptiveArgs(NodeArgs):
    output: PosPair = (1, 1)


class _Adaptive(Op):
    kind = "pool"
    primary = "output"
    Args = AdaptiveArgs
    label = "adaptive pool"

    @classmethod
    def infer(cls, a: AdaptiveArgs, inputs: list[Shape], ctx: Context) -> Shape | None:
        (x,) = inputs
        if not require_map(ctx, x):
            return None
        return (x[0], *a.output)

    @classmethod
    def describe(cls, a: AdaptiveArgs) -> str:
        return f"{cls.name} {a.output[0]}x{a.output[1]}"


@register
class AdaptiveAvgPool(_Adaptive):
    """average pooling to an `output` size, whatever the input size."""

    name = "adaptive_avgpool"
    example = ((3, 8, 8), ("adaptive_avgpool: 1",))
    label = "adaptive avgpool"

    @classmethod
    def torch_module(cls, a: AdaptiveArgs, inputs: list[Shape]) -> TorchCall:
        return TorchCall("AdaptiveAvgPool2d", (square(a.output),), names=("output_size",))


@register
class AdaptiveMaxPool(_Adaptive):
    """max pooling to an `output` size, whatever the input size."""

    name = "adaptive_maxpool"
    example = ((3, 8, 8), ("adaptive_maxpool: [2, 3]",))
    label = "adaptive maxpool"

    @classmethod
    def torch_module(cls, a: AdaptiveArgs, inputs: list[Shape]) -> TorchCall:
        return TorchCall("AdaptiveMaxPool2d", (square(a.output),), names=("output_size",))
