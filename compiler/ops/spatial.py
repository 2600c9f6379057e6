"""Sliding-window arithmetic shared by convolution and pooling, exactly as PyTorch computes it.

`out = floor((size + 2*pad - dilation*(kernel-1) - 1) / stride) + 1` per spatial axis, with
PyTorch's ceil-mode rule (the last window must start inside the input or the left padding) and
Keras' `same`. A window has one entry per spatial axis: one for a [C, L] input (Conv1d), two
for [C, H, W], three for [C, D, H, W] (a video's frames first).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PrivateAttr, model_validator

from ..syntax import Shape, fmt_shape
from .base import Context, NodeArgs, NonNegInt, PosInt

# the words messages use for each axis, by the number of spatial axes
LINES = {1: ("positions",), 2: ("rows", "columns"), 3: ("frames", "rows", "columns")}
DIMENSIONS = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}
MAPS = {1: "CxL", 2: "CxHxW", 3: "CxDxHxW"}
MAX_AXES = 3


def _per_axis(value: Any) -> Any:
    """`3` -> `(3, 3)` (one number serves every axis, see `WindowArgs.axes`); lists stay
    lists so pydantic checks their length and items."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    if not isinstance(value, list | tuple):
        raise ValueError(
            "must be a whole number or a list of one per spatial axis: [length], "
            "[height, width] or [depth, height, width]"
        )
    return value


PosList = Annotated[list[PosInt], Field(min_length=1, max_length=MAX_AXES)]
NonNegList = Annotated[list[NonNegInt], Field(min_length=1, max_length=MAX_AXES)]
PosSizes = Annotated[
    tuple[PosInt, ...],
    Field(min_length=1, max_length=MAX_AXES),
    BeforeValidator(_per_axis, json_schema_input_type=PosInt | PosList),
]
NonNegSizes = Annotated[
    tuple[NonNegInt, ...],
    Field(min_length=1, max_length=MAX_AXES),
    BeforeValidator(_per_axis, json_schema_input_type=NonNegInt | NonNegList),
]


def _padding(value: Any) -> Any:
    if value == "valid":
        return (0, 0)
    if value == "same":
        return "same"
    if isinstance(value, str):
        raise ValueError("padding must be a number, a list of numbers, `same` or `valid`")
    return _per_axis(value)


# "same" keeps ceil(size / stride), as Keras and TensorFlow do (PyTorch's `padding="same"` is
# the stride-1 case of it).
SizesPadding = Annotated[
    Literal["same"] | Annotated[tuple[NonNegInt, ...], Field(min_length=1, max_length=MAX_AXES)],
    BeforeValidator(
        _padding,
        json_schema_input_type=Literal["same", "valid"] | NonNegInt | NonNegList,
    ),
]

WINDOW_FIELDS = (
    "kernel",
    "stride",
    "padding",
    "dilation",
    "output_padding",
    "output",
    "size",
    "scale",
)


class WindowArgs(NodeArgs):
    """The arguments of an op whose window follows its input's rank: a number serves every
    spatial axis, a list gives one value per axis and must have as many as the input has."""

    # the window fields written as lists; the others (numbers, defaults) serve every axis
    _listed: frozenset[str] = PrivateAttr(default=frozenset())

    @model_validator(mode="wrap")
    @classmethod
    def _note_lists(cls, data: Any, handler: Any) -> Any:
        model = handler(data)
        if isinstance(data, dict):
            model._listed = frozenset(
                k for k in WINDOW_FIELDS if isinstance(data.get(k), list | tuple)
            )
        return model

    def axes(self, field: str, n: int) -> Any:
        """`field` for `n` spatial axes: a tuple of n, `"same"`, or None if it is unset."""
        value = getattr(self, field)
        # a number is stored as a pair: for the common 2-D map it is the answer as it is,
        # without the look at `_listed` (a private attribute, slow to read from pydantic)
        if value is None or isinstance(value, str) or (n == 2 and len(value) == 2):
            return value
        if field in self._listed:
            return value
        return (value[0],) * n

    def rank_problem(self, n: int) -> tuple[str, tuple[int, ...]] | None:
        """The first field written as a list whose length is not `n`."""
        listed = self._listed
        for field in WINDOW_FIELDS if listed else ():
            value = getattr(self, field, None)
            if field in listed and not isinstance(value, str) and len(value) != n:
                return field, value
        return None


def input_axes(inputs: list[Shape]) -> int:
    """The spatial axes of an op's input map (2 where the input is unknown or not a map)."""
    n = len(inputs[0]) - 1 if inputs and inputs[0] else 2
    return n if 1 <= n <= MAX_AXES else 2


