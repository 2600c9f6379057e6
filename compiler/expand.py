"""Expansion: layers -> the graph's nodes and block instances.

Blocks and composites (`seq`, `inception`) expand into scopes, repeats unroll into numbered
copies, and each layer's fields are substituted and validated against its op. Names are given
here (unnamed layers are numbered per op, `conv_1`), and every name is registered with the
`Linker`, which follows the references once everything is expanded. A layer that fails
validation is kept when it declares its output shape (`salvage`), else registered as broken.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from pydantic import ValidationError

from .blocks import Block, group_spans, known_op, normalize, report
from .diagnostics import Diagnostic, Span, error
from .expr import names_in
from .graph import ArchGraph, Instance, Node
from .limits import MAX_INSTANCES, MAX_LAYERS, MAX_NESTING, too_large
from .link import BROKEN, Linker, Ref, Scope, qual
from .loader import Document
from .names import Namespace, layer_name_form, layer_name_problem, shown
from .ops import OPS, NodeArgs, Op
from .ops.base import BrokenOp, field_names, suggest_op
from .params import FAILED, CommandLineValues, Env, Param, Parameters, origins
from .schema import to_diagnostics
from .syntax import Loc, RawLayer

# what a repeated layer's fields may read: its copy's index (from 0) and the number of copies
_INDEX_NAMES = frozenset({"i", "n"})


def copy_env(env: Env, i: int, count: int) -> Env:
    """`env` with a repeat's `i` and `n`, which hide parameters of those names."""
    return Env({"i": Param(i, None), "n": Param(count, None)}, parent=env)


def _indexed(raw: RawLayer) -> bool:
    """Whether a repeated layer's fields read its copy's `i` or `n`."""
    fields = {k: v for k, v in raw.fields.items() if k not in ("names", "repeat")}
    return bool(_INDEX_NAMES & names_in(fields))


def with_first(raw: RawLayer) -> RawLayer:
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


def layer_names(
    items: list[RawLayer | None],
    numbered: bool,
    diags: list[Diagnostic],
    removed: frozenset[int] = frozenset(),
    inputs: tuple[str, ...] = (),
) -> list[str]:
    """The names of a list of layers: their `name:`, each given once (a second use is
    reported), else the op numbered from 1 (`conv_1`), or the position in a `seq` (`0`, as
    nn.Sequential). Positions count only the layers that are there: the items at `removed`
    (an `if:` that is false) are skipped, as torchvision builds a Sequential from a list
    it appended to only when a condition held (`block.0`, `block.1`, not `block.1`, `block.3`).
    """
    taken: dict[str, Span | None] = {}
    names: list[str | None] = []
    for raw in items:
        given = raw.fields.get("name") if raw is not None else None
        if isinstance(given, str) and layer_name_form(given) and given != "input":
            if given in inputs:
                diags.append(
                    error(
                        "duplicate-name",
                        f"`{given}` names a layer and an input of the block",
                        raw.field_span(("name",)),  # type: ignore[union-attr]
                        help="rename the layer, or the input under the block's `inputs:`",
                    )
                )
                names.append(None)
                continue
            if given in taken:
                diags.append(
                    error(
                        "duplicate-name",
                        f"`{given}` names two layers in the same scope",
                        raw.field_span(("name",)),
                        notes=(f"first used at line {taken[given].line}",) if taken[given] else (),
                        help="names must be unique within a block: rename one",
                    )
                )
                names.append(None)
                continue
            taken[given] = raw.field_span(("name",))
            names.append(given)
        else:
            names.append(None)
    namespace = Namespace([*taken, *inputs])
    out = []
    position = 0
    for i, (raw, name) in enumerate(zip(items, names, strict=True)):
        if name is None:
            if numbered and i not in removed:
                name = str(position)
                namespace.reserve(name)
            else:
                base = raw.op if raw is not None and raw.op.isidentifier() else "layer"
                name = namespace.create_name(base, numbered=True)
        if i not in removed:
            position += 1
        out.append(name)
    return out


