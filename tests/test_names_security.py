"""Hostile names and texts: nothing a spec says is ever pasted into generated code or a diagram.

Every string of a spec that reaches generated Python or DOT is refused by lint with a
diagnostic (no traceback), renamed with a warning, or escaped. The table below puts names that
try to inject code (quotes, newlines, semicolons, `__import__('os').system('x')`), names of
things the generated code uses (`self`, `nn`, `torch`, `x`), keywords, builtins, names that
change under Unicode normalisation (`ﬁlter` is `filter` to Python), invisible characters, very
long names and colliding names in every position a name can take. What lint accepts is
generated, and the file must compile, pass `ruff check`, build the same module as
`compiler.build` and contain nothing but the model: its imports and classes, no call of
`__import__`, `exec` or `eval`, no string outside docstrings. The same goes for the texts that
become docstrings (`description`, `source`, a block's `doc`, the spec's path), for values
(`.inf`), for `--set`, and for the diagram: the DOT parses and its SVG is well-formed XML that
holds the payloads as text, never as markup.
"""

from __future__ import annotations

import ast
import functools
import io
import math
import re
import shutil
import subprocess
import sys
import tokenize
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from compiler import lint_text
from compiler.cli import cli
from compiler.codegen import codegen_file, generate
from compiler.diagnostics import error
from compiler.draw import MAX_LABEL, caption_of, count_nodes, to_dot
from compiler.graph import ArchGraph
from compiler.names import MAX_NAME, Namespace, class_names, safe_identifier
from compiler.pipeline import Result

from .conftest import ROOT, load_module, rename

HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz's `dot` is not installed")

INJECT = "__import__('os').system('touch pwned')"

# name -> what it tries
HOSTILE: dict[str, str] = {
    "double-quote": 'a"b',
    "single-quote": "a'b",
    "newline": "a\nb",
    "carriage-return": "a\rb",
    "semicolon": "a;b",
    "statement": "a; import os",
    "inject-call": INJECT,
    "triple-quote": 'a"""b',
    "backslash": "a\\",
    "dunder-class": "__class__",
    "dunder-import": "__import__",
    "underscore": "_hidden",
    "self": "self",
    "nn": "nn",
    "torch": "torch",
    "F": "F",
    "x": "x",
    "super": "super",
    "keyword": "class",
    "keyword-None": "None",
    "builtin-print": "print",
    "builtin-len": "len",
    "ligature": "\ufb01lter",  # ﬁlter: `filter` after NFKC
    "fullwidth": "\uff46\uff55\uff4c\uff4c",  # ｆｕｌｌ: `full` after NFKC
    "kelvin": "\u212aelvin",  # KELVIN SIGN: `Kelvin` after NFKC
    "accented": "caf\u00e9",
    "rtl-override": "ab\u202ecd",
    "zero-width-joiner": "a\u200db",
    "nul": "a\x00b",
    "long": "n" * 10_000,
    "just-too-long": "n" * (MAX_NAME + 1),
    "digit-first": "1st",
    "space": "a b",
    "dot": "a.b",
    "colon": "a:b",
    "ambiguous": "l",
    "pydantic": "model_config",
    "jinja": "{{ x }}",
}

# Positions a name can take, and the names each accepts (every other one is an error). A layer
# is an attribute (`self.print`), which hides nothing; its variable in forward is renamed where
# it would hide something (`print_2`). Spec parameters and scales never reach generated code.
SAFE_ATTRIBUTES = {"self", "nn", "torch", "F", "x", "super", "builtin-print", "builtin-len"}
ACCEPTED: dict[str, set[str]] = {
    "layer": SAFE_ATTRIBUTES | {"pydantic"},
    "output": SAFE_ATTRIBUTES | {"pydantic"},
    "spec-param": SAFE_ATTRIBUTES | {"pydantic"},
    "scale": SAFE_ATTRIBUTES | {"pydantic"},
    "spec-name": SAFE_ATTRIBUTES | {"pydantic"},  # a class name is made of it: `Print`
    "block": {"x", "pydantic"},  # classes `X`, `ModelConfig`
    "block-param": {"x"},  # a constructor argument, next to `self`, `super()` and `nn`
}


def spec_with(position: str, name: str) -> dict[str, Any]:
    """A small valid spec with `name` in `position`, as data (dumped with YAML's own quoting)."""
    layers: list[Any] = [
        {"conv": {"name": "stem", "out": 4, "kernel": 3, "padding": 1}},
        "relu",
        {"flatten": {"name": "flat"}},
        {"linear": {"name": "fc", "out": "$classes"}},
    ]
    data: dict[str, Any] = {
        "name": "net",
        "input": [3, 4, 4],
        "params": {"classes": 2},
        "layers": layers,
    }
    if position == "layer":
        layers[1] = {"relu": {"name": name}}
    elif position == "output":
        data["outputs"] = {name: "fc", "features": "flat"}
    elif position == "spec-param":
        data["params"][name] = 2
    elif position == "scale":
        data["scales"] = {name: {"width": 1.0}}
    elif position == "spec-name":
        data["name"] = name
    elif position == "block":
        data["blocks"] = {name: {"layers": [{"conv": {"out": 4, "kernel": 1}}, "relu"]}}
        layers[1] = name
    elif position == "block-param":
        data["blocks"] = {
            "Unit": {"params": {name: 4}, "layers": [{"conv": {"out": f"${name}", "kernel": 1}}]}
        }
        layers[1] = {"Unit": {name: 6}}
    else:  # pragma: no cover
        raise ValueError(position)
    return data


def dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1_000_000)


def lint_data(data: dict[str, Any]) -> Result:
    return lint_text(dump(data), "hostile.yaml")


CASES = [(position, key) for position in ACCEPTED for key in HOSTILE]


# --- what generated code may contain -------------------------------------------------------------

IMPORTS = {
    "from typing import NamedTuple",
    "import torch",
    "import torch.nn.functional as F",
    "from torch import nn",
}
FORBIDDEN = {
    "__import__",
    "exec",
    "eval",
    "compile",
    "open",
    "system",
    "popen",
    "globals",
    "locals",
    "vars",
    "setattr",
    "delattr",
    "breakpoint",
    "input",
    "os",
    "sys",
    "subprocess",
    "builtins",
    "importlib",
}
COMMENT = re.compile(r"# N( x \d+)+")


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the Constant nodes that are docstrings."""
    out = set()
    for node in [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef))]:
        first = node.body[0] if node.body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
            out.add(id(first.value))
    return out


def assert_only_the_model(source: str) -> ast.Module:
    """`source` compiles and holds the model and nothing else."""
    compile(source, "generated.py", "exec")
    tree = ast.parse(source)
    body = tree.body
    assert isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
    imports = [n for n in body[1:] if isinstance(n, ast.Import | ast.ImportFrom)]
    assert {ast.unparse(n) for n in imports} <= IMPORTS
    classes = body[1 + len(imports) :]
    assert classes and all(isinstance(c, ast.ClassDef) for c in classes), ast.unparse(tree)
    for cls in classes:
        assert isinstance(cls, ast.ClassDef)
        assert not cls.decorator_list and not cls.keywords
        assert [ast.unparse(b) for b in cls.bases] in (["nn.Module"], ["NamedTuple"])
        for item in cls.body[1:] if ast.get_docstring(cls) is not None else cls.body:
            if isinstance(item, ast.FunctionDef):
                assert item.name in ("__init__", "forward") and not item.decorator_list
            else:
                assert isinstance(item, ast.AnnAssign) and item.value is None, ast.unparse(item)
                assert ast.unparse(item.annotation) in ("torch.Tensor", "torch.Tensor | None")
    docstrings = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            assert node in imports
        assert not isinstance(
            node,
            ast.Global | ast.Nonlocal | ast.Lambda | ast.Delete | ast.With | ast.Try | ast.While,
        ), ast.unparse(node)
        if isinstance(node, ast.Name):
            assert node.id not in FORBIDDEN and not node.id.startswith("__"), node.id
        if isinstance(node, ast.Attribute):
            assert node.attr not in FORBIDDEN, node.attr
            assert not node.attr.startswith("__") or node.attr == "__init__", node.attr
        if isinstance(node, ast.arg):
            assert node.arg not in FORBIDDEN and not node.arg.startswith("__"), node.arg
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            # strings are docstrings, numbered submodules (`getattr(self, "0")`) or infinities
            assert (
                id(node) in docstrings
                or node.value.isdigit()
                or node.value in ("inf", "-inf", "nan")
            ), node.value
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            assert COMMENT.fullmatch(token.string), token.string
    return tree


def assert_builds_like_build(source: str, data: dict[str, Any], tmp_path: Path) -> None:
    """The generated module runs, with `compiler.build`'s state_dict and outputs."""
    torch = pytest.importorskip("torch")
    from compiler import torchbuild

    built = torchbuild.build(data)
    graph = built.yarch_graph
    module = load_module(source, tmp_path, f"m{abs(hash(source))}")
    generated = getattr(module, graph.model_class)()
    generated.load_state_dict(built.state_dict(), strict=True)
    generated.eval()
    built.eval()
    x = torch.randn(2, *graph.input_shape)
    with torch.no_grad():
        a, b = generated(x), built(x)
    if isinstance(a, tuple):  # (build caches the tuple class by forward code, not fields)
        assert a._fields == tuple(graph.outputs)
        for u, v in zip(a, b, strict=True):  # training-only outputs are None in eval mode
            assert (u is None and v is None) or torch.equal(u, v)
    else:
        assert torch.equal(a, b)


