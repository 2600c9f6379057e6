"""Block definitions: the spec's `blocks:` -> `Block`s, and layers as written -> `RawLayer`s.

Also the name policy of block types and block parameters (a block type becomes a class of
generated code, a parameter a constructor argument), and the warning where two block types
would be one class there: the class names are `names.class_names`', the rule codegen follows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field, create_model

from .diagnostics import Diagnostic, Span, error, warning
from .graph import ArchGraph
from .loader import Document
from .names import class_names, problem, shadows, shown
from .ops import OPS, NodeArgs, Op
from .ops.base import COMMON_FIELDS, PosInt
from .schema import BlockSpec, Spec
from .syntax import Loc, RawLayer


@dataclass
class Block:
    name: str
    spec: BlockSpec
    args_model: type[NodeArgs]
    layers: list[RawLayer | None]
    param_spans: dict[str, Span | None] = field(default_factory=dict)
    used: bool = False


def group_spans(spans: dict[Loc, Span], prefix: Loc) -> dict[int, dict[Loc, Span]]:
    """Spans below `prefix + (i,)`, grouped by `i`, in one pass over `spans`."""
    n = len(prefix)
    groups: dict[int, dict[Loc, Span]] = defaultdict(dict)
    for loc, s in spans.items():
        if len(loc) > n and loc[:n] == prefix and isinstance(loc[n], int):
            groups[loc[n]][loc[n + 1 :]] = s
    return groups


def known_op(name: str, blocks: dict[str, Block]) -> type[Op] | Block | None:
    return blocks.get(name) or OPS.get(name)


def normalize(
    item: Any,
    spans: dict[Loc, Span],
    key_spans: dict[Loc, Span],
    fallback: Span | None,
    blocks: dict[str, Block],
) -> RawLayer | Diagnostic:
    """A layer as written (`- relu`, `- dropout: 0.4`, `- conv: {...}`) -> `RawLayer`."""
    whole = spans.get((), fallback)
    if isinstance(item, str):
        return RawLayer(item, {}, whole, {})
    if not isinstance(item, dict) or not item:
        return error(
            "invalid-layer",
            "a layer is an op name or one op with its fields",
            whole,
            help="write `- relu`, `- dropout: 0.5` or `- conv: {out: 64, kernel: 3}`",
        )
    if len(item) > 1:
        keys = [str(k) for k in item]
        ops = [k for k in keys if known_op(k, blocks)]
        others = [k for k in keys if k not in ops]
        help = "write one op per layer"
        if len(ops) == 1 and others:
            help = (
                f"put {', '.join(f'`{k}`' for k in others)} inside the `{ops[0]}` mapping: "
                f"`- {ops[0]}: {{{others[0]}: ...}}`"
            )
        return error(
            "invalid-layer",
            f"a layer has exactly one op key, found {len(keys)}: "
            + ", ".join(f"`{k}`" for k in keys),
            whole,
            help=help,
        )
    op, value = next(iter(item.items()))
    op = str(op)
    op_span = key_spans.get((op,), whole)
    inner = {loc[1:]: s for loc, s in spans.items() if loc[:1] == (op,) and len(loc) > 1}
    keys = {loc[1:]: s for loc, s in key_spans.items() if loc[:1] == (op,) and len(loc) > 1}
    if value is None:
        return RawLayer(op, {}, op_span, {})
    if isinstance(value, dict):
        fields = {str(k): v for k, v in value.items()}
        return RawLayer(
            op, fields, op_span, inner, {str(k[0]): s for k, s in keys.items() if len(k) == 1}
        )
    target = known_op(op, blocks)
    primary = getattr(target, "primary", None)
    if target is None or isinstance(target, Block) or primary is None:
        if target is None:
            return RawLayer(op, {}, op_span, {})  # reported as unknown-op later
        return error(
            "invalid-layer",
            f"`{op}` takes its fields as a mapping, not a single value",
            spans.get((op,), whole),
            help=f"write `- {op}: {{field: value}}`",
        )
    shifted = {(primary, *loc): s for loc, s in inner.items()}
    if (op,) in spans:
        shifted[(primary,)] = spans[(op,)]
    return RawLayer(op, {primary: value}, op_span, shifted)


def report(raw: RawLayer | Diagnostic, diags: list[Diagnostic]) -> RawLayer | None:
    """A normalized layer, or None once its diagnostic is reported."""
    if isinstance(raw, Diagnostic):
        diags.append(raw)
        return None
    return raw


def normalize_list(
    doc: Document,
    items: list[Any],
    prefix: Loc,
    blocks: dict[str, Block],
    diags: list[Diagnostic],
) -> list[RawLayer | None]:
    """The layers written at `prefix` (`("layers",)`, a block's layers), normalized."""
    groups = group_spans(doc.spans, prefix)
    kgroups = group_spans(doc.key_spans, prefix)
    return [
        report(
            normalize(item, groups.get(i, {}), kgroups.get(i, {}), doc.span((*prefix, i)), blocks),
            diags,
        )
        for i, item in enumerate(items)
    ]


# Names pydantic's models keep for themselves (a block's parameters are fields of one), and the
# field names of `from`, `if` and `in`
_MODEL_NAMES = frozenset(
    {n for n in dir(NodeArgs) if not n.startswith("_")} | {"from_", "if_", "in_"}
)


def block_name_problem(name: str) -> str | None:
    """Why `name` cannot name a block type (it becomes a class name in generated code)."""
    if name in OPS:
        return "is a built-in op"
    if name == "input":
        return "is reserved for the network's input"
    return problem(name) or shadows(name)


def _not_a_field(name: str) -> bool:
    """A block parameter that cannot even be a field of the block's arguments model."""
    return name in (*COMMON_FIELDS, "in") or name in _MODEL_NAMES or name.startswith("model_")


def param_name_problem(name: str) -> str | None:
    """Why `name` cannot name a block parameter (a constructor argument in generated code);
    what every name must be is checked by the schema already (`Name`)."""
    if name in (*COMMON_FIELDS, "in"):
        return "clashes with the layer field of that name"
    if _not_a_field(name):
        return "is a name yarch keeps for itself"
    return shadows(name)


def define_blocks(
    doc: Document, spec: Spec, graph: ArchGraph, diags: list[Diagnostic]
) -> dict[str, Block]:
    """The spec's block types, in its order; each one's `doc:` goes on the graph."""
    blocks: dict[str, Block] = {}
    for name, block in spec.blocks.items():
        if block is None:  # removed by a variant (`Block: ~`)
            continue
        key_span = doc.key_span(("blocks", name))
        reason = block_name_problem(name)
        if reason:
            diags.append(
                error(
                    "invalid-block",
                    f"`{shown(name)}` cannot name a block: it {reason}",
                    key_span,
                    help="choose another name, e.g. in CamelCase",
                )
            )
            continue
        bad = []
        for p in block.params:
            why = param_name_problem(p)
            if why:
                if _not_a_field(p):
                    bad.append(p)
                diags.append(
                    error(
                        "invalid-block",
                        f"block parameter `{p}` cannot be used: it {why}",
                        doc.key_span(("blocks", name, "params", p)),
                        help="block parameters are constructor arguments in generated code:"
                        " choose another name",
                    )
                )
        model = args_model(name, tuple((p, d) for p, d in block.params.items() if p not in bad))
        # the block types defined so far (`known_op` reads a missing one and a None alike)
        layers = normalize_list(doc, block.layers, ("blocks", name, "layers"), blocks, diags)
        if block.doc:
            graph.block_docs[name] = block.doc
        graph.block_params[name] = tuple(block.params)
        graph.block_defaults[name] = dict(block.params)
        blocks[name] = Block(
            name,
            block,
            model,
            layers,
            {p: doc.span(("blocks", name, "params", p)) for p in block.params},
        )
    check_class_names(doc, graph, diags)
    return blocks


_ARGS_MODELS: dict[str, type[NodeArgs]] = {}
MAX_ARGS_MODELS = 512


def args_model(name: str, params: tuple[tuple[str, Any], ...]) -> type[NodeArgs]:
    """The pydantic model of a block's call (`- Inception: {c1: 64, ...}`): its parameters,
    with their defaults (None: required), and the fields every layer takes. Kept between
    lints, keyed by what defines it, as building its validator costs more than a language
    server's whole re-lint of an edit may (1.6 ms of GoogLeNet's 8.5)."""
    key = repr((name, params))
    model = _ARGS_MODELS.get(key)
    if model is None:
        fields: dict[str, Any] = {"in_": (PosInt | None, Field(None, alias="in"))}
        for p, default in params:
            fields[p] = (Any, ... if default is None else default)
        model = create_model(f"{name}Args", __base__=NodeArgs, **fields)
        if len(_ARGS_MODELS) >= MAX_ARGS_MODELS:
            del _ARGS_MODELS[next(iter(_ARGS_MODELS))]
        _ARGS_MODELS[key] = model
    return model


def check_class_names(doc: Document, graph: ArchGraph, diags: list[Diagnostic]) -> None:
    """Warn where two block types (or a block type and the model, or a block parameter) would
    be one name in generated code (`conv_bn` and `ConvBn` are both class `ConvBn`); codegen
    numbers the second class, as `names.class_names` does here."""
    names = class_names(graph.model_class, graph.block_params)
    for c in names.collisions:
        which = "the block's" if c.reserved else "the second"
        diags.append(
            warning(
                "name-collision",
                f"block `{c.block}` would be class `{c.name}` in generated code, the name of "
                f"{c.owner}: {which} class is numbered there (`{c.given}`)",
                doc.key_span(("blocks", c.block)),
                help="rename the block so that the generated classes keep their names",
            )
        )
