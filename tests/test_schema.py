"""The JSON Schema for editors: committed fresh, and it validates the spec library."""

from __future__ import annotations

import pytest
import yaml

from compiler.ops import OPS
from compiler.spec_schema import render_schema, spec_schema

from .conftest import ROOT, SPECS

jsonschema = pytest.importorskip("jsonschema")
SCHEMA = ROOT / "schema" / "spec.schema.json"


def _validator():
    import json

    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _messages(error) -> list[str]:
    out = [error.message]
    for sub in error.context or ():
        out += _messages(sub)
    return out


def test_committed_schema_is_fresh():
    assert SCHEMA.read_text() == render_schema(), "run `yarch schema -o schema/spec.schema.json`"


@pytest.mark.parametrize("path", sorted(SPECS.rglob("*.yaml")), ids=lambda p: p.name)
def test_every_spec_names_the_schema_and_validates(path):
    first = path.read_text().splitlines()[0]
    assert first.startswith("# yaml-language-server: $schema=")
    assert (path.parent / first.split("=", 1)[1]).resolve() == SCHEMA
    errors = list(_validator().iter_errors(yaml.safe_load(path.read_text())))
    if path.name == "googlenet_pytorch.yaml":  # the post's `stride=0`, which editors flag
        (error,) = errors
        assert list(error.absolute_path)[:1] == ["layers"]
        assert "0 is less than the minimum of 1" in _messages(error)
    else:
        assert errors == []


@pytest.mark.parametrize(
    "text",
    [
        "input: [3, 8, 8]\nlayers:\n  - conv: {out: 8, kernal: 3}\n",  # unknown field
        "input: [3, 8, 8]\nlayers:\n  - conv2d: {out: 8, kernel: 3}\n",  # torch's name
        "input: [3, 8, 8]\nlayers:\n  - Conv2d\n",  # torch's name, bare
        "input: [3, 8, 8]\nlayers:\n  - Dense: {units: 10}\n",  # Keras's name
        "input: [3, 8, 8]\nlayers:\n  - dropout: 1.5\n",  # out of range
        "input: [3, 8, 8]\n",  # no layers and no extends
        "extends: base.yaml\nmodfy: {}\n",  # misspelt variant key
    ],
)
def test_schema_rejects_mistakes(text):
    assert list(_validator().iter_errors(yaml.safe_load(text)))


def test_schema_takes_blocks_as_yarch_does():
    # a block's name may be lowercase, bare or with arguments (yarch accepts both); a name the
    # schema cannot know is a block (`rleu`) is left to `yarch lint` (`unknown-op`)
    for layer in ("my_block", "Inception", "{my_block: {c: 3}}", "rleu"):
        text = f"input: [3, 8, 8]\nlayers:\n  - {layer}\n"
        assert list(_validator().iter_errors(yaml.safe_load(text))) == [], layer


def test_every_op_has_a_description():
    defs = spec_schema()["$defs"]
    ops = [k for k in defs if k.startswith("op_")]
    assert len(ops) == len(OPS)
    assert all(defs[k].get("description") for k in ops), [
        k for k in ops if not defs[k].get("description")
    ]


def _properties(node, path=""):
    """(path, schema) of every property of every `properties` mapping in a schema."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from _properties(item, f"{path}/{i}")
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                for name, prop in value.items():
                    yield f"{path}/properties/{name}", prop
            yield from _properties(value, f"{path}/{key}")


def test_every_property_has_a_description():
    # editors (yaml-language-server) show a property's description on hover: each field of
    # the spec language, each op's key included, says what it means
    props = list(_properties(spec_schema()))
    assert len(props) > 400  # the walk found the ops' fields, not only the top level
    missing = [path for path, prop in props if not str(prop.get("description", "")).strip()]
    assert missing == [], f"{len(missing)} properties without a description: {missing}"


def test_schema_accepts_references_and_variants():
    text = (
        "extends: base.yaml\nparams: {w: 8}\n"
        "modify:\n  conv1: {out: $w}\nappend:\n  - linear: ${w * 2}\n  - Head: {n: 3}\n"
    )
    assert list(_validator().iter_errors(yaml.safe_load(text))) == []
