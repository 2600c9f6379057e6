"""Elementwise ops: activations, dropout and identity. They keep the shape."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from .base import (
    REQUIRED,
    Context,
    NodeArgs,
    Op,
    Shape,
    ShapeKeeping,
    TorchCall,
    fmt_shape,
    keywords,
    register,
)


class _Elementwise(ShapeKeeping):
    kind = "act"
    elementwise = True
    torch_name: str = ""

    @classmethod
    def torch_module(cls, a: Any, inputs: list[Shape]) -> TorchCall:
        return TorchCall(cls.torch_name)


def _simple(op_name: str, torch_name: str, doc: str, inplace: bool = False) -> type[Op]:
    attrs = {"name": op_name, "torch_name": torch_name, "__doc__": doc, "inplace": inplace}
    return register(type(torch_name, (_Elementwise,), attrs))


ReLU = _simple("relu", "ReLU", "max(0, x)", inplace=True)
ReLU6 = _simple("relu6", "ReLU6", "min(max(0, x), 6)", inplace=True)
GELU = _simple("gelu", "GELU", "Gaussian error linear unit")
SiLU = _simple("silu", "SiLU", "x * sigmoid(x)")
Sigmoid = _simple("sigmoid", "Sigmoid", "logistic sigmoid")
Tanh = _simple("tanh", "Tanh", "hyperbolic tangent")
Identity = _simple("identity", "Identity", "passes its input through")
Hardswish = _simple("hardswish", "Hardswish", "x * relu6(x + 3) / 6 (MobileNetV3)")
Hardsigmoid = _simple("hardsigmoid", "Hardsigmoid", "relu6(x + 3) / 6 (a squeeze-excitation gate)")


class LeakyReluArgs(NodeArgs):
    negative_slope: Annotated[float, Field(ge=0)] = Field(
        0.01,
        description="The slope for negative inputs, as nn.LeakyReLU's `negative_slope` "
        "(`leaky_relu: 0.1`). Default: 0.01.",
    )


@register
class LeakyReLU(_Elementwise):
    """max(0, x) + negative_slope * min(0, x)."""

    name = "leaky_relu"
    Args = LeakyReluArgs
    primary = "negative_slope"

    @classmethod
    def torch_module(cls, a: LeakyReluArgs, inputs: list[Shape]) -> TorchCall:
        return TorchCall("LeakyReLU", (), keywords(negative_slope=(a.negative_slope, 0.01)))


class SoftmaxArgs(NodeArgs):
    dim: Annotated[int, Field(ge=1, le=4, strict=True)] = Field(
        1,
        description="The dimension normalised over, counted as torch does with the batch 0: "
        "1 is the channels of a map or the features of a vector, as nn.Softmax's and "
        "nn.LogSoftmax's `dim`. Default: 1.",
    )


@register
class Softmax(_Elementwise):
    """exp(x) / sum(exp(x)) over dimension `dim` (1: the channels or features)."""

    name = "softmax"
    torch_name = "Softmax"
    Args = SoftmaxArgs
    primary = "dim"
    elementwise = False  # over a dimension the input must have

    @classmethod
    def infer(cls, a: SoftmaxArgs, inputs: list[Shape], ctx: Context) -> Shape | None:
        (x,) = inputs
        if a.dim > len(x):
            gives = (
                f"{x[0]} features, one dimension"
                if len(x) == 1
                else f"{fmt_shape(x)}, {len(x)} dimensions"
            )
            ctx.error(
                "rank-mismatch",
                f"`{ctx.name}` normalises over dimension {a.dim}, but `{ctx.source(0)}` gives "
                f"{gives} after the batch",
                "dim",
                help=f"`dim: 1` normalises over the {'features' if len(x) == 1 else 'channels'}",
            )
            return None
        return x

    @classmethod
    def torch_module(cls, a: SoftmaxArgs, inputs: list[Shape]) -> TorchCall:
        return TorchCall(cls.torch_name, (), keywords(dim=(a.dim, REQUIRED)))


@register
class LogSoftmax(Softmax):
    """log(softmax(x)) over dimension `dim`, computed stably (a classifier for NLL loss)."""

    name = "log_softmax"
    torch_name = "LogSoftmax"


class DropoutArgs(NodeArgs):
    p: Annotated[float, Field(ge=0, lt=1)] = Field(
        0.5,
        description="The probability that an element is zeroed while training, from 0 to "
        "below 1 (`dropout: 0.2`); the others are scaled by 1 / (1 - p). As nn.Dropout's `p`. "
        "Default: 0.5.",
    )


@register
class Dropout(_Elementwise):
    """zeroes each element with probability `p` while training; the identity in eval mode."""

    name = "dropout"
    Args = DropoutArgs
    primary = "p"
    kind = "dropout"

    @classmethod
    def torch_module(cls, a: DropoutArgs, inputs: list[Shape]) -> TorchCall:
        return TorchCall("Dropout", (), keywords(p=(a.p, 0.5)))

    @classmethod
    def describe(cls, a: DropoutArgs) -> str:
        return f"dropout {a.p:g}"
