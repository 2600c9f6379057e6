"""The table of ops in the README, rendered from the ops themselves: name, fields and what the
op does, all read from its class (`make generate` rewrites the table; `tests/test_ops.py`
fails when it is stale)."""

from __future__ import annotations

from typing import Any

from pydantic_core import PydanticUndefined

from . import OPS
from .base import NodeArgs, Op

BEGIN = "<!-- ops: generated from compiler/ops/ by `make generate`; do not edit -->"
END = "<!-- end of ops -->"


def _value(value: Any) -> str:
    if isinstance(value, tuple) and len(value) == 2 and value[0] == value[1]:
        value = value[0]  # a pair written as one number
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def fields(op: type[Op]) -> str:
    """`out`, `kernel`, `stride: 1`, ...: the op's own fields (required ones bare, others with
    their default; the field a single value fills first, in bold)."""
    parts = []
    for key, info in op.Args.model_fields.items():
        if key in NodeArgs.model_fields:
            continue
        name = info.alias or key
        text = f"`{name}`"
        if info.default is not PydanticUndefined and info.default is not None:
            text = f"`{name}: {_value(info.default)}`"
        parts.append(f"**{text}**" if name == op.primary else text)
    if op.primary == "from":
        parts.insert(0, "**`from`**")
    return ", ".join(parts) or "-"


def summary(op: type[Op]) -> str:
    """The first paragraph of the op's docstring, on one line: what it does."""
    paragraph = (op.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(paragraph.split()).removesuffix(".")


def render() -> str:
    lines = ["| op | fields | what it does |", "| --- | --- | --- |"]
    lines += [f"| `{name}` | {fields(op)} | {summary(op)} |" for name, op in OPS.items()]
    return "\n".join(lines)
