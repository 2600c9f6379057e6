"""Stage 2: the pydantic models of the spec language, and pydantic errors as diagnostics.

The top level (`Spec`) is validated here; each layer's fields are validated by its op's `Args`
model during resolution, after parameters are substituted. Either way, `to_diagnostics` maps
pydantic's `loc` tuples back to the YAML position of the offending value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .diagnostics import Diagnostic, Span, error
from .expr import MAX_MAGNITUDE, fmt_number
from .names import LayerName, Name, closest, did_you_mean, shown

Loc = tuple[Any, ...]
SpanOf = Callable[[Loc], Span | None]

_STRICT = ConfigDict(extra="forbid", populate_by_name=True)
ParamValue = int | float | bool | str | list[Any] | None


class OutputSpec(BaseModel):
    """One of the network's named outputs, written as a mapping."""

    model_config = _STRICT
    from_: str = Field(
        alias="from",
        description="The layer whose value the output is (`aux1`, or `backbone.4` inside a block).",
    )
    train_only: Annotated[bool, Field(strict=True)] = Field(
        False,
        description="Computed in training mode only, under `if self.training:`, and None in "
        "eval mode (GoogLeNet's auxiliary classifiers); left out of exports and eval MACs. "
        "Default: false.",
    )


class BlockSpec(BaseModel):
    """A user-defined, parameterised block: `params` with defaults (`~` = required)."""

    model_config = _STRICT
    doc: str | None = Field(
        None,
        description="The docstring of the block's class in generated code.",
    )
    params: dict[Name, ParamValue] = Field(
        default_factory=dict,
        description="The block's parameters and their defaults, `~` for one an instance must "
        "give (`params: {planes: ~, stride: 1}`); its layers read them as `$planes` or "
        "`${planes * 4}`, and an instance sets them as fields (`- Block: {planes: 64}`).",
    )
    layers: list[Any] = Field(
        min_length=1,
        description="The block's layers, in order; inside, `input` names the block's (first) "
        "input and names are local to each instance.",
    )
    output: LayerName | None = Field(
        None,
        description="The layer whose value is the block's output. Default: its last layer.",
    )
    sequential: Annotated[bool, Field(strict=True)] = Field(
        False,
        description="Numbers the unnamed layers 0, 1, 2 as nn.Sequential does (torchvision's "
        "Conv2dNormActivation: `features.0.0` is its conv), not per op (`conv_1`). "
        "Default: false.",
    )
    inputs: Annotated[list[Name], Field(min_length=2, max_length=16)] | None = Field(
        None,
        description="The names of a block of several inputs, in the order of an instance's "
        "`from:` (a U-Net decoder block: `inputs: [x, skip]`); the first is also its `input`. "
        "Default: one input, `input`.",
    )

    @field_validator("inputs")
    @classmethod
    def _distinct_inputs(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) < len(value):
            twice = next(n for n in value if value.count(n) > 1)
            raise ValueError(f"`{twice}` names two inputs")
        return value


# `.inf` passes `gt=0`, and `w(c)` would turn it into an OverflowError
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Bounded = Annotated[int, Field(ge=1, le=MAX_MAGNITUDE, strict=True)]


