"""The source posts' networks: the exact mistakes found in each, and the clean ones clean."""

from __future__ import annotations

import networkx as nx
import pytest

from compiler import lint_file

from .conftest import SPECS

# (code, line) of every diagnostic, per post; design.md lists these mistakes
EXPECTED = {
    "googlenet_pytorch.yaml": [
        ("invalid-value", 24),  # Conv2d(..., stride=0)
        ("shape-mismatch", 26),  # 3x3 conv without padding: 56 -> 54
        ("reshape-batch", 44),  # x.view(-1, 1024) on 1024x7x7
    ],
    "alexnet_text.yaml": [
        ("stride-remainder", 18),  # 224 with kernel 11, stride 4: a row and column dropped
        ("shape-mismatch", 18),  # ... and 54, not 55
        ("shape-mismatch", 26),  # CONV3 pad 2: 15, not 13
        ("shape-mismatch", 28),  # CONV4 pad 2: 15, not 13
    ],
    "inception_keras.yaml": [
        ("unflattened-linear", 23),  # Dense on the aux head's 128x4x4 map
        ("shape-mismatch", 50),  # 5a: 736 channels, not 832
        ("shape-mismatch", 51),  # 5b: 944 channels, not 1024
    ],
    "alexnet_code.yaml": [],
    "googlenet_paddle.yaml": [],
    "inception_paddle.yaml": [],
    "mnist_inception.yaml": [],
    "mnist_residual.yaml": [],
}


def test_every_post_is_pinned():
    assert sorted(p.name for p in (SPECS / "posts").glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_post_findings(name):
    result = lint_file(SPECS / "posts" / name)
    found = sorted((d.code, d.span.line) for d in result.diagnostics)
    assert found == sorted(EXPECTED[name])


def test_keras_channels_explained():
    result = lint_file(SPECS / "posts" / "inception_keras.yaml")
    notes = [n for d in result.diagnostics for n in d.notes]
    assert "`inception5a` outputs 736 = 256 + 320 + 32 + 128 from a 832x7x7 input" in notes
    assert "`inception5b` outputs 944 = 384 + 384 + 48 + 128 from a 832x7x7 input" in notes
    # the aux head mistake is reported once, for both heads
    (aux,) = [d for d in result.diagnostics if d.code == "unflattened-linear"]
    assert any("out2." in n for n in aux.notes)


def test_alexnet_text_says_which_input_tiles():
    result = lint_file(SPECS / "posts" / "alexnet_text.yaml")
    (warn,) = [d for d in result.diagnostics if d.code == "stride-remainder"]
    assert "the last row and column are never read" in warn.message
    assert "227x227" in warn.help
    helps = [d.help for d in result.diagnostics if d.code == "shape-mismatch"]
    assert helps.count("padding 1 gives 13x13") == 2
    assert "padding 2 gives 55x55" in helps


def _main_path(graph, output):
    node = graph.outputs[output]
    return {node} | nx.ancestors(graph.to_networkx(), node)


def test_googlenet_reference_figures():
    result = lint_file(SPECS / "googlenet.yaml")
    assert result.diagnostics == []
    g = result.graph
    assert sum(n.params for n in g.nodes()) == 13_378_280
    main = _main_path(g, "logits")
    assert sum(g.node(n).params for n in main) == 6_998_552
    assert sum(g.node(n).macs for n in main) == 1_582_671_872
    assert g.train_only == {"aux1", "aux2"}
    assert g.node(g.outputs["logits"]).shape == (1000,)


def test_paddle_matches_the_posts_summary():
    # the post's paddle.summary prints 13,378,280 and 163,696 parameters
    g = lint_file(SPECS / "posts" / "googlenet_paddle.yaml").graph
    assert sum(n.params for n in g.nodes()) == 13_378_280
    g = lint_file(SPECS / "posts" / "inception_paddle.yaml").graph
    assert sum(n.params for n in g.nodes()) == 163_696


def test_mnist_features():
    g = lint_file(SPECS / "posts" / "mnist_inception.yaml").graph
    assert g.node(g.instances["incep2"].output).shape == (88, 4, 4)
    assert g.node("fc").input_shapes == [(1408,)]
    g = lint_file(SPECS / "posts" / "mnist_residual.yaml").graph
    assert g.node("fc").input_shapes == [(512,)]


def test_hierarchy_is_kept():
    g = lint_file(SPECS / "googlenet.yaml").graph
    node = g.node("inception4a.branch2.2")
    assert node.scope == ("inception4a", "branch2")
    assert node.op.name == "conv" and node.args.out == 208
    assert g.instances["inception4a"].block == "inception"
    assert g.instances["aux1"].block == "AuxHead"
    assert g.display(g.instances["inception4a"].output) == "inception4a"
    text = (SPECS / "googlenet.yaml").read_text().splitlines()
    assert "name: inception4a," in text[node.span.line - 1]  # the inception4a line of the spec
    out = node.field_span("out")  # the 208 of [192, [96, 208], [16, 48], 64]
    line = (SPECS / "googlenet.yaml").read_text().splitlines()[out.line - 1]
    assert line[out.column - 1 : out.end_column - 1] == "208"
