"""Stage 3: a validated spec -> `ArchGraph`.

Parameters are substituted, blocks and composites (`seq`, `inception`) expanded into scopes,
repeats unrolled and references resolved. Names are looked up in the scope they were written
in; `input` names the scope's input. A broken layer registers its name as broken, so references
to it do not cascade into more errors.
"""

from __future__ import annotations

import copy
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
from pydantic import Field, ValidationError, create_model

from .diagnostics import Diagnostic, Span, error, warning
from .expr import MAX_MAGNITUDE, ExprError, fmt_number, is_reference, substitute
from .graph import ArchGraph, Instance, Node
from .loader import Document
from .names import Suggestions, class_name, did_you_mean, problem, shadows, shown
from .ops import OPS, NodeArgs, Op
from .ops.base import (
    COMMON_FIELDS,
    BrokenOp,
    InputOp,
    PosInt,
    field_names,
    suggest_op,
)
from .schema import BlockSpec, OutputSpec, Scale, Spec, to_diagnostics
from .syntax import Loc, RawLayer

Scope = tuple[str, ...]


def qual(scope: Scope, name: str) -> str:
    return ".".join((*scope, name))


@dataclass(frozen=True)
class Ref:
    scope: Scope
    name: str
    span: Span | None


@dataclass(frozen=True)
class Param:
    value: Any
    span: Span | None


@dataclass
class Env:
    """Parameters visible in a scope: a block's arguments, then the spec's parameters."""

    params: dict[str, Param]
    parent: Env | None = None
    # `names()` by `count()`: every undefined parameter's help needs them, and a spec may have
    # thousands of both (parameters are only ever added, so the count tells a stale list)
    _names: tuple[int, list[str]] = field(default=(-1, []), repr=False, compare=False)

    def get(self, name: str) -> Param | None:
        env: Env | None = self
        while env is not None:
            if name in env.params:
                return env.params[name]
            env = env.parent
        return None

    def names(self) -> list[str]:
        count = self.count()
        if self._names[0] != count:
            out: set[str] = set()
            env: Env | None = self
            while env is not None:
                out.update(env.params)
                env = env.parent
            self._names = (count, sorted(out))
        return self._names[1]

    def count(self) -> int:
        """How many names `names()` has at most (a name shadowed in a block counts twice)."""
        total = 0
        env: Env | None = self
        while env is not None:
            total += len(env.params)
            env = env.parent
        return total


# How deep blocks, `seq`s and Inception modules may nest. torchvision's deepest nest 5 deep;
# every level costs every layer inside it (longer names and scopes, a longer chain of clusters):
# 140,000 layers in a 60-deep chain of blocks took 10 s to lint.
MAX_NESTING = 16
# how many parameters a help line names when there is no close match
KNOWN_SHOWN = 10
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


def _op_of(item: Any) -> tuple[Any, Any]:
    """(op, fields) of a layer as written (`relu`, `{conv: {...}}`), for counting only."""
    if isinstance(item, dict) and item:
        op = next(iter(item))
        return op, item[op]
    return item, None