class Scale(BaseModel):
    """One row of a `scales` table, in the Ultralytics manner: `w(c)` in a spec gives
    `c * width`, capped at `max_channels` and rounded up to a multiple of `divisor`; `d(n)`
    gives `max(round(n * depth), 1)`. Other keys set the spec's parameters."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    width: Positive = Field(
        1.0,
        description="The width multiple: `w(c)` gives `c * width`, capped and rounded "
        "(`width: 0.25`). Default: 1.",
    )
    depth: Positive = Field(
        1.0,
        description="The depth multiple: `d(n)` gives `max(round(n * depth), 1)` "
        "(`depth: 0.33`). Default: 1.",
    )
    max_channels: Bounded | None = Field(
        None,
        description="The channel count `w(c)` caps `c` at before scaling it "
        "(`max_channels: 1024`). Default: no cap.",
    )
    divisor: Bounded = Field(
        8,
        description="`w(c)` is rounded up to a multiple of it. Default: 8.",
    )


class Insert(BaseModel):
    """Layers a variant adds next to a named layer of its base."""

    model_config = _STRICT
    after: str | None = Field(
        None,
        description="The base's layer the new layers go right after (`Block.layer` inside a "
        "block); give `after` or `before`.",
    )
    before: str | None = Field(
        None,
        description="The base's layer the new layers go right before (`Block.layer` inside a "
        "block); give `after` or `before`.",
    )
    layers: list[Any] = Field(min_length=1, description="The layers to insert, in order.")


# what a variant's edits do, for `VariantEdits` and `Spec`
_EXTENDS = (
    "The base spec this one is a variant of: a path relative to this file's folder "
    "(`extends: googlenet.yaml`), or `yarch:NAME.yaml` for a spec of yarch's library. The "
    "variant holds only what differs."
)
_MODIFY = (
    "Variants: changes to fields of the base's layers, by layer name (`Block.layer` inside a "
    "block); `~` removes a field (`modify: {inception5a: {c5: [32, 32], expect: ~}}`)."
)
_REPLACE = (
    "Variants: layers of the base swapped for others that keep their names, by name "
    "(`replace: {pool5: {adaptive_avgpool: 1}}`)."
)
_DELETE = "Variants: the names of base layers to remove (`delete: [norm1]`)."
_INSERT = (
    "Variants: layers added before or after a named layer of the base "
    "(`insert: [{after: conv1, layers: [...]}]`)."
)
_APPEND = "Variants: layers added after the base's last layer."


class VariantEdits(BaseModel):
    """What a variant does to its base's layers, checked as written before the merge applies
    it; the merged spec (the variant's other fields included) is validated once, after."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    extends: str = Field(description=_EXTENDS)
    modify: dict[str, dict[str, Any]] = Field(default_factory=dict, description=_MODIFY)
    replace: dict[str, Any] = Field(default_factory=dict, description=_REPLACE)
    delete: list[str] = Field(default_factory=list, description=_DELETE)
    insert: list[Insert] = Field(default_factory=list, description=_INSERT)
    append: list[Any] = Field(default_factory=list, description=_APPEND)


class Spec(BaseModel):
    """A network: its input, parameters, blocks, layers and named outputs.

    A variant names its base with `extends:` and changes only what differs: top-level fields
    and the `params`, `blocks`, `outputs` and `scales` mappings merge key by key (`~` removes a
    key); `modify`, `replace`, `delete`, `insert` and `append` change layers by name.
    """

    model_config = _STRICT
    extends: str | None = Field(None, description=_EXTENDS)
    name: Name | None = Field(
        None,
        description="The network's name, a plain identifier (`googlenet`): the title of "
        "summaries and diagrams, and what the class is named from without `class:`. "
        "Default: `model`.",
    )
    class_: str | None = Field(
        None,
        alias="class",
        description="The class of the model in generated code and of the module "
        "`compiler.build` makes, in CamelCase (`class: GoogLeNet`). Default: made from `name` "
        "(`googlenet` -> `Googlenet`).",
    )
    source: str | None = Field(
        None,
        description="Where the architecture comes from (a paper and its table, a file of "
        "torchvision); shown in diagrams and in generated code's docstring.",
    )
    description: str | None = Field(
        None,
        description="A sentence about the network: the first line of generated code's "
        "docstring, and shown in diagrams.",
    )
    init: Literal["none", "kaiming", "torchvision"] | None = Field(
        None,
        description="Weight initialisation: `none`, PyTorch's defaults; `kaiming`, He et "
        "al.'s normal initialisation (torchvision's ResNet); `torchvision`, the scheme "
        "torchvision's class of the spec's `class:` runs. Default: none.",
    )
    input: list[Any] | None = Field(
        None,
        min_length=1,
        max_length=4,
        description="The input's shape, batch left out: `[channels, height, width]` "
        "(`[3, 224, 224]`), or `[C, L]` and `[C, D, H, W]` for 1-D and 3-D maps.",
    )
    params: dict[Name, ParamValue] = Field(
        default_factory=dict,
        description="The spec's parameters and their defaults (`params: {num_classes: "
        "1000}`), read as `$name` or in `${...}` expressions anywhere; a default may use the "
        "parameters before it, and `--set name=value` overrides one.",
    )
    scales: dict[Name, Scale | None] = Field(
        default_factory=dict,
        description="Named rows of width and depth multiples, as Ultralytics' YOLO configs "
        "(`scales: {n: {width: 0.25, depth: 0.33}}`), used by `w(c)` and `d(n)`; `--scale "
        "NAME` picks one, the first by default.",
    )
    blocks: dict[str, BlockSpec | None] = Field(
        default_factory=dict,
        description="The spec's own blocks, by name: each is used as a layer, "
        "`- Name: {name: x, param: value}`.",
    )
    layers: list[Any] | None = Field(
        None,
        min_length=1,
        description="The network's layers, in order: each reads the one before unless it says "
        "`from:`, the first reads `input`.",
    )
    outputs: dict[Name, str | OutputSpec | None] | None = Field(
        None,
        description="The network's named outputs: `{logits: fc}` or `{aux1: {from: aux1, "
        "train_only: true}}`. Default: one output, the last layer.",
    )
    modify: dict[str, dict[str, Any]] = Field(default_factory=dict, description=_MODIFY)
    replace: dict[str, Any] = Field(default_factory=dict, description=_REPLACE)
    delete: list[str] = Field(default_factory=list, description=_DELETE)
    insert: list[Insert] = Field(default_factory=list, description=_INSERT)
    append: list[Any] = Field(default_factory=list, description=_APPEND)

    @property
    def is_variant(self) -> bool:
        return self.extends is not None

    @field_validator("class_")
    @classmethod
    def _a_class_name(cls, value: str | None) -> str | None:
        from .names import class_name

        if value is not None and (
            len(value) > 100 or not value[:1].isupper() or class_name(value) != value
        ):
            raise ValueError(
                f"`{value[:100]}` is not a class name: a Python identifier in CamelCase, "
                "such as `GoogLeNet`"
            )
        return value


# --- pydantic errors -> diagnostics ----------------------------------------------------------

_VALUE_ERRORS = {
    "greater_than",
    "greater_than_equal",
    "less_than",
    "less_than_equal",
    "multiple_of",
    "too_short",
    "too_long",
    "value_error",
    "assertion_error",
}
_OPS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def _data_path(loc: Loc, data: Any) -> tuple[Loc, Any]:
    """Keep the parts of `loc` that index into `data`; drop union tags like `tuple[int, int]`."""
    path: list[Any] = []
    cur = data
    for part in loc:
        indexes = isinstance(cur, list | tuple) and isinstance(part, int) and 0 <= part < len(cur)
        if (isinstance(cur, dict) and part in cur) or indexes:
            path.append(part)
            cur = cur[part]
        elif (
            isinstance(part, str) and re.fullmatch(r"[A-Za-z_]\w*", part) and isinstance(cur, dict)
        ):
            path.append(part)  # a missing field: keep it, there is no data below
            cur = None
    return tuple(path), cur


def field_label(path: Loc) -> str:
    """`blocks.B.params.p`; a key that is no plain name (a newline in it) is shown escaped."""
    text = ""
    for part in path:
        part = part if isinstance(part, int) else shown(str(part))
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "value"


def _rank(err: dict) -> int:
    kind = err["type"]
    if kind in _VALUE_ERRORS:
        return 0
    if kind == "literal_error":
        return 1
    if kind in ("missing", "extra_forbidden"):
        return 0
    return 2


def fmt_value(value: Any) -> str:
    """A value as a message shows it: `text`, true, a list, 1,000."""
    if isinstance(value, str):
        return f"`{value}`"
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict | list):
        return "a mapping" if isinstance(value, dict) else "a list"
    if isinstance(value, int):
        return fmt_number(value)
    return str(value)


