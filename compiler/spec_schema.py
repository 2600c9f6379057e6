"""The JSON Schema of the spec language, from the pydantic models, for editors.

The top level comes from `schema.Spec`; a layer is one of the ops, each with its `Args` model
(`- conv: {...}`), its shorthand (`- dropout: 0.4`) or its bare name (`- relu`), or a block
call. Wherever a number, a flag or a list is expected, a `$name` / `${...}` reference is
accepted too. A base spec needs `input` and `layers`; a variant needs `extends`.
"""

from __future__ import annotations

import json
from typing import Any

from .ops import OPS
from .schema import BlockSpec, Insert, Spec

SCHEMA_ID = "https://yarch.dev/schema/spec.schema.json"
REFERENCE = {"$ref": "#/$defs/Reference"}
LAYER = {"$ref": "#/$defs/Layer"}


def _allow_references(node: Any) -> Any:
    """Every typed value may instead be a parameter reference."""
    if isinstance(node, list):
        return [_allow_references(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _allow_references(v) for k, v in node.items()}
    if out.get("type") in ("integer", "number", "boolean", "array"):
        keep = {k: out.pop(k) for k in ("title", "default", "description") if k in out}
        return {"anyOf": [out, REFERENCE], **keep}
    return out


def _retype(props: dict[str, Any], name: str, schema: dict[str, Any]) -> None:
    """Replace property `name`'s schema with `schema` (layers as `Layer`s, not `Any`), keeping
    its title and the description its model's field gives it."""
    old = props[name]
    props[name] = {**schema, **{k: old[k] for k in ("title", "description") if k in old}}


def _hoist(schema: dict, defs: dict) -> dict:
    """Move a model schema's `$defs` into the shared ones."""
    defs.update(schema.pop("$defs", {}))
    return schema


# names of other frameworks' layers (torch.nn, Keras) that a spec may use by mistake for an
# op: the schema flags them rather than taking them for a block, as yarch's `unknown-op` does
_FOREIGN = {
    "conv": ("Conv1d", "Conv2d", "Conv3d", "Conv2D", "Convolution2D"),
    "bn": ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "BatchNormalization", "batchnorm"),
    "maxpool": ("MaxPool1d", "MaxPool2d", "MaxPool3d", "MaxPooling2D"),
    "avgpool": ("AvgPool1d", "AvgPool2d", "AvgPool3d", "AveragePooling2D"),
    "adaptive_avgpool": ("AdaptiveAvgPool2d", "GlobalAveragePooling2D"),
    "linear": ("Linear", "Dense", "dense", "fc"),
    "relu": ("ReLU", "Relu", "Activation"),
    "dropout": ("Dropout",),
    "flatten": ("Flatten",),
    "concat": ("Concatenate", "concatenate", "cat"),
    "add": ("Add",),
    "seq": ("Sequential", "sequential"),
}


def look_alikes(names: list[str]) -> dict[str, str]:
    """Keys that look like an op and are none: `conv2d`, `Conv2d`, `Dense` -> the op meant."""
    out: dict[str, str] = {}
    for name in names:
        for suffix in ("1d", "2d", "3d", "2D"):
            out[f"{name}{suffix}"] = name
            out[f"{name.capitalize()}{suffix}"] = name
        if name.upper() != name:
            out[name.upper()] = name
        # `Inception`, `Seq`: a capitalised op name is a fine name for a block of one's own
    for op, foreign in _FOREIGN.items():
        if op in names:
            out.update(dict.fromkeys(foreign, op))
    return {k: v for k, v in sorted(out.items()) if k not in names}


def spec_schema() -> dict[str, Any]:
    defs: dict[str, Any] = {}
    top = _hoist(Spec.model_json_schema(by_alias=True), defs)
    forms: list[dict[str, Any]] = []
    names = sorted(OPS)
    for name in names:
        op = OPS[name]
        args = _allow_references(_hoist(op.Args.model_json_schema(by_alias=True), defs))
        args["title"] = f"{name} layer"
        doc = (op.__doc__ or "").strip()
        described: dict[str, str] = {}
        if doc:  # what an editor shows on hover, on the op's fields and on its key
            args["description"] = " ".join(doc.split("\n\n")[0].split())
            described["description"] = args["description"]
        defs[f"op_{name}"] = args
        value: list[dict[str, Any]] = [{"$ref": f"#/$defs/op_{name}"}, {"type": "null"}]
        if op.primary and op.primary in args.get("properties", {}):
            value.append(args["properties"][op.primary])
        forms.append(
            {
                "type": "object",
                "properties": {name: {"anyOf": value, **described}},
                "required": [name],
                "additionalProperties": False,
            }
        )
    defs["Reference"] = {
        "type": "string",
        "pattern": r"^\$(\{.*\}|[A-Za-z_][A-Za-z0-9_]*)$",
        "description": "a parameter, `$name`, or an expression, `${...}`",
    }
    foreign = look_alikes(names)
    # a block's name as yarch takes it (`blocks.block_name_problem`): an identifier that is
    # not an op, nor one of the names that look like one
    not_an_op = {"not": {"enum": [*names, *foreign]}}
    block_name = {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$", **not_an_op}
    defs["Layer"] = {
        "description": "one op with its fields, an op's name, or a block with its arguments",
        "anyOf": [
            {"type": "string", "enum": names},
            {**block_name, "description": "a block"},
            *forms,
            {
                "type": "object",
                "description": "a block with its arguments",
                "minProperties": 1,
                "maxProperties": 1,
                "propertyNames": block_name,
                "additionalProperties": {"type": ["object", "null"]},
            },
        ],
    }
    defs["NotAnOp"] = {
        "description": "names of other frameworks' layers that are not yarch ops: "
        + ", ".join(f"`{k}` is `{v}`" for k, v in foreign.items()),
        "enum": list(foreign),
    }
    layers = {"type": "array", "items": LAYER, "minItems": 1}
    props = top["properties"]
    _retype(props, "layers", {"anyOf": [layers, {"type": "null"}], "default": None})
    _retype(props, "append", {"type": "array", "items": LAYER})
    _retype(props, "replace", {"type": "object", "additionalProperties": LAYER})
    _retype(
        props,
        "input",
        {
            "anyOf": [
                {
                    "type": "array",
                    "items": {"anyOf": [{"type": "integer"}, REFERENCE]},
                    "minItems": 1,
                    "maxItems": 4,
                },
                {"type": "null"},
            ]
        },
    )
    _retype(defs[BlockSpec.__name__]["properties"], "layers", layers)
    _retype(defs[Insert.__name__]["properties"], "layers", layers)
    top["anyOf"] = [{"required": ["extends"]}, {"required": ["input", "layers"]}]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **top,
        "$defs": dict(sorted(defs.items())),
    }


def render_schema() -> str:
    return json.dumps(spec_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
