"""The op registry: importing this package registers every op."""

from . import activation, composite, conv, linear, merge, norm, pool, resize  # noqa: F401
from .base import ALIASES, OPS, NodeArgs, Op, register

__all__ = ["ALIASES", "OPS", "NodeArgs", "Op", "register"]
