"""The op registry: importing this package registers every op."""

from . import activation, channels, composite, conv, linear, merge, norm, pool  # noqa: F401
from .base import ALIASES, OPS, NodeArgs, Op, register

__all__ = ["ALIASES", "OPS", "NodeArgs", "Op", "register"]