def ruff_check(sources: dict[str, str], tmp_path: Path, fmt: bool = False) -> None:
    folder = tmp_path / "ruff"
    folder.mkdir(exist_ok=True)
    for stem, source in sources.items():
        (folder / f"{stem}.py").write_text(source, encoding="utf-8")
    config = str(ROOT / "pyproject.toml")
    commands = [["check", "--config", config, "--no-cache", str(folder)]]
    if fmt:
        commands.append(["format", "--check", "--config", config, "--no-cache", str(folder)])
    for command in commands:
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *command], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr


# --- names in every position ---------------------------------------------------------------------


@functools.cache
def outcome(position: str, key: str) -> tuple[Result, str | None]:
    """Lint of the spec with HOSTILE[key] in `position`, and its generated code if it is clean."""
    data = spec_with(position, HOSTILE[key])
    result = lint_data(data)
    source = None
    if not result.errors and result.graph is not None:
        source = codegen_file(result, "hostile.yaml")
    return result, source


@pytest.mark.parametrize(("position", "key"), CASES, ids=[f"{p}-{k}" for p, k in CASES])
def test_hostile_name_is_refused_or_harmless(position, key):
    result, source = outcome(position, key)
    errors = [d for d in result.diagnostics if d.is_error]
    if key not in ACCEPTED[position]:
        assert errors, f"{HOSTILE[key]!r} as a {position} was accepted"
        for d in errors:  # file:line:col, and the name in the message shown, not pasted
            assert d.span is not None and d.span.line >= 1 and d.span.column >= 1, d
            assert d.message.isprintable() and len(d.message) < 300, d.message
        assert source is None
        return
    assert not errors, [d.message for d in errors]
    assert source is not None
    assert_only_the_model(source)


def test_hostile_keys_elsewhere_are_refused_and_shown_escaped():
    """Keys that are not names of anything a spec declares: a block call's fields, a scale
    row's parameters."""
    for name in ("a\nb", "ab\u202ecd", INJECT, "n" * 10_000):
        data = spec_with("block-param", "w")
        data["layers"][1] = {"Unit": {"w": 4, name: 1}}
        data["params"]["p"] = 1
        data["scales"] = {"s": {"width": 1.0, name: 2}}
        result = lint_data(data)
        codes = {d.code for d in result.diagnostics if d.is_error}
        assert codes == {"unknown-field", "undefined-parameter"}, result.diagnostics
        for d in result.diagnostics:
            assert d.message.isprintable() and len(d.message) < 300, d.message


def test_a_reference_that_changes_under_nfkc_is_refused():
    for reference in ("$\ufb01lter", "${\ufb01lter * 1}", "${\uff46ilter}"):
        data = spec_with("spec-param", "filter")
        data["layers"][3] = {"linear": {"name": "fc", "out": reference}}
        assert lint_data(data).errors, reference


def test_only_plain_short_identifiers_are_ever_accepted():
    """No position accepts a name that is not a plain ASCII identifier of `MAX_NAME` at most."""
    plain = re.compile(rf"[A-Za-z][A-Za-z0-9_]{{0,{MAX_NAME - 1}}}")
    for position, accepted in ACCEPTED.items():
        for key in accepted:
            assert plain.fullmatch(HOSTILE[key]), (position, key)


def test_accepted_names_generate_code_that_passes_ruff(tmp_path):
    sources = {
        f"{position}_{key}".replace("-", "_"): outcome(position, key)[1]
        for position, keys in ACCEPTED.items()
        for key in keys
    }
    assert all(sources.values())
    ruff_check(sources, tmp_path, fmt=True)  # type: ignore[arg-type]


@pytest.mark.parametrize("position", sorted(ACCEPTED))
def test_accepted_names_build_the_same_module(position, tmp_path):
    for key in sorted(ACCEPTED[position]):
        _, source = outcome(position, key)
        assert source is not None
        assert_builds_like_build(source, spec_with(position, HOSTILE[key]), tmp_path)


def test_layer_names_that_would_hide_something_keep_their_attribute():
    data = spec_with("layer", "print")
    data["layers"][2] = {"flatten": {"name": "len"}}
    data["layers"].insert(2, {"relu": {"name": "F"}})
    source = codegen_file(lint_data(data), "hostile.yaml")
    # the attributes are the names (the state_dict keys), the variables of forward are not
    assert "self.print = nn.ReLU(" in source and "self.len = nn.Flatten()" in source
    assert re.search(r"^\s+print = ", source, re.M) is None
    assert re.search(r"^\s+len = ", source, re.M) is None
    assert re.search(r"^\s+F = ", source, re.M) is None


def test_names_that_change_under_nfkc_are_refused_everywhere():
    for position in ACCEPTED:
        result, _ = outcome(position, "ligature")
        messages = " ".join(d.message for d in result.diagnostics if d.is_error)
        assert "Python reads it as `filter`" in messages, (position, messages)
        assert "\ufb01" not in messages.split("reads it as")[0]  # shown as `\ufb01lter`


def test_a_long_name_is_refused_with_its_length():
    result, _ = outcome("layer", "long")
    (d,) = [d for d in result.diagnostics if d.is_error]
    assert f"longer than {MAX_NAME} characters (10,000)" in d.message
    assert len(d.message) < 300


