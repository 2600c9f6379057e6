"""Elementwise ops: activations, dropout and identity. They keep the shape."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from .base import Context, NodeArgs, Op, Shape, register


class _Elementwise(Op):
    kind = "act"
    passthrough = True

    @classmethod
    def infer(cls, a: Any, inputs: list[Shape], ctx: Context) -> Shape | None:
        return inputs[0]


def _simple(op_name: str, doc: str) -> type[Op]:
    cls = type(op_name.title().replace("_", ""), (_Elementwise,), {"name": op_name, "__doc__": doc})
    return register(cls)


ReLU = _simple("relu", "max(0, x)")
ReLU6 = _simple("relu6", "min(max(0, x), 6)")
GELU = _simple("gelu", "Gaussian error linear unit")
SiLU = _simple("silu", "x * sigmoid(x)")
Sigmoid = _simple("sigmoid", "logistic sigmoid")
Tanh = _simple("tanh", "hyperbolic tangent")
Identity = _simple("identity", "passes its input through")


class LeakyReluArgs(NodeArgs):
    negative_slope: Annotated[float, Field(ge=0)] = 0.01


@register
class LeakyReLU(_Elementwise):
    name = "leaky_relu"
    Args = LeakyReluArgs
    primary = "negative_slope"


class SoftmaxArgs(NodeArgs):
    dim: Annotated[int, Field(ge=1, le=3, strict=True)] = 1


@register
class Softmax(_Elementwise):
    name = "softmax"
    Args = SoftmaxArgs
    primary = "dim"


class DropoutArgs(NodeArgs):
    p: Annotated[float, Field(ge=0, lt=1)] = 0.5


@register
class Dropout(_Elementwise):
    name = "dropout"
    Args = DropoutArgs
    primary = "p"
    kind = "dropout"

    @classmethod
    def describe(cls, a: DropoutArgs) -> str:
        return f"dropout {a.p:g}"
