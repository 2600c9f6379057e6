"""The op registry: importing this package registers every op."""

from . import (  # noqa: F401
    activation,
    channels,
    composite,
    conv,
    linear,
    merge,
    norm,
    pool,
    residual,
    resize,
    tensor,
)
from .base import ALIASES, OPS, NodeArgs, Op, register

__all__ = ["ALIASES", "OPS", "NodeArgs", "Op", "register"]