def test_a_name_of_the_maximum_length_generates_clean_code(tmp_path):
    names = [c * MAX_NAME for c in "abcd"]
    p = "$" + "p" * MAX_NAME
    data: dict[str, Any] = {
        "name": "n" * MAX_NAME,
        "input": [3, 4, 4],
        "blocks": {
            "B" * MAX_NAME: {
                "params": {"p" * MAX_NAME: 4},
                "layers": [
                    {"conv": {"name": names[0], "out": p, "kernel": 1}},
                    {"conv": {"name": names[1], "from": "input", "out": p, "kernel": 1}},
                    {"conv": {"name": names[2], "from": "input", "out": p, "kernel": 1}},
                    {"add": {"name": names[3], "from": names[:3]}},
                ],
            },
        },
        "layers": [
            {"conv": {"name": names[0], "out": 4, "kernel": 1}},
            {"maxpool": {"name": names[1], "kernel": 3, "stride": 2, "padding": "same"}},
            {"conv": {"name": names[2], "from": names[0], "out": 4, "kernel": 1}},
            {"maxpool": {"name": names[3], "kernel": 3, "stride": 2, "padding": "same"}},
            {"concat": {"name": "e" * MAX_NAME, "from": [names[1], names[3], names[1]]}},
            {"B" * MAX_NAME: {"name": "f" * MAX_NAME, "p" * MAX_NAME: 4}},
            {"B" * MAX_NAME: {"name": "g" * MAX_NAME, "p" * MAX_NAME: 8}},
            {"flatten": {"name": "h" * MAX_NAME}},
            {"linear": {"name": "i" * MAX_NAME, "out": 2}},
            *({"linear": {"name": c * MAX_NAME, "from": "h" * MAX_NAME, "out": 2}} for c in "qrs"),
        ],
        "outputs": {
            "j" * MAX_NAME: "i" * MAX_NAME,
            "k" * MAX_NAME: "h" * MAX_NAME,
            # training-only heads: `q... = r... = s... = None` would be too long a line
            **{c.upper() * MAX_NAME: {"from": c * MAX_NAME, "train_only": True} for c in "qrs"},
        },
    }
    result = lint_data(data)
    assert not result.diagnostics, [d.message for d in result.diagnostics]
    source = codegen_file(result, "hostile.yaml")
    assert_only_the_model(source)
    assert max(len(line) for line in source.splitlines()) <= 100
    ruff_check({"longest": source}, tmp_path, fmt=True)
    assert_builds_like_build(source, data, tmp_path)


# --- collisions ----------------------------------------------------------------------------------


def test_block_types_that_are_one_class_are_warned_about_and_numbered(tmp_path):
    data = spec_with("layer", "r")
    data["blocks"] = {
        "conv_bn": {"layers": [{"conv": {"out": 4, "kernel": 1}}, "bn"]},
        "ConvBn": {"layers": [{"conv": {"out": 4, "kernel": 3, "padding": 1}}, "bn"]},
        "Net": {"layers": ["relu"]},  # the model's class
    }
    data["layers"][1:2] = ["conv_bn", "ConvBn", "Net"]
    result = lint_data(data)
    assert not result.errors
    warnings = [d for d in result.diagnostics if d.code == "name-collision"]
    assert [d.span.line for d in warnings if d.span] == [
        i + 1 for i, line in enumerate(dump(data).splitlines()) if line in ("  ConvBn:", "  Net:")
    ]
    assert "the name of block `conv_bn`'s class" in warnings[0].message
    assert "the name of the model's class" in warnings[1].message
    source = codegen_file(result, "hostile.yaml")
    tree = assert_only_the_model(source)
    names = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
    assert len(names) == len(set(names))
    assert {"ConvBn", "ConvBn2", "Net", "Net2"} <= set(names)
    assert_builds_like_build(source, data, tmp_path)


def test_a_block_parameter_named_like_a_class_keeps_its_name(tmp_path):
    data: dict[str, Any] = {
        "name": "net",
        "input": [3, 4, 4],
        "blocks": {
            "Inner": {"params": {"c": 4}, "layers": [{"conv": {"out": "$c", "kernel": 1}}]},
            "Outer": {
                "params": {"Inner": 4},
                "layers": [{"Inner": {"name": "a", "c": "$Inner"}}, "relu"],
            },
        },
        "layers": [{"Outer": {"Inner": 4}}, {"Outer": {"Inner": 6}}, "flatten"],
    }
    result = lint_data(data)
    (d,) = result.diagnostics
    assert d.code == "name-collision" and "a parameter of block `Outer`" in d.message
    source = codegen_file(result, "hostile.yaml")
    assert_only_the_model(source)
    assert "class Inner2(nn.Module):" in source
    assert "def __init__(self, in_channels: int, Inner: int = 4) -> None:" in source
    assert "self.a = Inner2(in_channels, c=Inner)" in source
    assert_builds_like_build(source, data, tmp_path)


