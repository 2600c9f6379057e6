"""Ops of a residual branch: stochastic depth and a learned per-channel scale (ConvNeXt)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .base import (
    REQUIRED,
    NodeArgs,
    Shape,
    ShapeKeeping,
    TorchCall,
    TorchParameter,
    keywords,
    register,
)


class StochasticDepthArgs(NodeArgs):
    p: Annotated[float, Field(ge=0, le=1)] = Field(
        description="The probability of zeroing the branch while training, from 0 to 1, as "
        "torchvision's StochasticDepth's `p` (`stochastic_depth: 0.1`).",
    )
    mode: Literal["row", "batch"] = Field(
        "row",
        description="`row`: each sample's branch is dropped on its own; `batch`: the whole "
        "batch's at once, as torchvision's StochasticDepth's `mode`. Default: row.",
    )


@register
class StochasticDepth(ShapeKeeping):
    """zeroes a residual branch with probability `p` while training (torchvision's StochasticDepth).

    Per sample (`mode: row`) or for the whole batch (`batch`), scaling what it keeps by
    1 / (1 - p); the identity in eval mode."""

    name = "stochastic_depth"
    example = ((3, 8, 8), ("stochastic_depth: {p: 0.1}",))
    Args = StochasticDepthArgs
    primary = "p"
    kind = "dropout"

    @classmethod
    def torch_module(cls, a: StochasticDepthArgs, inputs: list[Shape]) -> TorchCall:
        # Dropout of a tensor of ones is torchvision's noise: bernoulli(1 - p) / (1 - p), and
        # the ones in eval mode. A module rather than an expression keeps `p` out of forward,
        # so blocks whose probabilities differ share one class in generated code.
        return TorchCall("Dropout", (), keywords(p=(a.p, 0.5)))

    @classmethod
    def torch_apply(cls, a: StochasticDepthArgs, module: str, x: str, shapes: list[Shape]) -> str:
        ones = "1, " * len(shapes[0])
        batch = f"{x}.size(0), " if a.mode == "row" else "1, "
        return f"{x} * {module}({x}.new_ones(({batch}{ones.rstrip(', ')})))"

    @classmethod
    def describe(cls, a: StochasticDepthArgs) -> str:
        return f"stochastic depth {a.p:g}" + (" (batch)" if a.mode == "batch" else "")


class LayerScaleArgs(NodeArgs):
    init: Annotated[float, Field(allow_inf_nan=False)] = Field(
        1e-6,
        description="The initial value of every channel's scale, as ConvNeXt's "
        "`layer_scale` (`layer_scale: 1.0e-6`). Default: 1e-6.",
    )


@register
class LayerScale(ShapeKeeping):
    """a learned scale per channel, initially `init` (ConvNeXt's layer scale).

    A bare parameter of shape Cx1x1 (C for features) whose state_dict key is the layer's
    name itself."""

    name = "layer_scale"
    example = ((3, 8, 8), ("layer_scale: {init: 0.1}",))
    Args = LayerScaleArgs
    primary = "init"
    kind = "other"

    @classmethod
    def count_params(cls, a: LayerScaleArgs, inputs: list[Shape], out: Shape) -> int:
        return inputs[0][0]

    @classmethod
    def torch_module(cls, a: LayerScaleArgs, inputs: list[Shape]) -> TorchParameter:
        (x,) = inputs
        rest = len(x) - 1
        return TorchParameter(
            args=(x[0], *(1,) * rest),
            kwargs=keywords(fill_value=(a.init, REQUIRED)),
            names=("channels", *(f"dim{i}" for i in range(2, rest + 2))),
        )

    @classmethod
    def torch_apply(cls, a: LayerScaleArgs, module: str, x: str, shapes: list[Shape]) -> str:
        return f"{module} * {x}"

    @classmethod
    def describe(cls, a: LayerScaleArgs) -> str:
        return f"layer scale {a.init:g}"