def spatial_axes(ctx: Context, a: WindowArgs, x: Shape, what: str | None = None) -> int | None:
    """The spatial axes of map `x` (1 to 3), or None after reporting `rank-mismatch`: `x` is
    not a map, or a field lists a value per axis for another number of axes."""
    n = len(x) - 1
    if not 1 <= n <= MAX_AXES:
        ctx.error(
            "rank-mismatch",
            f"`{ctx.name}` needs a CxL, CxHxW or CxDxHxW map but `{ctx.source(0)}` gives "
            f"{fmt_shape(x)}",
            help=what,
        )
        return None
    problem = a.rank_problem(n)
    if problem is not None:
        field, value = problem
        ctx.error(
            "rank-mismatch",
            f"`{ctx.name}` has {_count(len(value), 'value')} in `{field}` but its "
            f"{fmt_shape(x)} input has {n} spatial {'axes' if n > 1 else 'axis'}",
            field,
            label=_count(len(value), "value"),
            notes=(f"`{ctx.source(0)}` gives a {MAPS[n]} map, {fmt_shape(x)}",),
            help=f"write one value per axis, [{', '.join(DIMENSIONS[n])}], or one number for all",
        )
        return None
    return n


@dataclass(frozen=True)
class Window:
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...] | str  # "same" or per-axis symmetric padding
    dilation: tuple[int, ...] = (1, 1)
    ceil_mode: bool = False

    @property
    def axes(self) -> int:
        return len(self.kernel)

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

    def out_sizes(self, sizes: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(self.out_size(size, axis) for axis, size in enumerate(sizes))

    def same_total(self, size: int, axis: int) -> int:
        """The padding `same` adds along an axis, both sides together."""
        out = self.out_size(size, axis)
        return max((out - 1) * self.stride[axis] + self.effective(axis) - size, 0)

    def same_pads(self, sizes: tuple[int, ...]) -> tuple[int, ...]:
        """F.pad's (left, right, top, bottom, ...) for `same`: the extra pixel goes last."""
        pads = []
        for axis in reversed(range(len(sizes))):  # F.pad lists the last dimension first
            total = self.same_total(sizes[axis], axis)
            pads += [total // 2, total - total // 2]
        return tuple(pads)

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


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def window_out(ctx: Context, what: str, hw: tuple[int, ...], win: Window) -> tuple[int, ...] | None:
    """The output's spatial sizes; reports collapse and dropped pixels through `ctx`."""
    n = len(hw)
    out = win.out_sizes(hw)
    if min(out) <= 0:
        ctx.error(
            "spatial-collapse",
            f"`{ctx.name}` ({what}) reduces {fmt_shape(hw)} to {fmt_shape(out)}",
            label="the map is too small here",
            notes=(f"`{ctx.source(0)}` gives a {fmt_shape(hw)} map",),
        )
        return None
    dropped = [win.dropped(hw[a], a) for a in range(n)]
    if any(dropped):
        lines = LINES[n]
        if len(set(dropped)) == 1:
            count = dropped[0]
            words = [w[:-1] if count == 1 else w for w in lines]
            what_dropped = f"the last {'' if count == 1 else f'{count} '}{_and(words)}"
        else:
            what_dropped = _and(
                [f"the last {_lines(d, lines[a])}" for a, d in enumerate(dropped) if d]
            )
        fits = tuple(hw[a] - dropped[a] for a in range(n))
        grow = tuple(hw[a] + win.stride[a] - dropped[a] for a in range(n))
        single = [d for d in dropped if d] == [1]  # "the last column is", not "are"
        ctx.warning(
            "stride-remainder",
            f"stride {fmt_pair(win.stride)} of `{ctx.name}` does not tile its "
            f"{fmt_shape(hw)} input: {what_dropped} {'is' if single else 'are'} never read",
            field="stride",
            label="pixels are dropped",
            notes=(
                f"kernel {fmt_pair(win.kernel)}, padding {fmt_pair(win.padding)}: "
                f"the windows cover {fmt_shape(fits)} of the input",
            ),
            help=f"an input of {fmt_shape(fits)} or {fmt_shape(grow)} "
            "tiles exactly; or change the padding",
        )
    return out


def _lines(n: int, word: str) -> str:
    return word[:-1] if n == 1 else f"{n} {word}"


def fmt_pair(value: tuple[int, ...] | str) -> str:
    """`(2, 2)` -> `2`, `(1, 2)` -> `1x2`, `(3, 7, 7)` -> `3x7x7`, `"same"` stays."""
    if isinstance(value, str):
        return value
    return str(value[0]) if len(set(value)) == 1 else "x".join(map(str, value))


def padding_hint(win: Window, hw: tuple[int, ...], want: tuple[int, ...]) -> str | None:
    """The symmetric padding (and ceil mode) that would turn `hw` into `want`, if any."""
    if win.padding == "same":
        return None
    for ceil in (win.ceil_mode, not win.ceil_mode):
        for pad in range(0, max(win.kernel) + 1):
            trial = Window(win.kernel, win.stride, (pad,) * len(hw), win.dilation, ceil)
            if trial.out_sizes(hw) == want:
                if ceil == win.ceil_mode:
                    return f"padding {pad} gives {fmt_shape(want)}"
                return f"padding {pad} with ceil_mode: {str(ceil).lower()} gives {fmt_shape(want)}"
    return None