def test_a_third_block_of_one_class_is_warned_about_with_the_name_codegen_gives_it(tmp_path):
    """Resolve's warning and codegen read one rule (`names.class_names`): the third block type
    that is class `ConvBn` is told it becomes `ConvBn3`, the class codegen writes."""
    data = spec_with("layer", "r")
    data["blocks"] = {
        name: {"layers": [{"conv": {"out": 4, "kernel": k, "padding": k // 2}}, "bn"]}
        for name, k in (("conv_bn", 1), ("ConvBn", 3), ("Conv_Bn", 5))
    }
    data["layers"][1:2] = ["conv_bn", "ConvBn", "Conv_Bn"]
    result = lint_data(data)
    warnings = [d.message for d in result.diagnostics if d.code == "name-collision"]
    assert [w.split("(`")[-1] for w in warnings] == ["ConvBn2`)", "ConvBn3`)"]
    source = codegen_file(result, "hostile.yaml")
    names = [n.name for n in assert_only_the_model(source).body if isinstance(n, ast.ClassDef)]
    assert {"ConvBn", "ConvBn2", "ConvBn3"} <= set(names)


def test_class_names_is_the_one_rule_for_classes():
    names = class_names(
        "net", {"conv_bn": [], "ConvBn": [], "Net": [], "Outer": ["Inner"], "Inner": ["c"]}
    )
    assert (names.model, names.outputs) == ("Net", "NetOutputs")
    assert names.blocks == {
        "conv_bn": "ConvBn",
        "ConvBn": "ConvBn2",
        "Net": "Net2",
        "Outer": "Outer",
        "Inner": "Inner2",
    }
    assert [(c.block, c.given, c.reserved) for c in names.collisions] == [
        ("ConvBn", "ConvBn2", False),
        ("Net", "Net2", True),
        ("Inner", "Inner2", True),
    ]
    assert names.collisions[2].owner == "a parameter of block `Outer`"
    # codegen's classes: a block type's first plain class is its own, variants and further
    # classes are fresh in the same namespace
    assert names.for_block("Outer") == "Outer"
    assert names.for_block("Outer", "Downsample") == "OuterDownsample"
    assert names.for_block("Outer") == "Outer2"
    assert names.for_block("ConvBn") == "ConvBn2" and names.for_block("ConvBn") == "ConvBn3"
    assert names.for_block("seq_made") == "SeqMade"
    assert names.namespace.create_name("Net") == "Net3"


def test_one_namespace_makes_every_fresh_name():
    names = Namespace({"x", "out"})
    assert [names.create_name("x") for _ in range(3)] == ["x_2", "x_3", "x_4"]
    assert [names.create_name("conv", numbered=True) for _ in range(2)] == ["conv_1", "conv_2"]
    assert names.create_name("relu_1") == "relu_1"
    assert names.create_name("relu_1") == "relu_1_2"  # not `relu_2`, another layer's name
    obj = object()
    assert names.create_name("a", obj) == "a" and names.create_name("b", obj) == "a"
    assert Namespace({"ConvBn"}, separator="").create_name("ConvBn") == "ConvBn2"
    taken = {"A", "A2"}
    assert Namespace(taken=taken.__contains__, separator="").create_name("A") == "A3"


def test_a_namespace_counts_on_instead_of_trying_every_taken_name():
    """The thousandth fused conv in one block costs one try, not a thousand."""
    asked = []
    names = Namespace(taken=lambda n: asked.append(n) or False)
    made = [names.create_name("fused_1x1") for _ in range(1000)]
    assert made[-1] == "fused_1x1_1000" and len(set(made)) == 1000
    assert len(asked) == 1000


def test_outputs_differing_in_case_and_a_layer_named_like_the_outputs_class(tmp_path):
    data = spec_with("layer", "NetOutputs")
    data["outputs"] = {"a": "fc", "A": "flat", "NetOutputs": "NetOutputs"}
    result = lint_data(data)
    assert not result.diagnostics
    source = codegen_file(result, "hostile.yaml")
    assert_only_the_model(source)
    assert "    a: torch.Tensor\n    A: torch.Tensor\n    NetOutputs: torch.Tensor\n" in source
    assert "self.NetOutputs = nn.ReLU(" in source
    assert re.search(r"^\s+NetOutputs = ", source, re.M) is None  # the variable is renamed
    assert_builds_like_build(source, data, tmp_path)


def test_a_block_parameter_named_like_a_generated_one_keeps_its_values(tmp_path):
    # `conv_1_out_channels` is the name codegen gives the varying width of the block's first
    # conv when no parameter carries it; here a parameter of that name holds something else
    data: dict[str, Any] = {
        "name": "net",
        "input": [3, 4, 4],
        "blocks": {
            "Unit": {
                "params": {"conv_1_out_channels": 1, "w": 8},
                "layers": [
                    {"conv": {"out": "${w + 1}", "kernel": 1}},
                    {"dropout": "${conv_1_out_channels / 10}"},
                ],
            }
        },
        "layers": [
            {"Unit": {"w": 8, "conv_1_out_channels": 1}},
            {"Unit": {"w": 6, "conv_1_out_channels": 2}},
            "flatten",
        ],
    }
    result = lint_data(data)
    assert not result.diagnostics
    source = codegen_file(result, "hostile.yaml")
    assert_only_the_model(source)
    assert_builds_like_build(source, data, tmp_path)
    # the width is written as the spec writes it, beside the parameter of the same name
    assert "nn.Conv2d(in_channels, w + 1, kernel_size=1)" in source
    assert "nn.Dropout(p=conv_1_out_channels / 10)" in source


def test_codegen_renames_what_lint_would_refuse_in_a_graph_built_by_hand(tmp_path):
    """The last line of defence: a graph that never went through lint."""
    data = spec_with("block-param", "w")
    result = lint_data(data)
    graph = result.graph
    assert graph is not None and not result.errors
    for inst in graph.instances.values():
        inst.params = {"self": inst.params["w"], "nn": 1}
    source = generate(graph, "hostile.yaml")
    assert_only_the_model(source)
    assert "def __init__(self, in_channels: int, self_: int) -> None:" in source
    assert "nn.Conv2d(in_channels, self_, kernel_size=1)" in source
    assert safe_identifier("self") == "self_"
    assert safe_identifier(INJECT) == "import_os_system_touch_pwned"
    assert safe_identifier("1st") == "p1st" and safe_identifier("sum", {"sum_"}) == "sum_2"


# --- texts: docstrings ---------------------------------------------------------------------------

TEXTS: dict[str, str] = {
    "break-out": 'x"""; __import__("os").system("touch pwned"); """',
    "break-out-newline": 'x"""\nimport os\nos.system("touch pwned")\n"""',
    "single-quotes": "x'''; import os; '''",
    "trailing-quote": 'ends with a quote"',
    "only-quotes": '"' * 7,
    "trailing-backslash": "ends with a backslash\\",
    "escapes": "\\N \\x \\u \\U \\0 \\n \\",
    "nul": "a\x00b",
    "carriage-return": "a\rb\r\n",
    "line-separator": "a\u2028b\u2029c\x85d",
    "controls": "bell\x07 escape\x1b[31m red",
    "rtl-override": "access\u202e \u2066level\u2069",
    "zero-width": "a\u200db\u200bc\ufeff",
    "jinja": "{{ 7 * 7 }} {% raw %}",
    "non-bmp": "\U0001f600 \U0001d49c",
    "wide": "\u4e2d\u6587" * 80,
    "long-word": "w" * 10_000,
    "long-text": "word " * 5_000,
}


def _texts_spec(text: str) -> dict[str, Any]:
    data = spec_with("block", "Unit")
    data["description"] = text
    data["source"] = text
    data["blocks"]["Unit"]["doc"] = text
    return data


def _same_text(docstring: str | None, text: str) -> bool:
    """The docstring holds `text`, up to whitespace (folded, and added where lines wrap)."""
    return docstring is not None and "".join(text.split()) in "".join(docstring.split())


@pytest.mark.parametrize("key", sorted(TEXTS))
def test_texts_become_docstrings_that_hold_them_and_nothing_else(key, tmp_path):
    text = TEXTS[key]
    result = lint_data(_texts_spec(text))
    assert not result.errors, [d.message for d in result.diagnostics]
    path = f'specs/{text[:50]}"""\n.yaml'  # a spec's path is pasted into the docstring too
    source = codegen_file(result, path)
    tree = assert_only_the_model(source)
    assert _same_text(ast.get_docstring(tree), text)
    assert _same_text(ast.get_docstring(tree), path)
    unit = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Unit")
    assert _same_text(ast.get_docstring(unit), text)
    assert all(ch.isprintable() for line in source.splitlines() for ch in line)
    assert not (tmp_path / "pwned").exists()


def test_texts_pass_ruff(tmp_path):
    sources = {}
    for key, text in TEXTS.items():
        result = lint_data(_texts_spec(text))
        sources[key.replace("-", "_")] = codegen_file(result, "hostile.yaml")
    ruff_check(sources, tmp_path)


def test_a_lone_surrogate_in_a_graph_built_by_hand():
    result = lint_data(_texts_spec("doc"))
    assert result.graph is not None
    result.graph.block_docs["Unit"] = "half a pair: \ud800"
    source = generate(result.graph, "hostile.yaml", description="\udfff")
    source.encode("utf-8")  # writable
    assert_only_the_model(source)


# --- values and --set ----------------------------------------------------------------------------


def test_infinite_values_are_written_as_float_inf(tmp_path):
    data = spec_with("layer", "act")
    data["layers"][1] = {"leaky_relu": {"name": "act", "negative_slope": math.inf}}
    data["layers"].insert(1, {"bn": {"eps": math.inf}})
    result = lint_data(data)
    assert not result.errors
    source = codegen_file(result, "hostile.yaml")
    assert_only_the_model(source)
    assert 'nn.BatchNorm2d(4, eps=float("inf"))' in source
    assert 'nn.LeakyReLU(negative_slope=float("inf"))' in source
    ruff_check({"inf": source}, tmp_path)
    pytest.importorskip("torch")
    module = load_module(source, tmp_path, "inf")
    assert module.Net().act.negative_slope == math.inf


@pytest.mark.parametrize(
    ("sets", "code"),
    [
        (['classes=x"""; __import__(\'os\')'], 1),  # a string where a number goes
        (["classes=.inf"], 1),
        (["classes=[1, 2]"], 1),
        (["__class__=1"], 1),  # no such parameter
        (["\ufb01lter=1"], 1),
        (["a;b=1"], 2),  # not key=value
        (["a\nb=1"], 2),
        (["=1"], 2),
    ],
)
def test_set_cannot_inject(sets, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.yaml").write_text(dump(spec_with("layer", "r")), encoding="utf-8")
    args = [a for s in sets for a in ("--set", s)]
    for command in (["lint"], ["codegen"], ["draw", "--format", "dot"]):
        done = CliRunner().invoke(cli, [*command, "net.yaml", *args])
        assert done.exit_code == code, done.output
        assert done.exception is None or isinstance(done.exception, SystemExit)
        assert "Traceback" not in done.output
    assert not (tmp_path / "pwned").exists()


def test_a_string_set_where_a_block_argument_goes_is_only_ever_a_value(tmp_path):
    data = spec_with("block-param", "w")
    data["params"]["p"] = 4
    data["layers"][1] = {"Unit": {"w": "$p"}}
    for value in ["'x'", '"\\"\\"\\""', "__import__"]:
        result = lint_text(dump(data), "hostile.yaml", overrides={"p": yaml.safe_load(value)})
        if not result.errors:  # the parameter is never used as a number: nothing reaches code
            assert_only_the_model(codegen_file(result, "hostile.yaml"))


# --- the diagram ---------------------------------------------------------------------------------

LABELS: dict[str, str] = {
    "quote": 'say "hi"',
    "trailing-backslash": "ends\\",
    "html": "<b>x</b>",
    "html-open": "<<",
    "html-table": '<TABLE><TR><TD>x</TD></TR></TABLE>>, shape="box',
    "script": "<script>alert(1)</script>",
    "attribute": '" onload="alert(1)',
    "entity": "&amp; &#1; &#x0; &lt; &foo; &",
    "port": "a:b:n",
    "controls": "bell\x07 escape\x1b",
    "nul": "a\x00b",
    "separators": "a\u2028b\x85c",
    "rtl": "a\u202eb",
    "non-bmp": "\U0001f600",
    "noncharacter": "\ufffe\uffff",
    "escstring": "\\N \\G \\L \\n \\l \\r",
    "comment": "a -- b --> c",
    "cdata": "]]> <![CDATA[",
    "brace": "} digraph { x",
    "long": "L" * 20_000,
}


def hostile_graph(text: str) -> tuple[ArchGraph, list, str]:
    """A graph whose every drawn string is `text`: node ids and names, a block type, an
    output, the graph's name, diagnostics and the caption. Ids come from names, which a spec
    cannot make hostile; a graph built by hand can."""
    data: dict[str, Any] = {
        "name": "net",
        "input": [3, 4, 4],
        "blocks": {"Unit": {"layers": [{"conv": {"name": "c", "out": 4, "kernel": 1}}]}},
        "layers": [
            {"Unit": {"name": "blk"}},
            {"conv": {"name": "mid", "out": 4, "kernel": 1}},
            {"flatten": {"name": "flat"}},
            {"linear": {"name": "fc", "out": 2}},
        ],
        "outputs": {"logits": "fc", "features": "flat"},
    }
    result = lint_data(data)
    graph = result.graph
    assert graph is not None and not result.errors
    new = f"mid{text}"
    rename(graph, "mid", new)
    graph.node(new).name = new
    graph.instances["blk"].block = text
    graph.outputs = {text: graph.outputs["logits"], "features": graph.outputs["features"]}
    graph.name = text
    diagnostics = [
        error("invalid-value", text, node=new),
        error("invalid-value", text, node="blk"),
    ]
    return graph, diagnostics, text + "\n" + text


def lint_hostile_spec(text: str) -> tuple[ArchGraph, list, str]:
    """The same text from a spec: its description and source, and an unknown op (drawn,
    marked invalid, since it declares its shape) whose name is the text."""
    data = spec_with("layer", "r")
    data["description"] = data["source"] = text
    data["layers"].insert(2, {text[:1000]: {"name": "odd", "expect": [4, 4, 4]}})
    result = lint_data(data)
    assert result.graph is not None and result.spec is not None
    assert any(d.code == "unknown-op" for d in result.diagnostics)
    return result.graph, result.diagnostics, caption_of(result.spec)


def svg_of(dot: str) -> ET.Element:
    done = subprocess.run(
        ["dot", "-Tsvg"], input=dot.encode("utf-8"), capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    assert b"Warning" not in done.stderr and b"Error" not in done.stderr, done.stderr.decode()
    return ET.fromstring(done.stdout)  # well-formed XML, or this raises


def assert_dot_is_bounded(dot: str) -> None:
    assert max(len(line) for line in dot.splitlines()) < MAX_LABEL
    for bad in ("\x00", "\x07", "\x1b", "\u2028", "\x85", "\u202e", "\ufffe", "\r"):
        assert bad not in dot, repr(bad)


# an edge statement: quoted ids, or bare ones (identifiers and numbers) as the package writes them
ID = r'(?:"(?:[^"\\]|\\.)*"|[A-Za-z0-9_.-]+)'
EDGE = re.compile(rf"^\s*{ID} -> {ID} \[", re.MULTILINE)


def assert_svg_has_what_dot_declares(svg: ET.Element, dot: str) -> None:
    """As many nodes, edges and clusters as the DOT's own statements declare: no payload
    broke out of its string into a statement of its own."""
    kinds = [el.get("class") for el in svg.iter() if el.tag.endswith("}g")]
    assert kinds.count("graph") == 1
    assert kinds.count("node") == count_nodes(dot)
    assert kinds.count("edge") == len(EDGE.findall(dot))
    assert kinds.count("cluster") == len(re.findall(r"^\s*subgraph ", dot, re.MULTILINE))


@pytest.mark.parametrize("key", sorted(LABELS))
@pytest.mark.parametrize("source", ["graph", "spec"])
def test_diagram_escapes_every_string(key, source):
    text = LABELS[key]
    graph, diagnostics, caption = (hostile_graph if source == "graph" else lint_hostile_spec)(text)
    for depth in (None, 0):
        dot = to_dot(graph, diagnostics, depth=depth, caption=caption)
        assert_dot_is_bounded(dot)
        assert "<b>" not in re.sub(r'"(\\.|[^"\\])*"', '""', dot)
        if not HAS_DOT:
            continue
        svg = svg_of(dot)
        assert_svg_has_what_dot_declares(svg, dot)
        tags = {el.tag.rsplit("}", 1)[-1].lower() for el in svg.iter()}
        assert not tags & {"b", "script", "table", "foreignobject", "iframe"}, tags
        for el in svg.iter():
            assert not any(a.lower().startswith("on") for a in el.attrib), el.attrib
        texts = "".join(svg.itertext())
        if key in ("html", "script", "quote", "port", "non-bmp"):
            assert text in texts or text in str(svg.attrib), key
        assert "\x07" not in texts and "\x1b" not in texts


@needs_dot
def test_a_colon_stays_in_the_id():
    graph, diagnostics, caption = hostile_graph("a:b:n")
    svg = svg_of(to_dot(graph, diagnostics, caption=caption))
    titles = [el.text for el in svg.iter() if el.tag.endswith("title")]
    assert "mida:b:n" in titles  # a port would have cut the id at the first `:`
    assert "mida:b:n->flat" in titles


def test_a_20000_character_label_is_cut_with_an_ellipsis():
    graph, diagnostics, caption = hostile_graph("L" * 20_000)
    dot = to_dot(graph, diagnostics, caption=caption)
    assert_dot_is_bounded(dot)
    assert "L…" in dot  # labels cut with an ellipsis
    assert "L" * 200 not in dot.split("tooltip")[0]


def test_generated_code_and_diagram_of_a_spec_with_every_payload(tmp_path):
    """All payloads at once, through the command line: nothing runs, nothing leaks."""
    data = _texts_spec(" ".join(TEXTS.values()) + " ".join(LABELS.values()))
    spec = tmp_path / 'evil"""; import os; os.system("touch pwned"); """.yaml'
    spec.write_text(dump(data), encoding="utf-8")
    runner = CliRunner()
    out = tmp_path / "gen.py"
    done = runner.invoke(cli, ["codegen", str(spec), "-o", str(out)])
    assert done.exit_code == 0, done.output
    assert_only_the_model(out.read_text(encoding="utf-8"))
    done = runner.invoke(cli, ["draw", str(spec), "--format", "dot", "-o", str(tmp_path / "g.dot")])
    assert done.exit_code == 0, done.output
    assert_dot_is_bounded((tmp_path / "g.dot").read_text(encoding="utf-8"))
    assert not (tmp_path / "pwned").exists() and not (ROOT / "pwned").exists()


def test_messages_show_names_not_paste_them():
    """A refused name appears in its diagnostic escaped and cut, never as it was written."""
    for key in ("rtl-override", "zero-width-joiner", "nul", "newline", "long"):
        for position in ("block", "layer", "output"):
            result, _ = outcome(position, key)
            for d in result.diagnostics:
                assert d.message.isprintable() and len(d.message) < 300, d.message
