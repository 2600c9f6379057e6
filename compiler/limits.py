"""The size guard: how large a spec may expand, refused before the memory is spent.

`check_size` counts what the written layers multiply out to (repeats and block bodies, each
block counted once) before anything is expanded; expansion checks the running totals as it
goes, and predicts a repeat's total from its first copy.
"""

from __future__ import annotations

from typing import Any

from .diagnostics import Diagnostic, Span, error
from .ops import OPS
from .syntax import RawLayer

# How deep blocks, `seq`s and Inception modules may nest. torchvision's deepest nest 5 deep;
# every level costs every layer inside it (longer names and scopes, a longer chain of clusters):
# 140,000 layers in a 60-deep chain of blocks took 10 s to lint.
MAX_NESTING = 16
# The most primitive layers a spec may expand to. The largest real networks have a few
# thousand; the benchmarks lint 100,000. Refused as soon as it is known, before the memory is
# spent: a repeat's total is predicted from its first copy. At 250,000 the cheapest layers
# (`bn` in a flow list) took 7 s and 0.8 GB to lint; at 150,000, under 5 s and 1 GB.
MAX_LAYERS = 150_000
# The most block instances (and `seq`s and repeats) a spec may expand to: each costs more than
# a layer to resolve and to draw. DenseNet-121 has 62, GoogLeNet 30; a binary tree of blocks
# 17 deep (130,000 layers in 262,000 instances) took 18 s to lint and 25 s to write as DOT.
# 40,000 leaves room for the lint benchmark's 100,000-layer chain (28,572 instances).
MAX_INSTANCES = 40_000


class TooLarge(Exception):
    """Expansion stops: the spec expands past a limit (`diagnostic` says which)."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def too_large(
    key: str, span: Span | None, total: int, how: str = "", what: str = "layers"
) -> TooLarge:
    limit = MAX_LAYERS if what == "layers" else MAX_INSTANCES
    return TooLarge(
        error(
            "too-many-layers",
            f"`{key}` {how}makes the spec expand to {total:,} {what}; the limit is {limit:,}",
            span,
            help="is a repeat count or a block nesting larger than intended?",
        )
    )


def _op_of(item: Any) -> tuple[Any, Any]:
    """(op, fields) of a layer as written (`relu`, `{conv: {...}}`), for counting only."""
    if isinstance(item, dict) and item:
        op = next(iter(item))
        return op, item[op]
    return item, None


def check_size(items: list[RawLayer | None], blocks: dict[str, list[RawLayer | None]]) -> None:
    """Refuse a spec whose blocks multiply out past `MAX_LAYERS` before expanding any of
    them (`B2: [B1, B1]`, `B3: [B2, B2]` ... doubles with each level): counted from the
    written repeats and block bodies (`blocks`: block type -> its layers), memoised per block,
    so it costs one pass over them. Raises `TooLarge`."""
    sizes: dict[str, tuple[int, int]] = {}
    visiting: set[str] = set()

    def add(counts: Any) -> tuple[int, int]:
        pairs = list(counts)
        return sum(p[0] for p in pairs), sum(p[1] for p in pairs)

    def count(op: Any, fields: Any) -> tuple[int, int]:
        """(layers, instances) an item expands to."""
        repeat = fields.get("repeat", 1) if isinstance(fields, dict) else 1
        if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 1:
            repeat = 1  # an expression: the repeat itself is checked when it expands
        grouped = int(repeat > 1)  # a repeat is a container of its own
        if not isinstance(op, str):
            return 1, 0  # not a layer: reported when it is validated
        if op in blocks:
            if op not in sizes:
                if op in visiting:
                    return 0, 0  # a recursive block, reported when it is resolved
                visiting.add(op)
                sizes[op] = add(count(r.op, r.fields) for r in blocks[op] if r is not None)
                visiting.discard(op)
            layers, instances = sizes[op]
            return repeat * layers, repeat * (instances + 1) + grouped
        if op == "seq" and isinstance(fields, dict) and isinstance(fields.get("layers"), list):
            layers, instances = add(count(*_op_of(item)) for item in fields["layers"])
            return repeat * layers, repeat * (instances + 1) + grouped
        target = OPS.get(op)
        layers, instances = target.expanded_size(fields) if target is not None else (1, 0)
        return repeat * layers, repeat * instances + grouped

    total = instances = 0
    for raw in items:
        if raw is None:
            continue
        layers, inner = count(raw.op, raw.fields)
        total += layers
        instances += inner
        if total > MAX_LAYERS:
            raise too_large(raw.op, raw.span, total, "")
        if instances > MAX_INSTANCES:
            raise too_large(raw.op, raw.span, instances, "", "block instances")
