"""The front end's vocabulary: a layer as written, and the shapes inference gives it.

A leaf module (it imports only `diagnostics`), so that the op registry (`ops/`) and the
resolved graph (`graph.py`) can both use these types without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .diagnostics import Span

Shape = tuple[int, ...]
# a location inside a layer's fields: `("stride",)`, `("c3", 1)`
Loc = tuple[Any, ...]


def fmt_shape(shape: Shape | None) -> str:
    """`480x28x28`, or `?` where inference could not tell."""
    return "?" if shape is None else "x".join(str(d) for d in shape)


@dataclass
class RawLayer:
    """One layer as written: op name, field values, and where each value came from.

    `spans` maps a location inside `fields` (`("stride",)`, `("c3", 1)`) to the span where that
    value was written; after parameter substitution it points at the parameter's value, so a
    diagnostic shows the line a person has to change.
    """

    op: str
    fields: dict[str, Any]
    span: Span | None
    spans: dict[Loc, Span] = field(default_factory=dict)
    key_spans: dict[str, Span] = field(default_factory=dict)

    def field_span(self, loc: Loc) -> Span | None:
        for i in range(len(loc), 0, -1):
            s = self.spans.get(tuple(loc[:i]))
            if s is not None:
                return s
        return self.span