def _quoted_number(value: Any) -> bool:
    """`"8192"`: a number written in quotes, which YAML reads as text."""
    if not isinstance(value, str):
        return False
    try:
        float(value.strip())
    except ValueError:
        return False
    return bool(value.strip())


def _message(err: dict, label: str, value: Any) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    got = f", got {fmt_value(value)}"
    if _quoted_number(value) and kind.startswith(("int_", "float_")):
        got = f", got the text {json.dumps(value)}: write the number without quotes"
    for key, sym in _OPS.items():
        if key in ctx and kind.startswith(("greater", "less")):
            bound = ctx[key]
            bound = f"{bound:,}" if isinstance(bound, int) and abs(bound) >= 10_000 else bound
            return f"`{label}` must be {sym} {bound}{got}"
    if kind == "literal_error":
        return f"`{label}` must be {ctx.get('expected', 'one of the allowed values')}{got}"
    if kind == "too_short" and not ctx:
        count = len(value) if isinstance(value, list | tuple) else "?"
        return f"`{label}` has too few items ({count})"
    if kind in ("too_short", "too_long"):
        n = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        bound = "at least" if kind == "too_short" else "at most"
        return f"`{label}` must have {bound} {n} item(s), got {ctx.get('actual_length', '?')}"
    if kind in ("value_error", "assertion_error"):
        msg = str(ctx.get("error") or err["msg"])
        return f"`{label}`: {msg}" if label != "value" else msg
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"`{label}` must be a whole number{got}"
    if kind in ("float_type", "float_parsing"):
        return f"`{label}` must be a number{got}"
    if kind == "finite_number":
        return f"`{label}` must be a finite number{got}"
    if kind in ("bool_type", "bool_parsing"):
        return f"`{label}` must be true or false{got}"
    if kind in ("string_type",):
        return f"`{label}` must be a name or text{got}"
    if kind in ("list_type", "tuple_type"):
        return f"`{label}` must be a list{got}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"`{label}` must be a mapping{got}"
    return f"`{label}`: {err['msg'][:1].lower()}{err['msg'][1:]}{got}"


