"""Resolution: parameters, blocks, repeats, conditionals, scopes and references."""

from __future__ import annotations

from compiler import lint_text

BASIC_BLOCK = """
input: [64, 56, 56]
params:
  expansion: 1
blocks:
  BasicBlock:
    params: {planes: ~, stride: 1, down: false}
    layers:
      - conv: {name: conv1, out: $planes, kernel: 3, stride: $stride, padding: 1, bias: false}
      - bn: {name: bn1}
      - relu
      - conv: {name: conv2, out: "${planes * expansion}", kernel: 3, padding: 1, bias: false}
      - bn: {name: bn2}
      - seq:
          name: downsample
          from: input
          if: $down
          layers:
            - conv: {out: $planes, kernel: 1, stride: $stride, bias: false}
            - bn
      - add: [bn2, downsample]
      - relu
layers:
  - BasicBlock: {name: layer1, planes: 64, repeat: 2}
  - BasicBlock: {name: layer2_0, planes: 128, stride: 2, down: true}
  - BasicBlock: {name: layer2_1, planes: 128}
"""


def test_blocks_repeats_and_conditionals():
    result = lint_text(BASIC_BLOCK)
    assert result.diagnostics == []
    g = result.graph
    ids = set(g.graph.nodes)
    assert {"layer1.0.conv1", "layer1.1.conv2", "layer2_0.downsample.0"} <= ids
    assert "layer1.0.downsample.0" not in ids  # `if: false` removed it
    add = g.node("layer1.0.add_1")
    assert add.inputs == ["layer1.0.bn2", "input"]  # the disabled downsample means its input
    assert g.node("layer2_0.add_1").inputs == ["layer2_0.bn2", "layer2_0.downsample.1"]
    assert g.node("layer1.1.conv1").inputs == ["layer1.0.relu_2"]
    assert g.node(g.outputs["out"]).shape == (128, 28, 28)
    assert g.node("layer2_0.conv1").scope == ("layer2_0",)
    assert g.instances["layer1"].output == "layer1.1.relu_2"
    assert g.display("layer1.1.relu_2") == "layer1"


def test_missing_downsample_is_an_add_mismatch():
    result = lint_text(BASIC_BLOCK.replace("stride: 2, down: true", "stride: 2"))
    (d,) = result.diagnostics
    assert d.code == "add-mismatch"
    assert "`layer2_0.conv2` gives 128x28x28" in d.notes[0]  # the bn after it keeps the shape
    assert "`layer1` gives 64x56x56" in d.notes[1]
    assert "1x1 conv" in d.help


def test_expression_and_set_override():
    spec = "input: [3, 8, 8]\nparams: {width: 4}\nlayers:\n  - conv:\n      out: ${width * 2}\n"
    spec += "      kernel: 1\n"
    assert lint_text(spec).graph.nodes()[-1].shape == (8, 8, 8)
    result = lint_text(spec, overrides={"width": 16})
    assert result.graph.nodes()[-1].shape == (32, 8, 8)


def test_block_defaults_see_spec_params():
    spec = """
input: [3, 8, 8]
params: {classes: 7}
blocks:
  Head:
    params: {n: $classes}
    layers: [flatten, {linear: $n}]
layers: [Head]
"""
    result = lint_text(spec)
    assert result.diagnostics == []
    assert result.graph.nodes()[-1].shape == (7,)


def test_block_output_and_forward_reference():
    spec = """
input: [3, 8, 8]
blocks:
  Two:
    output: a
    layers:
      - relu: {name: b, from: a}
      - conv: {name: a, from: input, out: 5, kernel: 1}
layers:
  - Two: {name: t}
  - flatten
"""
    result = lint_text(spec)
    assert [d.code for d in result.diagnostics] == ["unreachable-node"]  # `t.b` is unused
    g = result.graph
    assert g.node("flatten_1").inputs == ["t.a"]
    assert g.order.index("t.a") < g.order.index("t.b")


def test_names_are_scoped_to_their_block():
    spec = """
input: [3, 8, 8]
blocks:
  B:
    layers: [{relu: {from: stem}}]
layers:
  - conv: {name: stem, out: 4, kernel: 1}
  - B
"""
    (d,) = lint_text(spec).diagnostics
    assert d.code == "undefined-reference"
    assert d.message == "no layer named `stem` in `B_1`"


def test_one_mistake_does_not_cascade():
    spec = """
input: [3, 32, 32]
layers:
  - conv: {name: a, out: 8, kernal: 3}
  - conv: {out: 8, kernel: 3}
  - conv: {name: other, from: input, out: 8, kernel: 3, stride: 0}
  - concat: [conv_1, other, missing]
  - flatten
  - linear: {in: 3, out: 2}
"""
    codes = sorted(d.code for d in lint_text(spec).diagnostics)
    assert codes == ["invalid-value", "undefined-reference", "unknown-field"]


def test_parameter_errors_point_where_the_value_was_written():
    spec = """
input: [3, 32, 32]
blocks:
  B:
    params: {k: 3}
    layers: [{conv: {out: 8, kernel: $k}}]
layers:
  - B: {k: 0}
"""
    (d,) = lint_text(spec).diagnostics
    assert d.code == "invalid-value"
    assert (d.span.line, d.span.column) == (8, 12)  # the `0` of `k: 0`


def test_duplicate_names_and_unknown_op_suggestions():
    spec = "input: [3, 8, 8]\nlayers:\n  - relu: {name: a}\n  - relu: {name: a}\n  - maxpol: 2\n"
    diags = lint_text(spec).diagnostics
    assert [d.code for d in diags] == ["duplicate-name", "unknown-op"]
    assert diags[1].help == "did you mean `maxpool` or `avgpool`?"


def test_inception_field_form_and_options():
    spec = """
input: [192, 28, 28]
layers:
  - inception: {c1: 64, c3: [96, 128], c5: [16, 32], pool_proj: 32, bn: true, c5_kernel: 3}
"""
    result = lint_text(spec)
    assert result.diagnostics == []
    g = result.graph
    assert g.node("inception_1.branch3.1.conv").args.kernel == (3, 3)
    assert g.node("inception_1.branch2.0.bn").op.name == "bn"
    assert g.node(g.outputs["out"]).shape == (256, 28, 28)
    convs = 192 * 64 + 192 * 96 + 96 * 128 * 9 + 192 * 16 + 16 * 32 * 9 + 192 * 32  # no bias
    assert sum(n.params for n in g.nodes()) == convs + 2 * (64 + 96 + 128 + 16 + 32 + 32)


def test_flow_mapping_expression_gets_a_hint():
    (d,) = lint_text("input: [3, 8, 8]\nlayers:\n  - linear: {out: ${2 * 3}}\n").diagnostics
    assert d.code == "yaml-syntax"
    assert "quote an expression" in d.help


def test_top_level_references_get_a_did_you_mean():
    text = """
name: t
input: [3, 8, 8]
layers:
  - conv: {name: stem, out: 4, kernel: 1}
  - conv: {out: 4, kernel: 1, from: stemm}
outputs: {logits: conv_2}
"""
    helps = [d.help for d in lint_text(text).diagnostics]
    assert helps == ["did you mean `stem`?", "did you mean `conv_1`?"]