class _TooLarge(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


_BROKEN = object()  # target of a layer that failed: references to it stay silent


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


def _origins(value: Any, env: Env, loc: Loc) -> dict[Loc, Span]:
    """Locations holding a plain `$name` reference -> where that parameter's value was written."""
    if value is None or type(value) in (int, float, bool):
        return {}
    if isinstance(value, str) and is_reference(value) and value[1:].isidentifier():
        param = env.get(value[1:])
        return {loc: param.span} if param is not None and param.span is not None else {}
    if isinstance(value, list):
        out: dict[Loc, Span] = {}
        for i, v in enumerate(value):
            out.update(_origins(v, env, (*loc, i)))
        return out
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(_origins(v, env, (*loc, k)))
        return out
    return {}


def _with_first(raw: RawLayer) -> RawLayer:
    """The first copy of a repeat: the layer with its `first:` fields written in."""
    first = raw.fields.get("first")
    fields = {k: v for k, v in raw.fields.items() if k not in ("first", "repeat")}
    spans = {loc: s for loc, s in raw.spans.items() if loc[:1] not in (("first",), ("repeat",))}
    if isinstance(first, dict):
        fields.update(first)
        for loc, s in raw.spans.items():
            if loc[:1] == ("first",) and len(loc) > 1:
                spans[loc[1:]] = s
    return RawLayer(raw.op, fields, raw.span, spans, dict(raw.key_spans))


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


class Resolver:
    def __init__(
        self,
        doc: Document,
        spec: Spec,
        overrides: dict[str, Any] | None = None,
        scale: str | None = None,
    ):
        self.doc = doc
        self.spec = spec
        self.overrides = overrides or {}
        self.scale_name = scale
        self.functions: dict[str, Callable[..., Any]] = scale_functions(Scale())
        self.diags: list[Diagnostic] = []
        self.targets: dict[str, Any] = {}  # qualified name -> node id | Ref | _BROKEN
        self.scope_names: dict[Scope, list[str]] = defaultdict(list)
        self.pending: list[tuple[str, list[Ref]]] = []
        self.instance_refs: list[tuple[Instance, Ref, Ref]] = []
        self.output_refs: dict[str, tuple[Ref, bool, Span | None]] = {}
        self.instance_expects: list[tuple[Instance, tuple[int, ...], Span | None]] = []
        self.index = 0  # layers made so far
        self.instances = 0  # block instances, seqs and repeats made so far
        self.memo: dict[str, str | None] = {}
        self.graph = ArchGraph(spec.name or "model", ())
        self.blocks: dict[str, Block] = {}
        self.stack: list[str] = []  # block types being expanded, to refuse recursion
        self.suggest = Suggestions()

    # --- entry point -------------------------------------------------------------------------

    def run(self) -> ArchGraph:
        env = self.top_env()
        self.graph.input_shape = self.input_shape(env)
        self.add_input()
        self.targets["input"] = ArchGraph.INPUT
        self.define_blocks()
        groups = group_spans(self.doc.spans, ("layers",))
        kgroups = group_spans(self.doc.key_spans, ("layers",))
        items = []
        for i, item in enumerate(self.spec.layers):
            raw = normalize(
                item,
                groups.get(i, {}),
                kgroups.get(i, {}),
                self.doc.span(("layers", i)),
                self.blocks,
            )
            items.append(self.report(raw))
        try:
            self.check_size(items)
            last = self.resolve_list(items, (), env, Ref((), "input", None), numbered=False)
        except _TooLarge as exc:
            self.diags.append(exc.diagnostic)
            return self.abandon()
        self.resolve_outputs(last)
        self.link()
        self.finish_outputs()
        for block in self.blocks.values():
            if not block.used:
                self.diags.append(
                    warning(
                        "unused-block",
                        f"block `{block.name}` is never used",
                        self.doc.key_span(("blocks", block.name)),
                        help="use it in `layers:` or remove it",
                    )
                )
        return self.graph

    def check_size(self, items: list[RawLayer | None]) -> None:
        """Refuse a spec whose blocks multiply out past `MAX_LAYERS` before expanding any of
        them (`B2: [B1, B1]`, `B3: [B2, B2]` ... doubles with each level): counted from the
        written repeats and block bodies, memoised per block, so it costs one pass over them."""
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
            if op in self.blocks:
                if op not in sizes:
                    if op in visiting:
                        return 0, 0  # a recursive block, reported when it is resolved
                    visiting.add(op)
                    layers = self.blocks[op].layers
                    sizes[op] = add(count(r.op, r.fields) for r in layers if r is not None)
                    visiting.discard(op)
                layers, instances = sizes[op]
                return repeat * layers, repeat * (instances + 1) + grouped
            if op == "seq" and isinstance(fields, dict) and isinstance(fields.get("layers"), list):
                layers, instances = add(count(*_op_of(item)) for item in fields["layers"])
                return repeat * layers, repeat * (instances + 1) + grouped
            if op == "inception":
                return repeat * 16, repeat * 5 + grouped
            return repeat, grouped

        total = instances = 0
        for raw in items:
            if raw is None:
                continue
            layers, inner = count(raw.op, raw.fields)
            total += layers
            instances += inner
            if total > MAX_LAYERS:
                raise self.too_large(raw.op, raw.span, total, "")
            if instances > MAX_INSTANCES:
                raise self.too_large(raw.op, raw.span, instances, "", "block instances")

    def abandon(self) -> ArchGraph:
        """The graph of a spec too large to resolve: its input only, marked incomplete."""
        graph = ArchGraph(self.graph.name, self.graph.input_shape)
        graph.graph.add_node(ArchGraph.INPUT, node=self.graph.node(ArchGraph.INPUT))
        graph.order = [ArchGraph.INPUT]
        graph.complete = False
        self.graph = graph
        return graph

    def too_large(
        self, key: str, span: Span | None, total: int, how: str = "", what: str = "layers"
    ) -> _TooLarge:
        limit = MAX_LAYERS if what == "layers" else MAX_INSTANCES
        return _TooLarge(
            error(
                "too-many-layers",
                f"`{key}` {how}makes the spec expand to {total:,} {what}; the limit is {limit:,}",
                span,
                help="is a repeat count or a block nesting larger than intended?",
            )
        )

    def add_input(self) -> None:
        node = Node(
            ArchGraph.INPUT,
            ArchGraph.INPUT,
            InputOp,
            NodeArgs(),
            RawLayer("input", {}, self.doc.span(("input",))),
            index=-1,
        )
        node.shape = self.graph.input_shape or None
        self.graph.graph.add_node(ArchGraph.INPUT, node=node)

    def report(self, raw: RawLayer | Diagnostic) -> RawLayer | None:
        if isinstance(raw, Diagnostic):
            self.diags.append(raw)
            return None
        return raw

    # --- parameters --------------------------------------------------------------------------

    def choose_scale(self) -> dict[str, tuple[Any, Span | None]]:
        """The chosen row of `scales` (the first when none is named): its `w` and `d`
        functions, and the parameters it sets."""
        scales = {k: v for k, v in self.spec.scales.items() if v is not None}
        if self.scale_name is not None and self.scale_name not in scales:
            self.diags.append(
                error(
                    "unknown-scale",
                    f"`--scale {self.scale_name}`: the spec has no scale `{self.scale_name}`",
                    self.doc.key_span(("scales",)) if scales else None,
                    help="scales: " + ", ".join(f"`{n}`" for n in scales)
                    if scales
                    else "the spec declares no `scales:`",
                )
            )
            return {}
        if not scales:
            return {}
        name = self.scale_name or next(iter(scales))
        self.graph.scale = name
        row = scales[name]
        self.functions = scale_functions(row)
        sets = {}
        for key, value in (row.model_extra or {}).items():
            span = self.doc.span(("scales", name, key))
            if key not in self.spec.params:
                self.diags.append(
                    error(
                        "undefined-parameter",
                        f"scale `{name}` sets `{shown(str(key))}`, which is not a parameter",
                        span,
                        help=self.suggest(
                            key, lambda: list(self.spec.params), len(self.spec.params)
                        ),
                    )
                )
                continue
            sets[key] = (value, span)
        return sets

    def top_env(self) -> Env:
        env = Env({})
        scaled = self.choose_scale()
        for name, value in self.spec.params.items():
            span = self.doc.span(("params", name))
            if name in scaled:
                value, span = scaled[name]
            if name in self.overrides:
                value, span = self.overrides[name], None
            value = self.subst(value, env, span, lambda loc, s=span: s)
            env.params[name] = Param(value, span)
        for name in self.overrides:
            if name not in self.spec.params:
                self.diags.append(
                    error(
                        "undefined-parameter",
                        f"`--set {name}=...`: the spec has no parameter `{name}`",
                        None,
                        help=did_you_mean(name, list(self.spec.params))
                        or "parameters: " + ", ".join(f"`{n}`" for n in self.spec.params)
                        if self.spec.params
                        else "the spec declares no `params:`",
                    )
                )
        return env

    def subst(
        self,
        value: Any,
        env: Env,
        span: Span | None,
        span_of: Callable[[Loc], Span | None],
        loc: Loc = (),
    ) -> Any:
        """Substitute references in `value`; on failure report and return `_BROKEN`."""

        def lookup(name: str) -> Any:
            param = env.get(name)
            if param is None:
                raise ExprError(f"`{name}` is not a parameter", name)
            if param.value is _BROKEN:
                raise ExprError("", "")
            return param.value

        try:
            return substitute(value, lookup, self.functions)
        except ExprError as exc:
            if exc.name == "":
                return _BROKEN
            where = span_of(loc) or span
            if exc.name:
                self.diags.append(
                    error(
                        "undefined-parameter",
                        f"`{exc.name}` is not a parameter here",
                        where,
                        help=self.param_help(exc.name, env),
                    )
                )
            else:
                self.diags.append(error("invalid-expression", str(exc), where))
            return _BROKEN

    def param_help(self, name: str, env: Env) -> str:
        count = env.count()
        if not count:
            return "declare it under `params:`"
        suggestion = self.suggest(name, env.names, count)
        if suggestion:
            return suggestion
        # a spec may declare thousands of parameters: name a few, as `... and N more` does
        names = env.names()
        known = names[:KNOWN_SHOWN]
        more = f" and {len(names) - len(known)} more" if len(names) > len(known) else ""
        return "known parameters: " + ", ".join(f"`{n}`" for n in known) + more

    def input_shape(self, env: Env) -> tuple[int, ...]:
        dims = []
        for i, value in enumerate(self.spec.input):
            span = self.doc.span(("input", i))
            value = self.subst(value, env, span, lambda loc, s=span: s)
            if value is _BROKEN:
                return ()
            if (
                not isinstance(value, int)
                or isinstance(value, bool)
                or not 1 <= value <= MAX_MAGNITUDE
            ):
                got = fmt_number(value) if isinstance(value, int) else repr(value)
                self.diags.append(
                    error(
                        "invalid-value",
                        f"input sizes must be whole numbers from 1 to {MAX_MAGNITUDE:,}, got {got}",
                        span,
                    )
                )
                return ()
            dims.append(value)
        return tuple(dims)

    # --- blocks ------------------------------------------------------------------------------

    def define_blocks(self) -> None:
        for name, spec in self.spec.blocks.items():
            if spec is None:  # removed by a variant (`Block: ~`)
                continue
            key_span = self.doc.key_span(("blocks", name))
            reason = block_name_problem(name)
            if reason:
                self.diags.append(
                    error(
                        "invalid-block",
                        f"`{shown(name)}` cannot name a block: it {reason}",
                        key_span,
                        help="choose another name, e.g. in CamelCase",
                    )
                )
                continue
            fields: dict[str, Any] = {
                "in_": (PosInt | None, Field(None, alias="in")),
            }
            bad = []
            for p in spec.params:
                why = param_name_problem(p)
                if why:
                    if _not_a_field(p):
                        bad.append(p)
                    self.diags.append(
                        error(
                            "invalid-block",
                            f"block parameter `{p}` cannot be used: it {why}",
                            self.doc.key_span(("blocks", name, "params", p)),
                            help="block parameters are constructor arguments in generated code:"
                            " choose another name",
                        )
                    )
            for p, default in spec.params.items():
                if p not in bad:
                    fields[p] = (Any, ... if default is None else default)
            model = create_model(f"{name}Args", __base__=NodeArgs, **fields)
            groups = group_spans(self.doc.spans, ("blocks", name, "layers"))
            kgroups = group_spans(self.doc.key_spans, ("blocks", name, "layers"))
            layers = [
                self.report(
                    normalize(
                        item,
                        groups.get(i, {}),
                        kgroups.get(i, {}),
                        self.doc.span(("blocks", name, "layers", i)),
                        {**self.blocks, name: None},
                    )
                )  # type: ignore[dict-item]
                for i, item in enumerate(spec.layers)
            ]
            if spec.doc:
                self.graph.block_docs[name] = spec.doc
            self.blocks[name] = Block(
                name,
                spec,
                model,
                layers,
                {p: self.doc.span(("blocks", name, "params", p)) for p in spec.params},
            )
        self.check_class_names()

    def check_class_names(self) -> None:
        """Warn where two block types (or a block type and the model, or a block parameter) would
        be one name in generated code (`conv_bn` and `ConvBn` are both class `ConvBn`); codegen
        numbers the second class."""
        model = class_name(self.spec.name or "model")
        # names codegen gives away before any block's class: the model's, and the parameters'
        owners = {model: "the model's class", f"{model}Outputs": "the model's outputs class"}
        for block in self.blocks.values():
            for p in block.spec.params:
                owners.setdefault(p, f"a parameter of block `{block.name}`")
        first = set(owners)
        for name in self.blocks:
            cls = class_name(name)
            if cls in owners:
                which = "the block's" if cls in first else "the second"
                self.diags.append(
                    warning(
                        "name-collision",
                        f"block `{name}` would be class `{cls}` in generated code, the name of "
                        f"{owners[cls]}: {which} class is numbered there (`{cls}2`)",
                        self.doc.key_span(("blocks", name)),
                        help="rename the block so that the generated classes keep their names",
                    )
                )
            owners.setdefault(cls, f"block `{name}`'s class")

    # --- layers ------------------------------------------------------------------------------

    def names_for(self, items: list[RawLayer | None], scope: Scope, numbered: bool) -> list[str]:
        taken: dict[str, Span | None] = {}
        names: list[str | None] = []
        for raw in items:
            given = raw.fields.get("name") if raw is not None else None
            if isinstance(given, str) and given.isidentifier() and given != "input":
                if given in taken:
                    self.diags.append(
                        error(
                            "duplicate-name",
                            f"`{given}` names two layers in the same scope",
                            raw.field_span(("name",)),
                            notes=(f"first used at line {taken[given].line}",)
                            if taken[given]
                            else (),
                            help="names must be unique within a block: rename one",
                        )
                    )
                    names.append(None)
                    continue
                taken[given] = raw.field_span(("name",))
                names.append(given)
            else:
                names.append(None)
        counters: dict[str, int] = defaultdict(int)
        out = []
        for i, (raw, name) in enumerate(zip(items, names, strict=True)):
            if name is None:
                if numbered:
                    name = str(i)
                else:
                    base = raw.op if raw is not None and raw.op.isidentifier() else "layer"
                    while True:
                        counters[base] += 1
                        name = f"{base}_{counters[base]}"
                        if name not in taken:
                            break
                taken[name] = None
            out.append(name)
        self.scope_names[scope].extend(out)
        return out

    def resolve_list(
        self,
        items: list[RawLayer | None],
        scope: Scope,
        env: Env,
        input_ref: Ref,
        numbered: bool,
    ) -> Ref:
        if scope:
            self.targets[qual(scope, "input")] = input_ref
        names = self.names_for(items, scope, numbered)
        prev = Ref(scope, "input", None) if scope else input_ref
        for raw, name in zip(items, names, strict=True):
            key = qual(scope, name)
            if raw is None:
                self.targets[key] = _BROKEN
            else:
                self.layer(raw, scope, name, env, prev)
            prev = Ref(scope, name, None)
        return prev

    def validate(self, raw: RawLayer, env: Env) -> tuple[Any, type[Op] | Block] | None:
        target = known_op(raw.op, self.blocks)
        if target is None:
            hint = suggest_op(raw.op, list(self.blocks))
            self.diags.append(
                error(
                    "unknown-op",
                    f"unknown op `{shown(raw.op)}`",
                    raw.span,
                    help=hint or "see the README for the list of ops, or define it under `blocks:`",
                )
            )
            return None
        fields = {}
        broken = False
        origins: dict[Loc, Span] = {}
        for key, value in raw.fields.items():
            if key in ("name", "from"):
                fields[key] = value
                continue
            new = self.subst(value, env, raw.span, lambda loc: raw.field_span(loc), (key,))
            broken |= new is _BROKEN
            fields[key] = new
            origins.update(_origins(value, env, (key,)))
        if broken:
            return None
        if origins:  # point diagnostics at where a parameter's value was written
            # each span's prefixes looked up, not every origin compared with every span (a
            # list of 5,000 `$p` took 30 s)
            raw.spans = {
                loc: s
                for loc, s in raw.spans.items()
                if not any(loc[:k] in origins for k in range(1, len(loc) + 1))
            }
            raw.spans.update(origins)
        model = target.args_model if isinstance(target, Block) else target.Args
        try:
            args = model.model_validate(fields)
        except ValidationError as exc:
            owner = f"`{raw.op}`"
            self.diags.extend(
                to_diagnostics(
                    exc,
                    fields,
                    lambda loc: raw.field_span(loc),
                    lambda loc: (
                        raw.key_spans.get(loc[0])
                        if len(loc) == 1 and loc[0] in raw.key_spans
                        else raw.field_span(loc)
                    ),
                    owner,
                    lambda path: field_names(model) if not path else [],
                )
            )
            return None
        return args, target

    def layer(self, raw: RawLayer, scope: Scope, name: str, env: Env, prev: Ref) -> None:
        key = qual(scope, name)
        if env.parent is not None:
            # a block's body is shared by its instances, and `validate` points this use's spans
            # at the instance's arguments: each instance gets its own copy
            raw = copy.copy(raw)
        checked = self.validate(raw, env)
        if checked is None:
            self.salvage(raw, scope, name, prev)
            return
        args, target = checked
        if args.from_:
            inputs = [
                Ref(
                    scope,
                    ref,
                    raw.field_span(("from", i))
                    if len(args.from_) > 1 or ("from", 0) in raw.spans
                    else raw.field_span(("from",)),
                )
                for i, ref in enumerate(args.from_)
            ]
        else:
            inputs = [prev]
        if not args.if_:  # a disabled layer passes its input through
            self.targets[key] = inputs[0]
            return
        # a written `repeat:` makes a group even of one copy (`layer4.0`, as torchvision's
        # nn.Sequential of one block); no `repeat:`, no group
        if args.repeat == 1 and "repeat" not in args.model_fields_set:
            if args.first:  # the only copy is the first
                raw = _with_first(raw)
                checked = self.validate(raw, env)
                if checked is None:
                    self.targets[key] = _BROKEN
                    return
                args = checked[0]
            self.create(raw, args, target, scope, name, inputs, env)
            return
        if len(inputs) > 1:  # the group, like its copies after the first, has one input
            self.diags.append(
                error(
                    "wrong-inputs",
                    f"`{key}` reads {len(inputs)} inputs and cannot be repeated: each copy "
                    "after the first reads only the copy before it",
                    raw.field_span(("repeat",)),
                    help="repeat a block that takes one input, or write the copies out",
                )
            )
            self.targets[key] = _BROKEN
            return
        group = (*scope, name)
        self.scope_names[group].extend(str(i) for i in range(args.repeat))
        inst = Instance(key, raw.op, raw.span, {"repeat": args.repeat}, repeat=args.repeat)
        self.graph.instances[key] = inst
        source = inputs[0]
        # the group's `expect:` is about its output, the last copy's
        once = args.model_copy(update={"repeat": 1, "expect": None, "first": None})
        first_raw, first_args = raw, once
        if args.first:
            first_raw = _with_first(raw)
            checked = self.validate(first_raw, env)
            if checked is None:
                self.targets[key] = _BROKEN
                return
            first_args = checked[0].model_copy(update={"repeat": 1, "expect": None})
        for i in range(args.repeat):
            if i == 0:
                before, made = self.index, self.instances
                self.create(first_raw, first_args, target, group, "0", inputs, env)
                total = before + (self.index - before) * args.repeat
                instances = made + (self.instances - made) * args.repeat
                how = f"repeated {args.repeat:,} times "
                span = raw.field_span(("repeat",))
                if total > MAX_LAYERS:
                    raise self.too_large(key, span, total, how)
                if instances > MAX_INSTANCES:
                    raise self.too_large(key, span, instances, how, "block instances")
            else:
                self.create(raw, once, target, group, str(i), inputs, env)
            inputs = [Ref(group, str(i), None)]
        self.targets[key] = inputs[0]
        self.instance_refs.append((inst, source, inputs[0]))
        if args.expect is not None:
            self.instance_expects.append((inst, tuple(args.expect), raw.field_span(("expect",))))

    def salvage(self, raw: RawLayer, scope: Scope, name: str, prev: Ref) -> None:
        """Keep a layer that failed validation in the graph when it declares its output shape.

        Its `expect:` stands in for the shape it would have had, so layers after it are still
        checked (seed 000's `stride=0` conv is followed by a conv whose padding is wrong).
        """
        key = qual(scope, name)
        expect = raw.fields.get("expect")
        source = raw.fields.get("from")
        ok_expect = (
            isinstance(expect, list)
            and 1 <= len(expect) <= 3
            and all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in expect)
        )
        if not ok_expect or not (source is None or isinstance(source, str)):
            self.targets[key] = _BROKEN
            return
        inputs = [Ref(scope, source, raw.field_span(("from",)))] if source else [prev]
        node = Node(
            key,
            name,
            BrokenOp,
            NodeArgs(),
            raw,
            scope,
            index=self.index,
            expect=tuple(expect),
            expect_span=raw.field_span(("expect",)),
        )
        self.index += 1
        self.graph.graph.add_node(key, node=node)
        self.targets[key] = key
        self.pending.append((key, inputs))

    def create(
        self,
        raw: RawLayer,
        args: Any,
        target: type[Op] | Block,
        scope: Scope,
        name: str,
        inputs: list[Ref],
        env: Env,
    ) -> None:
        key = qual(scope, name)
        composite = isinstance(target, Block) or target.composite
        lo, hi = (1, 1) if composite else (target.min_inputs, target.max_inputs)
        if len(inputs) < lo or (hi is not None and len(inputs) > hi):
            want = f"{lo}" if lo == hi else f"at least {lo}" if hi is None else f"{lo}-{hi}"
            self.diags.append(
                error(
                    "wrong-inputs",
                    f"`{key}` ({raw.op}) takes {want} input(s), got {len(inputs)}",
                    raw.field_span(("from",)),
                )
            )
            self.targets[key] = _BROKEN
            return
        if not composite:
            if self.index >= MAX_LAYERS:
                raise self.too_large(key, raw.span, self.index + 1)
            node = Node(key, name, target, args, raw, scope, index=self.index)
            self.index += 1
            if args.expect is not None:
                node.expect = tuple(args.expect)
                node.expect_span = raw.field_span(("expect",))
            self.graph.graph.add_node(key, node=node)
            self.targets[key] = key
            self.pending.append((key, inputs))
            return
        self.instances += 1
        if self.instances > MAX_INSTANCES:
            raise self.too_large(key, raw.span, self.instances, "", "block instances")
        inner: Scope = (*scope, name)
        recursive = isinstance(target, Block) and raw.op in self.stack  # reported below
        if len(self.stack) >= MAX_NESTING and not recursive:
            self.diags.append(
                error(
                    "too-many-layers",
                    f"`{raw.op}` nests {len(self.stack) + 1} deep; the limit is {MAX_NESTING}",
                    raw.span,
                    notes=(" -> ".join(f"`{b}`" for b in (*self.stack, raw.op)),),
                    help="is a block nesting deeper than intended?",
                )
            )
            self.targets[key] = _BROKEN
            return
        if isinstance(target, Block):
            target.used = True
            body = target.layers
            if recursive:
                self.diags.append(
                    error(
                        "recursive-block",
                        f"block `{raw.op}` contains itself",
                        raw.span,
                        notes=(" -> ".join(f"`{b}`" for b in (*self.stack, raw.op)),),
                    )
                )
                self.targets[key] = _BROKEN
                return
            values = args.model_dump(exclude=set(NodeArgs.model_fields) | {"in_"})
            root = self.root_env(env)
            params = {}
            for p, v in values.items():
                if p in raw.fields:
                    params[p] = Param(v, raw.field_span((p,)))
                else:
                    span = target.param_spans.get(p)
                    params[p] = Param(self.subst(v, root, span, lambda loc, s=span: s), span)
            block_env = Env(params, parent=root)
            inst_params = {p: v.value for p, v in params.items()}
            declared = args.in_
            numbered = False
        else:
            children = target.expand(args, raw)
            body = []
            # a raw item of a `seq` has its spans under ("layers", i): grouped in one pass (a
            # search of all the seq's spans for each item was quadratic)
            item_spans = group_spans(raw.spans, ("layers",))
            for i, child in enumerate(children):
                if isinstance(child, RawLayer):
                    body.append(child)
                else:
                    body.append(
                        self.report(
                            normalize(child, item_spans.get(i, {}), {}, raw.span, self.blocks)
                        )
                    )
            block_env = env
            inst_params = target.instance_params(args)
            declared = target.declared_in(args)
            numbered = target is OPS["seq"]
        inst = Instance(
            key,
            raw.op,
            raw.span,
            {k: v for k, v in raw.fields.items() if k not in ("name", "repeat")},
            declared_in=declared,
            declared_in_span=raw.field_span(("in",)),
            params=inst_params,
        )
        self.graph.instances[key] = inst
        self.stack.append(raw.op)
        out = self.resolve_list(body, inner, block_env, inputs[0], numbered)
        self.stack.pop()
        if isinstance(target, Block) and target.spec.output:
            out = Ref(inner, target.spec.output, self.doc.span(("blocks", target.name, "output")))
        self.targets[key] = out
        self.instance_refs.append((inst, inputs[0], out))
        if args.expect is not None:
            self.instance_expects.append((inst, tuple(args.expect), raw.field_span(("expect",))))

    def root_env(self, env: Env) -> Env:
        while env.parent is not None:
            env = env.parent
        return env

    # --- references --------------------------------------------------------------------------

    def lookup(self, ref: Ref) -> str | None:
        # aliases (`if: false` layers, groups, block outputs) are followed in a loop, not by
        # recursion: a chain of a thousand disabled layers would exhaust Python's stack
        key = qual(ref.scope, ref.name)
        chain: dict[str, None] = {}  # the aliases followed, in order, to name a cycle
        while key not in self.memo and key not in chain and isinstance(self.targets.get(key), Ref):
            chain[key] = None
            ref = self.targets[key]
            key = qual(ref.scope, ref.name)
        if key in self.memo:
            return self.remember(chain, self.memo[key])
        target = self.targets.get(key)
        result: str | None
        if target is None or target is _BROKEN:
            self.graph.complete = False
        if target is None:
            where = f" in `{'.'.join(ref.scope)}`" if ref.scope else ""
            help = "name a layer with `name:` to refer to it"
            if ref.scope:
                names = self.scope_names.get(ref.scope, [])
                help = self.suggest(
                    ref.name, lambda: [*(n for n in names if n != ref.name), "input"], len(names)
                ) or ("a block's layers can refer to each other and to `input` only")
            self.diags.append(
                error(
                    "undefined-reference",
                    f"no layer named `{ref.name}`{where}",
                    ref.span,
                    help=help,
                )
            )
            result = None
        elif target is _BROKEN:
            result = None
        elif isinstance(target, str):
            result = target
        else:  # an alias already followed: a cycle
            names = list(chain)
            cycle = " -> ".join(f"`{k}`" for k in (*names[names.index(key) :], key))
            self.diags.append(
                error("cyclic-reference", f"references form a cycle: {cycle}", ref.span)
            )
            result = None
        self.memo[key] = result
        return self.remember(chain, result)

    def remember(self, chain: dict[str, None], result: str | None) -> str | None:
        for key in chain:
            self.memo[key] = result
        return result

    def link(self) -> None:
        g = self.graph.graph
        for node_id, refs in self.pending:
            node = g.nodes[node_id]["node"]
            resolved = [self.lookup(r) for r in refs]
            if any(r is None for r in resolved):
                node.inputs = []
                g.nodes[node_id]["unresolved"] = True
                continue
            node.inputs = [r for r in resolved if r is not None]
            for src in node.inputs:
                g.add_edge(src, node_id)
        for inst, in_ref, out_ref in self.instance_refs:
            inst.input = self.lookup(in_ref)
            inst.output = self.lookup(out_ref)
            if inst.output is not None:
                self.graph.instance_outputs[inst.output] = inst.id
        for inst, shape, span in self.instance_expects:
            if inst.output is not None:
                node = self.graph.node(inst.output)
                if node.expect is None:
                    node.expect, node.expect_span = shape, span
        self.order_nodes()

    def order_nodes(self) -> None:
        """Topological order, the spec's own order breaking ties; cycles are looked for only
        when there is one (the common case pays for one sort, not a components pass too)."""
        g = self.graph.graph
        nodes = g.nodes
        try:
            order = self.graph.topological_order()
        except nx.NetworkXUnfeasible:
            self.find_cycles()
            order = self.graph.topological_order(n for n in g if not nodes[n].get("unresolved"))
        self.graph.order = [n for n in order if not nodes[n].get("unresolved")]

    def find_cycles(self) -> None:
        g = self.graph.graph
        for component in nx.strongly_connected_components(g):
            if len(component) == 1:
                (n,) = component
                if not g.has_edge(n, n):
                    continue
            cycle = [u for u, _ in nx.find_cycle(g.subgraph(component))]
            first = min(cycle, key=lambda n: g.nodes[n]["node"].index)
            node = g.nodes[first]["node"]
            chain = " -> ".join(f"`{self.graph.display(n)}`" for n in [*cycle, cycle[0]])
            self.diags.append(
                error(
                    "cyclic-reference",
                    f"layers feed each other in a cycle: {chain}",
                    node.field_span("from"),
                    help="a network is acyclic: point one `from:` at an earlier layer",
                )
            )
            for n in component:
                g.nodes[n]["unresolved"] = True

    def resolve_outputs(self, last: Ref) -> None:
        outputs = self.spec.outputs
        if outputs is None:
            self.output_refs = {"out": (last, False, None)}
            return
        self.output_refs = {}
        for name, value in outputs.items():
            if value is None:
                continue
            if isinstance(value, OutputSpec):
                ref, train_only = value.from_, value.train_only
                span = self.doc.span(("outputs", name, "from"))
            else:
                ref, train_only = value, False
                span = self.doc.span(("outputs", name))
            self.output_refs[name] = (Ref((), ref, span), train_only, span)

    def finish_outputs(self) -> None:
        for name, (ref, train_only, span) in self.output_refs.items():
            node_id = self.lookup(ref)
            if node_id is None:
                self.graph.unresolved_outputs.add(name)
                continue
            self.graph.outputs[name] = node_id
            self.graph.output_spans[name] = span
            if train_only:
                self.graph.train_only.add(name)


def scale_functions(scale: Scale) -> dict[str, Callable[..., Any]]:
    """`w(c)` and `d(n)`, as Ultralytics scales widths and depths."""

    def w(channels: Any) -> int:
        if not isinstance(channels, int | float) or isinstance(channels, bool):
            raise TypeError("w() takes a channel count")
        capped = min(channels, scale.max_channels) if scale.max_channels else channels
        return max(math.ceil(capped * scale.width / scale.divisor) * scale.divisor, 1)

    def d(repeats: Any) -> int:
        if not isinstance(repeats, int) or isinstance(repeats, bool):
            raise TypeError("d() takes a whole number")
        return max(round(repeats * scale.depth), 1) if repeats > 1 else repeats

    return {"w": w, "d": d}


def resolve(
    doc: Document,
    spec: Spec,
    overrides: dict[str, Any] | None = None,
    scale: str | None = None,
) -> tuple[ArchGraph, list[Diagnostic]]:
    resolver = Resolver(doc, spec, overrides, scale)
    return resolver.run(), resolver.diags