def to_diagnostics(
    exc: ValidationError,
    data: Any,
    span_of: SpanOf,
    key_span_of: SpanOf,
    owner: str,
    known_fields: Callable[[Loc], Sequence[str]],
) -> list[Diagnostic]:
    """One diagnostic per offending location, at the YAML position of the value.

    `owner` names what is being validated ("`conv`", "the spec"); `known_fields(path)` lists the
    field names valid at the mapping `path`, for unknown-field suggestions.
    """
    best: dict[Loc, dict] = {}
    for err in exc.errors(include_url=False):
        if err["type"] == "missing" and err["loc"] and isinstance(err["loc"][-1], int):
            err = {**err, "type": "too_short", "ctx": {}}  # a tuple written too short
        path, _ = _data_path(err["loc"], data)
        old = best.get(path)
        if old is None or _rank(err) < _rank(old):
            best[path] = err
    # `kernal:` is reported as unknown with "did you mean `kernel`?"; do not also report
    # `kernel` as missing
    suggested = set()
    for path, err in best.items():
        if err["type"] == "extra_forbidden" and path:
            for near in closest(str(path[-1]), list(known_fields(path[:-1]))):
                suggested.add((*path[:-1], near))
    out = []
    for path, err in best.items():
        kind = err["type"]
        if kind == "missing" and path in suggested:
            continue
        if kind == "extra_forbidden":
            field = path[-1] if path else "?"
            options = list(known_fields(path[:-1]))
            help = did_you_mean(str(field), options) or "known fields: " + ", ".join(
                f"`{n}`" for n in options
            )
            where = owner if len(path) <= 1 else f"`{field_label(path[:-1])}`"
            out.append(
                error(
                    "unknown-field",
                    f"{where} has no field `{shown(str(field))}`",
                    key_span_of(path),
                    help=help,
                )
            )
        elif kind == "missing":
            field = path[-1] if path else "?"
            parent = path[:-1]
            out.append(
                error(
                    "missing-field",
                    f"{owner} needs `{field}`"
                    if not parent
                    else f"`{field_label(parent)}` needs `{field}`",
                    key_span_of(parent) if parent else span_of(()),
                    label=f"`{field}` is missing",
                )
            )
        else:
            _, value = _data_path(err["loc"], data)
            out.append(
                error("invalid-value", _message(err, field_label(path), value), span_of(path))
            )
    return out
