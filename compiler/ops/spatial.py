"""Sliding-window arithmetic shared by convolution and pooling, exactly as PyTorch computes it.

`out = floor((size + 2*pad - dilation*(kernel-1) - 1) / stride) + 1`, with PyTorch's ceil-mode
rule (the last window must start inside the input or the left padding) and Keras' `same`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..syntax import fmt_shape
from .base import Context

AXES = ("rows", "columns")


@dataclass(frozen=True)
class Window:
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int] | str  # "same" or per-axis symmetric padding
    dilation: tuple[int, int] = (1, 1)
    ceil_mode: bool = False

    def effective(self, axis: int) -> int:
        return self.dilation[axis] * (self.kernel[axis] - 1) + 1

    def out_size(self, size: int, axis: int) -> int:
        k, s = self.effective(axis), self.stride[axis]
        if self.padding == "same":
            return math.ceil(size / s)
        p = self.padding[axis]
        if self.ceil_mode:
            out = -((-(size + 2 * p - k)) // s) + 1  # ceil division
            # PyTorch: the last pooling window must start inside the input or left padding
            if (out - 1) * s >= size + p:
                out -= 1
            return out
        return (size + 2 * p - k) // s + 1

    def same_total(self, size: int, axis: int) -> int:
        """The padding `same` adds along an axis, both sides together."""
        out = self.out_size(size, axis)
        return max((out - 1) * self.stride[axis] + self.effective(axis) - size, 0)

    def same_pads(self, hw: tuple[int, ...]) -> tuple[int, int, int, int]:
        """F.pad's (left, right, top, bottom) for `same`: the extra pixel goes right/bottom."""
        pads = []
        for axis in (1, 0):  # F.pad lists the last dimension first
            total = self.same_total(hw[axis], axis)
            pads += [total // 2, total - total // 2]
        return tuple(pads)  # type: ignore[return-value]

    def blind(self, size: int, axis: int) -> list[int]:
        """Output positions along an axis whose window reads padding only (no input pixel).

        Only a dilated window can: its taps skip over the pixels between them, so on a small
        map they can land on the padding on both sides (kernel 2, dilation 2 on 1 pixel, padded
        by 1, reads the positions -1 and +1).
        """
        k, d, s = self.kernel[axis], self.dilation[axis], self.stride[axis]
        if d == 1:
            return []
        left = self.same_total(size, axis) // 2 if self.padding == "same" else self.padding[axis]
        return [
            o
            for o in range(self.out_size(size, axis))
            if not any(0 <= o * s - left + j * d < size for j in range(k))
        ]

    def dropped(self, size: int, axis: int) -> int:
        """Input pixels (not padding) that no window reads, at the end of the axis.

        A window narrower than its stride (ResNet's 1x1/2 shortcut) skips pixels everywhere by
        design; only windows that cover the interior can drop something at the edge alone.
        """
        if self.padding == "same" or self.ceil_mode:
            return 0
        k, s, p = self.effective(axis), self.stride[axis], self.padding[axis]
        if k < s:
            return 0
        remainder = (size + 2 * p - k) % s
        return max(0, remainder - p)


def window_out(ctx: Context, what: str, hw: tuple[int, int], win: Window) -> tuple[int, int] | None:
    """Output height and width; reports collapse and dropped pixels through `ctx`."""
    out = (win.out_size(hw[0], 0), win.out_size(hw[1], 1))
    if min(out) <= 0:
        ctx.error(
            "spatial-collapse",
            f"`{ctx.name}` ({what}) reduces {fmt_shape(hw)} to {fmt_shape(out)}",
            label="the map is too small here",
            notes=(f"`{ctx.source(0)}` gives a {fmt_shape(hw)} map",),
        )
        return None
    dropped = [win.dropped(hw[a], a) for a in (0, 1)]
    if any(dropped):
        if dropped[0] == dropped[1]:
            what_dropped = (
                "the last row and column"
                if dropped[0] == 1
                else f"the last {dropped[0]} rows and columns"
            )
        else:
            what_dropped = " and ".join(
                f"the last {_lines(d, a)}" for a, d in enumerate(dropped) if d
            )
        fits = [hw[a] - dropped[a] for a in (0, 1)]
        grow = [hw[a] + win.stride[a] - dropped[a] for a in (0, 1)]
        ctx.warning(
            "stride-remainder",
            f"stride {fmt_pair(win.stride)} of `{ctx.name}` does not tile its "
            f"{fmt_shape(hw)} input: {what_dropped} are never read",
            field="stride",
            label="pixels are dropped",
            notes=(
                f"kernel {fmt_pair(win.kernel)}, padding {fmt_pair(win.padding)}: "
                f"the windows cover {fmt_shape(tuple(fits))} of the input",
            ),
            help=f"an input of {fmt_shape(tuple(fits))} or {fmt_shape(tuple(grow))} "
            "tiles exactly; or change the padding",
        )
    return out


def _lines(n: int, axis: int) -> str:
    word = AXES[axis] if n != 1 else AXES[axis][:-1]
    return word if n == 1 else f"{n} {word}"


def fmt_pair(value: tuple[int, int] | str) -> str:
    """`(2, 2)` -> `2`, `(1, 2)` -> `1x2`, `"same"` stays."""
    if isinstance(value, str):
        return value
    return str(value[0]) if value[0] == value[1] else f"{value[0]}x{value[1]}"


def padding_hint(win: Window, hw: tuple[int, int], want: tuple[int, int]) -> str | None:
    """The symmetric padding (and ceil mode) that would turn `hw` into `want`, if any."""
    if win.padding == "same":
        return None
    for ceil in (win.ceil_mode, not win.ceil_mode):
        for pad in range(0, max(win.kernel) + 1):
            trial = Window(win.kernel, win.stride, (pad, pad), win.dilation, ceil)
            if (trial.out_size(hw[0], 0), trial.out_size(hw[1], 1)) == want:
                if ceil == win.ceil_mode:
                    return f"padding {pad} gives {fmt_shape(want)}"
                return f"padding {pad} with ceil_mode: {str(ceil).lower()} gives {fmt_shape(want)}"
    return None