class Expander:
    """Expands layers into `graph`, registering their names with `linker`."""

    def __init__(
        self,
        doc: Document,
        graph: ArchGraph,
        diags: list[Diagnostic],
        params: Parameters,
        blocks: dict[str, Block],
        linker: Linker,
    ) -> None:
        self.doc = doc
        self.graph = graph
        self.diags = diags
        self.params = params
        self.blocks = blocks
        self.linker = linker
        self.targets = linker.targets  # qualified name -> node id | Ref | BROKEN
        self.index = 0  # layers made so far
        self.instances = 0  # block instances, seqs and repeats made so far
        self.stack: list[str] = []  # block types being expanded, to refuse recursion

    def expand_list(
        self,
        items: list[RawLayer | None],
        scope: Scope,
        env: Env,
        input_ref: Ref,
        numbered: bool,
        named_inputs: dict[str, Ref] | None = None,
    ) -> Ref:
        """Expand a list of layers in `scope`, each reading the one before; the last one.
        `named_inputs`: a block's inputs by the names it gives them (`inputs: [x, skip]`)."""
        if scope:
            self.targets[qual(scope, "input")] = input_ref
        for input_name, ref in (named_inputs or {}).items():
            self.targets[qual(scope, input_name)] = ref
        removed = frozenset(i for i, raw in enumerate(items) if numbered and self.removed(raw, env))
        names = layer_names(items, numbered, self.diags, removed, tuple(named_inputs or ()))
        self.linker.scope_names[scope].extend(names)
        prev = Ref(scope, "input", None) if scope else input_ref
        for raw, name in zip(items, names, strict=True):
            key = qual(scope, name)
            if raw is None:
                self.targets[key] = BROKEN
            else:
                self.layer(raw, scope, name, env, prev)
            prev = Ref(scope, name, None)
        return prev

    def removed(self, raw: RawLayer | None, env: Env) -> bool:
        """Whether the layer's `if:` is false, looked at before it is expanded so that a
        numbered scope counts only the layers that are there. Errors in the value are left to
        `validate`, which reports them once."""
        if raw is None or "if" not in raw.fields:
            return False
        return self.params.peek(raw.fields["if"], env) is False

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
        written: dict[Loc, Span] = {}
        for key, value in raw.fields.items():
            if key in ("name", "from", "names"):  # `names` is a template, read per copy
                fields[key] = value
                continue
            if key == "layers" and target is OPS["seq"] and isinstance(value, list):
                # a seq's layers are substituted each in its own scope when expanded: a
                # repeat inside reads its `i`, which the seq does not have
                fields[key] = value
                continue
            new = self.params.subst(value, env, raw.span, lambda loc: raw.field_span(loc), (key,))
            broken |= new is FAILED
            fields[key] = new
            written.update(origins(value, env, (key,)))
        if broken:
            return None
        if written:  # point diagnostics at where a parameter's value was written
            # each span's prefixes looked up, not every origin compared with every span (a
            # list of 5,000 `$p` took 30 s)
            raw.spans = {
                loc: s
                for loc, s in raw.spans.items()
                if not any(loc[:k] in written for k in range(1, len(loc) + 1))
            }
            raw.spans.update(written)
        if isinstance(target, Block):  # used, even where this use is wrong: not "unused"
            target.used = True
        model = target.args_model if isinstance(target, Block) else target.Args
        try:
            args = model.model_validate(fields)
        except ValidationError as exc:
            owner = f"`{raw.op}`"
            found = to_diagnostics(
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
            self.diags.extend(self.overridden(raw, found))
            return None
        return args, target

    def overridden(self, raw: RawLayer, found: list[Diagnostic]) -> list[Diagnostic]:
        """`found` with a note on each about a field whose value is a parameter given from
        outside the spec (`--set num_classes=abc`): the diagnostic points at where it is
        used, and the note says where the value came from."""
        given = self.params.overrides
        if not given:
            return found
        how = "--set " if isinstance(given, CommandLineValues) else ""
        source = {
            key: value[1:].strip("{} ")
            for key, value in raw.fields.items()
            if isinstance(value, str) and value.startswith("$") and value[1:].strip("{} ") in given
        }
        out = []
        for d in found:
            key = next((k for k in source if d.message.startswith(f"`{k}`")), None)
            if key is not None:
                name = source[key]
                d = d.with_note(f"`{name}` is `{given[name]}`, given as `{how}{name}=...`")
            out.append(d)
        return out

    def layer(self, raw: RawLayer, scope: Scope, name: str, env: Env, prev: Ref) -> None:
        key = qual(scope, name)
        if env.parent is not None:
            # a block's body is shared by its instances, and `validate` points this use's spans
            # at the instance's arguments: each instance gets its own copy
            raw = copy.copy(raw)
        first = len(self.diags)
        base = env
        if "repeat" in raw.fields and _indexed(raw):  # the group is validated as its first copy
            count = self.params.peek(raw.fields["repeat"], env)
            if type(count) is int and count >= 1:
                env = copy_env(env, 0, count)
        checked = self.validate(raw, env)
        if checked is None:
            self.salvage(raw, scope, name, prev)
            if key in self.graph.graph:  # kept, drawn as invalid: its errors are about it
                self.diags[first:] = [replace(d, node=d.node or key) for d in self.diags[first:]]
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
        for field in getattr(target, "ref_fields", ()):
            ref = getattr(args, field, None)
            if ref is not None:
                inputs.append(Ref(scope, ref, raw.field_span((field,))))
        if not args.if_:  # a disabled layer passes its input through
            self.targets[key] = inputs[0]
            if isinstance(target, Block):  # used, under a parameter: not an unused block
                target.used = True
            if len(inputs) > 1:  # the others must still be read (checked once linked)
                self.linker.removed.append((key, raw.op, inputs, raw.field_span(("if",))))
            return
        # a written `repeat:` makes a group even of one copy (`layer4.0`, as torchvision's
        # nn.Sequential of one block); no `repeat:`, no group
        if args.repeat == 1 and "repeat" not in args.model_fields_set:
            if args.names is not None:
                self.diags.append(
                    error(
                        "invalid-value",
                        f"`names` names the copies of a repeat, and `{key}` has no `repeat:`",
                        raw.field_span(("names",)),
                        help="add `repeat:`, or name the layer with `name:`",
                    )
                )
            if args.first:  # the only copy is the first
                raw = with_first(raw)
                checked = self.validate(raw, env)
                if checked is None:
                    self.targets[key] = BROKEN
                    return
                args = checked[0]
            self.create(raw, args, target, scope, name, inputs, env)
            return
        self.repeat(raw, args, target, scope, name, inputs, base)

    def repeat(
        self,
        raw: RawLayer,
        args: Any,
        target: type[Op] | Block,
        scope: Scope,
        name: str,
        inputs: list[Ref],
        env: Env,
    ) -> None:
        """A layer with `repeat:`: a group of numbered copies, each reading the one before."""
        key = qual(scope, name)
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
            self.targets[key] = BROKEN
            return
        group = (*scope, name)
        copies = self.copy_names(raw, args, env)
        if copies is None:
            self.targets[key] = BROKEN
            return
        self.linker.scope_names[group].extend(copies)
        # a layer whose fields read `i` or `n` is validated again for each copy
        indexed = _indexed(raw)
        inst = Instance(key, raw.op, raw.span, {"repeat": args.repeat}, repeat=args.repeat)
        inst.repeat_raw = raw.fields.get("repeat")
        inst.names_raw = raw.fields.get("names")
        inst.args["expect"] = raw.fields.get("expect")
        inst.copies = list(copies)
        self.graph.instances[key] = inst
        source = inputs[0]
        # the group's `expect:` is about its output, the last copy's
        once = args.model_copy(update={"repeat": 1, "expect": None, "first": None})
        first_raw, first_args = raw, once
        if args.first:
            first_raw = with_first(raw)
            checked = self.validate(first_raw, copy_env(env, 0, args.repeat) if indexed else env)
            if checked is None:
                self.targets[key] = BROKEN
                return
            first_args = checked[0].model_copy(update={"repeat": 1, "expect": None})
        for i, copy_name in enumerate(copies):
            if i == 0:
                before, made = self.index, self.instances
                first_env = copy_env(env, 0, args.repeat) if indexed else env
                self.create(first_raw, first_args, target, group, copy_name, inputs, first_env)
                total = before + (self.index - before) * args.repeat
                instances = made + (self.instances - made) * args.repeat
                how = f"repeated {args.repeat:,} times "
                span = raw.field_span(("repeat",))
                if total > MAX_LAYERS:
                    raise too_large(key, span, total, how)
                if instances > MAX_INSTANCES:
                    raise too_large(key, span, instances, how, "block instances")
            elif indexed:
                copy_env_i = copy_env(env, i, args.repeat)
                checked = self.validate(copy.copy(raw), copy_env_i)
                if checked is None:
                    self.targets[qual(group, copy_name)] = BROKEN
                else:
                    update = {"repeat": 1, "expect": None, "first": None}
                    each = checked[0].model_copy(update=update)
                    self.create(raw, each, target, group, copy_name, inputs, copy_env_i)
            else:
                self.create(raw, once, target, group, copy_name, inputs, env)
            inputs = [Ref(group, copy_name, None)]
        self.targets[key] = inputs[0]
        self.linker.instance_refs.append((inst, source, inputs[0]))
        if args.expect is not None:
            self.linker.instance_expects.append(
                (inst, tuple(args.expect), raw.field_span(("expect",)))
            )

    def copy_names(self, raw: RawLayer, args: Any, env: Env) -> list[str] | None:
        """The names of a repeat's copies: `names:` evaluated for each, or `0` ... `N-1`."""
        if args.names is None:
            return [str(i) for i in range(args.repeat)]
        span = raw.field_span(("names",))
        out: list[str] = []
        seen: dict[str, int] = {}
        for i in range(args.repeat):
            text = self.params.template(args.names, copy_env(env, i, args.repeat), span)
            if text is FAILED:
                return None
            why = layer_name_problem(text)
            if why is None and text in seen:
                why = f"is also the name of copy {seen[text]}"
            if why:
                self.diags.append(
                    error(
                        "invalid-value",
                        f"`names` gives copy {i} the name `{shown(text)}`, which {why}",
                        span,
                        help='give each copy its own plain name, e.g. `names: "block${i + 1}"`',
                    )
                )
                return None
            seen[text] = i
            out.append(text)
        return out

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
            self.targets[key] = BROKEN
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
        self.graph.add_node(node)
        self.targets[key] = key
        self.linker.pending.append((key, inputs))

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
        """One copy of a validated layer: a node, or a block instance and what it contains."""
        key = qual(scope, name)
        composite = isinstance(target, Block) or target.composite
        # a block or seq takes its first input as `input`, and its layers read any others by
        # the names its `from:` gives them (LR-ASPP's head reads `backbone` and `backbone.4`),
        # or by the names of the block's `inputs:`, which then fixes their number
        lo, hi = (1, None) if composite else (target.min_inputs, target.max_inputs)
        declared_inputs = target.spec.inputs if isinstance(target, Block) else None
        if declared_inputs:
            lo = hi = len(declared_inputs)
        if len(inputs) < lo or (hi is not None and len(inputs) > hi):
            want = f"{lo}" if lo == hi else f"at least {lo}" if hi is None else f"{lo}-{hi}"
            self.diags.append(
                error(
                    "wrong-inputs",
                    f"`{key}` ({raw.op}) takes {want} input(s), got {len(inputs)}",
                    raw.field_span(("from",)),
                    help=(
                        f"list them in `from:`, in the order of the block's `inputs:` "
                        f"({', '.join(declared_inputs)})"
                        if declared_inputs
                        else None
                    ),
                )
            )
            self.targets[key] = BROKEN
            return
        if not composite:
            if self.index >= MAX_LAYERS:
                raise too_large(key, raw.span, self.index + 1)
            node = Node(key, name, target, args, raw, scope, index=self.index)
            self.index += 1
            if args.expect is not None:
                node.expect = tuple(args.expect)
                node.expect_span = raw.field_span(("expect",))
            self.graph.add_node(node)
            self.targets[key] = key
            self.linker.pending.append((key, inputs))
            return
        self.instances += 1
        if self.instances > MAX_INSTANCES:
            raise too_large(key, raw.span, self.instances, "", "block instances")
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
            self.targets[key] = BROKEN
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
                self.targets[key] = BROKEN
                return
            values = args.model_dump(exclude=set(NodeArgs.model_fields) | {"in_"})
            root = env.root()
            params = {}
            for p, v in values.items():
                if p in raw.fields:
                    params[p] = Param(v, raw.field_span((p,)))
                else:
                    span = target.param_spans.get(p)
                    params[p] = Param(self.params.subst(v, root, span, lambda loc, s=span: s), span)
            block_env = Env(params, parent=root)
            inst_params = {p: v.value for p, v in params.items()}
            declared = args.in_
            numbered = target.spec.sequential
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
                        report(
                            normalize(child, item_spans.get(i, {}), {}, raw.span, self.blocks),
                            self.diags,
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
        if declared_inputs:
            named = dict(zip(declared_inputs, inputs, strict=True))
        else:
            named = {ref.name: ref for ref in inputs[1:]}
            for ref in inputs[1:]:
                self.targets[qual(inner, ref.name)] = ref
                self.linker.scope_names[inner].append(ref.name)
        extra = list(named.items())[1:] if declared_inputs else list(named.items())
        if extra:
            self.linker.extra_refs.append((inst, extra))
        self.stack.append(raw.op)
        out = self.expand_list(
            body, inner, block_env, inputs[0], numbered, named if declared_inputs else None
        )
        self.stack.pop()
        for ref in [] if declared_inputs else inputs[1:]:
            if self.targets.get(qual(inner, ref.name)) is not ref:
                self.diags.append(
                    error(
                        "duplicate-name",
                        f"`{ref.name}` is an input of `{key}` and a name inside it",
                        ref.span,
                        help="inside, its layers read its first input as `input` and the others "
                        "by the names `from:` gives them: rename the layer",
                    )
                )
        if isinstance(target, Block) and target.spec.output:
            out = Ref(inner, target.spec.output, self.doc.span(("blocks", target.name, "output")))
        self.targets[key] = out
        self.linker.instance_refs.append((inst, inputs[0], out))
        if args.expect is not None:
            self.linker.instance_expects.append(
                (inst, tuple(args.expect), raw.field_span(("expect",)))
            )
