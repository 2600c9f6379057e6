"""The op registry, walked: every op has everything a stage needs, taken from its own class.

An op is one class in one file under `compiler/ops/`; what the later stages need of it lives
on that class (its schema, diagram kind, lowering, buffers, positional argument names,
expansion size). These tests fail for a new op that lacks one of them, rather than leaving it
drawn white, generated with numbers, skipped by the mutation oracle or never fuzzed.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml

from compiler import draw
from compiler.lower import Container, Leaf, lower
from compiler.ops import OPS
from compiler.ops.base import Op, TorchParameter
from compiler.pipeline import lint_text

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "rules"
STRATEGIES = ROOT / "tests" / "strategies.py"
NAMES = sorted(OPS)


@cache
def oracle() -> type:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        return importlib.import_module("mutation_score").Oracle
    finally:
        sys.path.remove(str(ROOT / "scripts"))


@cache
def example(name: str):
    """The lint result of the op's own example spec."""
    return lint_text(OPS[name].example_spec())


def emitted_codes(op: type[Op]) -> set[str]:
    """The diagnostic codes the module that defines an op reports (`ctx.error("code", ...)`)."""
    tree = ast.parse(Path(inspect.getsourcefile(op)).read_text())  # type: ignore[arg-type]
    codes = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("error", "warning")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            codes.add(node.args[0].value)
    return codes


def _leaves(c: Container) -> list[Leaf]:
    out: list[Leaf] = []
    for child in c.children:
        out += _leaves(child) if isinstance(child, Container) else [child]
    return out


@pytest.mark.parametrize("name", NAMES)
def test_op_is_in_the_committed_schema(name):
    schema = json.loads((ROOT / "schema" / "spec.schema.json").read_text())
    assert f"op_{name}" in schema["$defs"], "run `make generate`"
    forms = schema["$defs"]["Layer"]["anyOf"]
    assert any(name in form.get("properties", {}) for form in forms)  # `- op: {...}`


@pytest.mark.parametrize("name", NAMES)
def test_op_has_a_diagram_kind(name):
    assert OPS[name].kind in draw.KINDS, f"`{name}`'s kind {OPS[name].kind!r} has no colour"


@pytest.mark.parametrize("name", NAMES)
def test_op_has_its_codes_fixtures(name):
    for code in emitted_codes(OPS[name]):
        assert (FIXTURES / code / "fail.yaml").is_file(), f"`{name}` reports {code}: no fixture"


@pytest.mark.parametrize("name", NAMES)
def test_op_example_lints_and_lowers(name):
    op = OPS[name]
    result = example(name)
    assert not result.diagnostics, [d.message for d in result.diagnostics]
    if op.composite:  # expands into other layers, in a block instance of its name
        assert any(inst.block == name for inst in result.graph.instances.values())
        return
    leaves = [leaf for leaf in _leaves(lower(result.graph)) if leaf.node.op is op]
    assert leaves, f"no `{name}` layer in the lowered module tree"
    leaf = leaves[-1]
    shapes = leaf.node.input_shapes
    if leaf.call is None:  # an expression in forward: the op prints it
        assert op.torch_expr(leaf.node.args, [f"x{i}" for i in range(len(shapes))], shapes)
    else:  # a block's constructor parameters are named after these (`conv_out_channels`)
        assert len(leaf.call.names) == len(leaf.call.args), f"`{name}`: a positional arg unnamed"
        assert all(n.isidentifier() for n in leaf.call.names)


@pytest.mark.parametrize("name", NAMES)
def test_op_has_a_place_in_the_property_test_generator(name):
    op = OPS[name]
    if op.elementwise:
        return  # tests/strategies.py draws every elementwise op from the registry
    source = STRATEGIES.read_text()
    constants = {
        node.value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }
    assert name in constants, f"tests/strategies.py never generates a `{name}` layer"


@pytest.mark.parametrize("name", NAMES)
def test_the_mutation_oracle_transcribes_the_op(name):
    op = OPS[name]
    assert op.elementwise or name == "seq" or hasattr(oracle(), f"op_{name}"), (
        f"scripts/mutation_score.py has no `op_{name}`: specs using it would be skipped"
    )


@pytest.mark.parametrize("name", NAMES)
def test_op_example_builds_with_the_buffers_the_op_declares(name):
    """The example builds and runs, and `Op.buffers` (the summary's memory counts) is what
    the built module holds."""
    import torch

    from compiler import build

    op = OPS[name]
    module = build(yaml.safe_load(op.example_spec())).eval()
    graph = example(name).graph
    with torch.no_grad():
        module(torch.zeros(1, *graph.input_shape))
    if op.composite:
        return
    node = [n for n in graph.nodes() if n.op is op][-1]
    call = op.torch_module(node.args, node.input_shapes)
    held = {}
    if call is not None and not isinstance(call, TorchParameter):  # a parameter holds none
        held = {
            key: (buffer.numel(), str(buffer.dtype).removeprefix("torch."))
            for key, buffer in module.get_submodule(node.id).named_buffers()
        }
    assert held == op.buffers(node.args, node.input_shapes)


def test_readme_table_of_ops_is_the_registry():
    from compiler import readme as sections
    from compiler.ops import catalog

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert catalog.BEGIN in readme and catalog.END in readme, "the README lost its markers"
    assert sections.current(readme, catalog.BEGIN, catalog.END) == catalog.render(), (
        "the README's table of ops is stale: make generate"
    )
    for name in NAMES:
        assert f"| `{name}` |" in readme
        assert catalog.summary(OPS[name]), f"`{name}` has no docstring: what does it do?"


@pytest.mark.parametrize("name", [n for n in NAMES if n != "seq"])  # seq: counted from its list
@pytest.mark.parametrize("variant", [{}, {"bn": True}, {"relu": False}])
def test_expanded_size_is_what_a_layer_expands_to(name, variant):
    """The size guard's count of a layer before expanding it (`Op.expanded_size`)."""
    op = OPS[name]
    shape, layers = op.example or ((3, 8, 8), (name,))
    if len(layers) != 1 or (variant and name != "inception"):
        return
    written = yaml.safe_load(layers[0])
    body = written[name] if isinstance(written, dict) else None  # `- maxpool: 2`: a value
    if variant:
        body = {**body, **variant}
    spec = {"input": list(shape), "layers": [name if body is None else {name: body}]}
    graph = lint_text(yaml.safe_dump(spec)).graph
    assert op.expanded_size(body) == (len(graph.order) - 1, len(graph.instances))
