"""`yarch draw`: the DOT it writes (clusters, depth, shapes, escaping, errors) and the command."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from graphviz.quoting import quote

from compiler import draw, lint_file, lint_text
from compiler.cli import cli
from compiler.diagnostics import error, warning
from compiler.draw import (
    INSTALL_HINT,
    MAX_LABEL,
    MAX_NODES,
    _html,
    _id,
    _string,
    count_nodes,
    render,
    to_dot,
    write_atomic,
)
from compiler.graph import ArchGraph

from .conftest import ROOT, SPECS, rename

HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz's `dot` is not installed")

# every kind of character a label must survive
NASTY = 'say "hi" \\ <b>bold</b> & a:b \x07\x1b\t\u2028 end\\'


def lint_graph(path: Path) -> tuple[ArchGraph, list]:
    result = lint_file(path)
    assert result.graph is not None
    return result.graph, result.diagnostics


@pytest.fixture(scope="module")
def googlenet() -> ArchGraph:
    graph, diagnostics = lint_graph(SPECS / "googlenet.yaml")
    assert not diagnostics
    return graph


@pytest.fixture(scope="module")
def googlenet_dot(googlenet) -> str:
    return to_dot(googlenet)


def dot_svg(source: str) -> str:
    """Render with Graphviz and insist on no complaint at all."""
    done = subprocess.run(
        ["dot", "-Tsvg"], input=source.encode(), capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0 and not done.stderr, done.stderr.decode()
    return done.stdout.decode()


def q(ident: str) -> str:
    """`ident` as the DOT names it: quoted by the graphviz package, if it has to be."""
    return quote(_id(ident))


def attrs_of(dot: str, ident: str) -> str:
    """The attribute list of the node statement for `ident`."""
    match = re.search(r"^\s*" + re.escape(q(ident)) + r" (\[.*\])$", dot, re.M)
    assert match, f"no node {ident}"
    return match.group(1)


def edge(dot: str, src: str, dst: str) -> str:
    """The attribute list of the edge `src -> dst` ("" for an edge without one)."""
    match = re.search(r"^\s*" + re.escape(f"{q(src)} -> {q(dst)}") + r"(?: (\[.*\]))?$", dot, re.M)
    assert match, f"no edge {src} -> {dst}"
    return match.group(1) or ""


# --- determinism ---------------------------------------------------------------------------------

DOT_OF = "import sys; from compiler import lint_file; from compiler.draw import to_dot; " + (
    "r = lint_file(sys.argv[1]); sys.stdout.write(to_dot(r.graph, r.diagnostics))"
)


def test_same_spec_same_bytes(googlenet, googlenet_dot):
    again, _ = lint_graph(SPECS / "googlenet.yaml")
    assert to_dot(again) == googlenet_dot == to_dot(googlenet)
    # and across processes, whatever the hash seed (no set or id() order leaks out)
    outputs = {
        subprocess.run(
            [sys.executable, "-c", DOT_OF, "specs/googlenet.yaml"],
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("0", "12345")
    }
    assert outputs == {googlenet_dot}


def test_no_torch_on_the_draw_path():
    probe = (
        "import sys; sys.modules['torch'] = None\n" + DOT_OF + "\n"
        "assert not [m for m in sys.modules if m.startswith('torch.')]\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, "specs/googlenet.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


# `yarch lint` imports the command line, which imports this module: graphviz waits for a diagram
LOADS_GRAPHVIZ = """
import sys
sys.argv = ["yarch", *sys.argv[1:]]
from compiler.cli import main
try:
    main()
except SystemExit as exc:
    print("exit", exc.code)
print("graphviz" in sys.modules)
"""


@pytest.mark.parametrize(
    ("args", "loaded"),
    [
        (["lint", "specs/googlenet.yaml"], "exit 0 False"),
        (["lint", "--format", "json", "specs/posts/"], "exit 1 False"),
        (
            ["draw", "--format", "dot", "-o", "{tmp}/g.dot", "specs/mini_inception.yaml"],
            "exit 0 True",
        ),
    ],
)
def test_lint_does_not_import_graphviz(args, loaded, tmp_path):
    args = [arg.format(tmp=tmp_path) for arg in args]
    done = subprocess.run(
        [sys.executable, "-c", LOADS_GRAPHVIZ, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert " ".join(done.stdout.split()[-3:]) == loaded, done.stdout + done.stderr


def test_the_formats_are_graphviz_formats():
    import graphviz

    assert set(draw.FORMATS) <= graphviz.FORMATS


# --- structure -----------------------------------------------------------------------------------


def cluster_lines(dot: str) -> dict[str, tuple[int, int]]:
    """Cluster id -> (line number, indentation in tabs) of its `subgraph` line."""
    out = {}
    for i, line in enumerate(dot.splitlines()):
        match = re.match(r'^(\t*)subgraph "?cluster_(.*?)"? \{$', line)
        if match:
            out[match.group(2)] = (i, len(match.group(1)))
    return out


@pytest.mark.parametrize("spec", ["googlenet.yaml", "resnet18.yaml", "resnet50.yaml"])
def test_every_instance_is_a_cluster_nested_as_the_instances_are(spec):
    graph, _ = lint_graph(SPECS / spec)
    clusters = cluster_lines(to_dot(graph))
    assert set(graph.instances) <= set(clusters)
    for inst in graph.instances:
        parts = inst.split(".")
        parents = [".".join(parts[:k]) for k in range(len(parts) - 1, 0, -1)]
        parent = next((p for p in parents if p in graph.instances), None)
        if parent is None:
            assert clusters[inst][1] == 1, inst  # at the top level
        else:
            assert clusters[inst][1] == clusters[parent][1] + 1, inst
            assert clusters[inst][0] > clusters[parent][0]


def test_cluster_labels_name_the_instance_and_its_block(googlenet_dot):
    assert "<B>inception4a (inception)</B>" in googlenet_dot
    assert "<B>branch2 (seq)</B>" in googlenet_dot  # inside inception4a: its local name
    assert "<B>aux1 (AuxHead)</B>" in googlenet_dot


def test_inception_branches_start_on_one_rank(googlenet_dot):
    firsts = "".join(f'\t\t"inception4a.branch{i}.0"\n' for i in (1, 2, 3, 4))
    assert "\t{\n\t\trank=same\n" + firsts + "\t}\n" in googlenet_dot


def test_depth_collapses_blocks(googlenet):
    top = to_dot(googlenet, depth=0)
    assert not cluster_lines(top).keys() - {"[legend]"}
    label = attrs_of(top, "inception3a [block]")
    for text in ("<B>inception3a</B>", "inception", "163,696 params", "256x28x28"):
        assert text in label
    assert "<B>aux1</B><BR/>AuxHead" in attrs_of(top, "aux1 [block]")
    # four edges into the branches become one edge into the block
    assert top.count(f"{q('pool2')} -> {q('inception3a [block]')} ") == 1
    assert 'label="256x28x28"' in edge(top, "inception3a [block]", "inception3b [block]")

    one = to_dot(googlenet, depth=1)
    clusters = cluster_lines(one)
    assert "inception3a" in clusters and "inception3a.branch1" not in clusters
    assert "12,352 params" in attrs_of(one, "inception3a.branch1 [block]")
    assert to_dot(googlenet, depth=2) == to_dot(googlenet)  # nothing is nested deeper


def test_edges_carry_the_shape_of_their_source(googlenet_dot):
    assert 'label="3x224x224"' in edge(googlenet_dot, "input", "conv1")
    # relu is drawn inside the conv it follows; the edge leaving it has its shape
    assert "conv 7x7/2 pad 3, 64 + relu" in attrs_of(googlenet_dot, "conv1")
    assert 'label="64x112x112"' in edge(googlenet_dot, "conv1", "pool1")
    # a value read in several places (a fork) has its shape in the node it leaves, once, and
    # no label on its edges: four labels side by side under pool3 collided (yarch issue 16)
    assert edge(googlenet_dot, "pool3", "inception4a.branch1.0") == '[tooltip="480x14x14"]'
    assert "label=" not in edge(googlenet_dot, "inception4a.concat", "aux1.pool")
    assert "→ 480x14x14" in attrs_of(googlenet_dot, "pool3")
    assert "→ 512x14x14" in attrs_of(googlenet_dot, "inception4a.concat")


def test_nodes_show_the_op_its_parameters_and_kind_colour(googlenet_dot):
    conv = attrs_of(googlenet_dot, "conv2")
    assert "conv 3x3 pad 1, 192 + relu" in conv and "110,784 params" in conv
    assert 'fillcolor="#77AADD"' in conv
    assert "params" not in attrs_of(googlenet_dot, "pool1")
    concat = attrs_of(googlenet_dot, "inception3a.concat")
    assert "256 = 64 + 128 + 32 + 32" in concat
    # the legend lists the kinds drawn, and only those; merges and reshapes by the ops drawn
    # (GoogLeNet concatenates and flattens, but adds and reshapes nothing)
    legend = attrs_of(googlenet_dot, "[legend]")
    assert "convolution" in legend and "activation" not in legend
    assert ">concat<" in legend and ">flatten<" in legend and "add" not in legend


def test_inputs_and_outputs_are_drawn_apart(googlenet_dot):
    assert "shape=oval" in attrs_of(googlenet_dot, "input")
    logits = attrs_of(googlenet_dot, "logits [output]")
    assert "shape=oval" in logits and "training only" not in logits
    aux = attrs_of(googlenet_dot, "aux1 [output]")
    assert "dashed" in aux and "training only" in aux
    assert "style=dashed" in edge(googlenet_dot, "aux1.fc2", "aux1 [output]")


def test_left_to_right_and_unfolded():
    graph, _ = lint_graph(SPECS / "resnet18.yaml")
    dot = to_dot(graph, rankdir="LR", fold_activations=False)
    assert "rankdir=LR" in dot
    assert attrs_of(dot, "layer1.0.relu")  # its own node
    with pytest.raises(ValueError):
        to_dot(graph, rankdir="BT")


# --- escaping ------------------------------------------------------------------------------------


def test_html_and_quoted_strings_escape_everything():
    assert _html('<b>"a" & b</b>') == "&lt;b&gt;&quot;a&quot; &amp; b&lt;/b&gt;"
    assert _html("bell\x07 ls\u2028") == "bell\\x07 ls\\u2028"
    # plain strings: made ready here, quoted by the graphviz package
    assert quote(_string('say "hi"')) == '"say \\"hi\\""'
    assert quote(_string("trailing\\")) == '"trailing\\\\"'
    assert quote(_string("a:b")) == '"a:b"'
    assert quote(_string("two\nlines\x1b")) == '"two\\nlines\\\\x1b"'
    assert quote(_string("<b>x</b>")) == '"<b>x</b>"'  # text, not an HTML-like label
    assert quote(_string("a & b")) == '"a &amp; b"'
    assert quote(_string("conv1")) == "conv1"  # an identifier needs no quotes
    assert len(quote(_string("x" * 50_000))) < MAX_LABEL


def nasty_graph() -> tuple[ArchGraph, list, str]:
    text = """
        name: nasty
        input: [3, 8, 8]
        blocks:
          Blk:
            layers:
              - conv: {name: c, out: 4, kernel: 3, padding: 1}
              - relu
        layers:
          - Blk: {name: blk}
          - conv: {name: long, out: 4, kernel: 1}
          - flatten
          - linear: {name: fc, out: 2}
    """
    result = lint_text(textwrap.dedent(text))
    assert result.graph is not None and not result.errors, result.diagnostics
    graph = result.graph
    # a spec's names are identifiers of at most 40 characters; a graph built by hand can hold
    # anything
    long_name = "n" * 20_000
    rename(graph, "long", long_name)
    graph.node(long_name).name = long_name
    rename(graph, "fc", 'f"c:1\\')
    graph.instances["blk"].block = NASTY
    diagnostics = [
        error("invalid-value", NASTY, node='f"c:1\\'),
        error("invalid-value", "x" * 20_000, node=long_name),
        error("invalid-value", NASTY, node="blk"),
    ]
    caption = NASTY + "\n" + "description " * 3_000
    return graph, diagnostics, caption


def test_labels_and_ids_are_escaped_and_bounded():
    graph, diagnostics, caption = nasty_graph()
    dot = to_dot(graph, diagnostics, caption=caption)
    assert max(len(line) for line in dot.splitlines()) < MAX_LABEL
    assert "\x07" not in dot and "\x1b" not in dot and "\u2028" not in dot
    # HTML labels get entities; quoted strings (tooltips) keep the text as it is
    html = re.sub(r'"(\\.|[^"\\])*"', '""', dot)
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "<b>" not in html
    assert "say &quot;hi&quot;" in dot
    assert "…" in dot  # the caption and the long message were cut
    label = attrs_of(dot, 'f"c:1\\')  # found by its escaped id
    assert 'color="#B00000"' in label
    assert dot.count('-> "f\\"c:1\\\\"') == 1
    assert to_dot(graph, diagnostics, caption=caption) == dot


@needs_dot
def test_escaped_dot_parses():
    graph, diagnostics, caption = nasty_graph()
    for depth in (None, 0):
        svg = dot_svg(to_dot(graph, diagnostics, depth=depth, caption=caption))
        # the colon stayed inside the node's name (a port would have cut it at `:`)
        assert "<title>f&quot;c:1\\\\</title>" in svg
        assert "&lt;b&gt;bold&lt;/b&gt;" in svg


@needs_dot
def test_every_spec_and_fixture_renders():
    files = sorted([*SPECS.rglob("*.yaml"), *(ROOT / "tests" / "fixtures").rglob("fail.yaml")])
    for path in files:
        result = lint_file(path)
        if result.graph is not None:
            dot_svg(to_dot(result.graph, result.diagnostics, depth=1))


# --- errors --------------------------------------------------------------------------------------


def test_errors_colour_their_node_red_with_the_message():
    graph, diagnostics = lint_graph(SPECS / "posts" / "inception_keras.yaml")
    dot = to_dot(graph, diagnostics)
    concat = attrs_of(dot, "inception5a.concat")
    assert 'color="#B00000"' in concat and "inception5a gives 736x7x7" in concat
    # `expect:` is trusted downstream (832), the branches still add up to 736
    assert "736 = 256 + 320 + 32 + 128" in concat
    assert 'color="#B00000"' not in attrs_of(dot, "inception4e.concat")
    assert "3 lint errors, 3 shown in red" in dot
    # the map that was never flattened has no shape after it: edges say `?`
    assert 'label="?"' in edge(dot, "out1.dropout_1", "out1.linear_2")


def test_schema_errors_mark_the_layer_they_broke():
    graph, diagnostics = lint_graph(SPECS / "posts" / "googlenet_pytorch.yaml")
    broken = attrs_of(to_dot(graph, diagnostics), "conv_2")
    assert "conv (invalid)" in broken and "stride must be &gt;= 1, got 0" in broken
    assert 'color="#B00000"' in broken


def test_errors_about_blocks_colour_the_cluster_or_the_collapsed_block(googlenet):
    diagnostics = [error("channel-mismatch", "`inception4a` is wrong", node="inception4a")]
    full = to_dot(googlenet, diagnostics)
    start = full.index("subgraph cluster_inception4a {")
    cluster = full[start : full.index("\n", full.index("graph [", start))]
    assert 'color="#B00000"' in cluster and "inception4a is wrong" in cluster
    collapsed = attrs_of(to_dot(googlenet, diagnostics, depth=0), "inception4a [block]")
    assert 'color="#B00000"' in collapsed
    # an error inside a collapsed block colours the block
    inner = [error("shape-mismatch", "bad", node="inception4b.branch2.2")]
    assert 'color="#B00000"' in attrs_of(to_dot(googlenet, inner, depth=0), "inception4b [block]")
    # warnings do not
    warned = to_dot(googlenet, [warning("stride-remainder", "bad", node="conv1")])
    assert 'color="#B00000"' not in warned


# --- rendering -----------------------------------------------------------------------------------


def fake_dot(folder: Path, script: str) -> None:
    exe = folder / "dot"
    exe.write_text("#!/bin/sh\n" + script + "\n")
    exe.chmod(0o755)


def test_render_writes_dot_without_graphviz(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    target = tmp_path / "g.dot"
    assert render("digraph {}\n", target, "dot") is None
    assert target.read_text() == "digraph {}\n"
    message = render("digraph {}\n", tmp_path / "g.svg", "svg")
    assert message is not None and INSTALL_HINT in message and "g.dot" in message
    assert not (tmp_path / "g.svg").exists()


def test_render_runs_the_command_the_package_builds(tmp_path, monkeypatch):
    # the PNG goes through cairo and gd's palette first, and plain `-Tpng` when that fails
    fake_dot(tmp_path, f'echo "$@" >> {tmp_path}/args; cat >/dev/null; exit 1')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert render("digraph {}\n", tmp_path / "g.png", "png") is not None
    assert render("digraph {}\n", tmp_path / "g.svg", "svg") is not None
    lines = (tmp_path / "args").read_text().splitlines()
    assert lines == ["-Kdot -Tpng:cairo:gd", "-Kdot -Tpng", "-Kdot -Tsvg"]


def test_render_gives_up_after_the_timeout(tmp_path, monkeypatch):
    fake_dot(tmp_path, "exec sleep 10")  # exec: no grandchild holds the pipes open
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    message = render("digraph {}\n", tmp_path / "g.png", "png", timeout=0.2)
    assert message is not None and "did not finish within 0.2 seconds" in message
    assert (tmp_path / "g.dot").read_text() == "digraph {}\n"
    assert not (tmp_path / "g.png").exists()


def residual_spec(blocks: int) -> str:
    """`blocks` residual blocks of three layers each, every one a cluster of its own."""
    return (
        textwrap.dedent(
            """
        name: big
        input: [4, 8, 8]
        blocks:
          Res:
            layers:
              - conv: {name: a, out: 4, kernel: 1}
              - conv: {name: b, out: 4, kernel: 1, from: input}
              - add: {from: [a, b]}
        layers:
        """
        )
        + "  - Res\n" * blocks
    )


def test_count_nodes_counts_the_node_statements():
    text = "input: [3, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 3}\n  - relu\n  - flatten\n"
    dot = to_dot(lint_text(text).graph)
    # input, conv (with its relu folded in), flatten, the output and the legend
    assert count_nodes(dot) == 5
    assert count_nodes('digraph {\n  "a\\\\" [label="x"];\n  "a" -> "b" [label="y"];\n}') == 1
    # as the graphviz package writes them: bare ids where it can, an attribute statement first
    assert count_nodes('digraph g {\n\tgraph [x=1]\n\tfc [label=2]\n\tfc -> "a b" [y=3]\n}') == 1


def test_render_refuses_a_graph_too_big_to_lay_out(tmp_path, monkeypatch):
    fake_dot(tmp_path, f"touch {tmp_path}/ran; cat >/dev/null; echo '<svg/>'")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    source = to_dot(lint_text(residual_spec(10)).graph)
    nodes = count_nodes(source)
    message = render(source, tmp_path / "g.svg", "svg", max_nodes=nodes - 1)
    assert message is not None
    assert f"the diagram has {nodes} nodes" in message and f"at most {nodes - 1}" in message
    assert "--depth 0" in message and "g.dot instead" in message
    assert (tmp_path / "g.dot").read_text() == source
    assert not (tmp_path / "g.svg").exists() and not (tmp_path / "ran").exists()
    assert render(source, tmp_path / "g.svg", "svg", max_nodes=nodes) is None  # at the limit
    assert (tmp_path / "ran").exists()


def test_the_default_node_limit(tmp_path, monkeypatch):
    fake_dot(tmp_path, f"touch {tmp_path}/ran; cat >/dev/null; echo '<svg/>'")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert MAX_NODES == 5_000  # see draw.py for the timings it comes from
    result = lint_text(residual_spec(MAX_NODES // 3 + 1))
    source = to_dot(result.graph, result.diagnostics)
    assert count_nodes(source) > MAX_NODES
    message = render(source, tmp_path / "big.svg", "svg")
    assert message is not None and f"{count_nodes(source):,} nodes" in message
    assert not (tmp_path / "ran").exists()
    # collapsed to one node per block, it is drawn
    collapsed = to_dot(result.graph, result.diagnostics, depth=0)
    assert count_nodes(collapsed) <= MAX_NODES
    assert render(collapsed, tmp_path / "big.svg", "svg") is None


@needs_dot
def test_a_graph_that_takes_too_long_falls_back_to_the_dot_source(tmp_path, monkeypatch):
    source = to_dot(lint_text(residual_spec(300)).graph)  # about a second of layout
    monkeypatch.setattr(draw, "DOT_TIMEOUT", 0.05)
    message = render(source, tmp_path / "big.svg", "svg")
    assert message is not None and "did not finish within 0.05 seconds" in message
    assert "--depth 0" in message
    assert (tmp_path / "big.dot").read_text() == source
    assert not (tmp_path / "big.svg").exists()


def test_a_failed_render_leaves_no_partial_file(tmp_path, monkeypatch):
    fake_dot(tmp_path, "cat >/dev/null; printf '<svg partial'; echo 'Error: boom' >&2; exit 1")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    target = tmp_path / "old.svg"
    target.write_text("the previous diagram")
    message = render("digraph {}\n", target, "svg")
    assert message is not None and "Error: boom" in message
    assert target.read_text() == "the previous diagram"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dot", "old.dot", "old.svg"]


def test_atomic_write_cleans_up_after_a_failure(tmp_path, monkeypatch):
    target = tmp_path / "out.svg"
    target.write_bytes(b"old")

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.svg"]


# --- the command ---------------------------------------------------------------------------------


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, ["draw", *args], catch_exceptions=False)

    return invoke


def test_draw_writes_spec_name_dot_format_here(run, tmp_path):
    result = run(str(SPECS / "googlenet.yaml"), "--format", "dot", "--set", "num_classes=10")
    assert result.exit_code == 0, result.output
    written = (tmp_path / "googlenet.dot").read_text()
    assert "label=10" in edge(written, "classifier", "logits [output]")


@needs_dot
def test_draw_renders_svg(run, tmp_path):
    result = run(str(SPECS / "resnet18.yaml"), "-o", "r.svg", "--depth", "1", "--rankdir", "LR")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r.svg").read_text().lstrip().startswith("<?xml")
    assert not list(tmp_path.glob(".*.tmp"))


def test_draw_with_errors_still_draws_and_exits_1(run, tmp_path):
    spec = SPECS / "posts" / "inception_keras.yaml"
    result = run(str(spec), "--format", "dot", "-o", "k.dot")
    assert result.exit_code == 1
    assert "error[shape-mismatch]" in result.stderr
    assert 'color="#B00000"' in (tmp_path / "k.dot").read_text()


def test_draw_without_graphviz(run, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = run(str(SPECS / "googlenet.yaml"), "-o", "g.svg")
    assert result.exit_code == 2
    assert "apt-get install graphviz" in result.stderr
    assert "brew install graphviz" in result.stderr
    assert (tmp_path / "g.dot").read_text().startswith("digraph googlenet {")
    assert not (tmp_path / "g.svg").exists()
    # the DOT source needs no Graphviz
    assert run(str(SPECS / "googlenet.yaml"), "--format", "dot").exit_code == 0


@needs_dot
def test_draw_timeout_and_node_limit(run, tmp_path):
    (tmp_path / "big.yaml").write_text(residual_spec(300))
    result = run("big.yaml", "-o", "big.svg", "--timeout", "0.05")
    assert result.exit_code == 2
    assert "did not finish within 0.05 seconds" in result.stderr
    assert "wrote the DOT source to big.dot instead" in result.stderr
    assert (tmp_path / "big.dot").exists() and not (tmp_path / "big.svg").exists()
    (tmp_path / "big.dot").unlink()
    result = run("big.yaml", "-o", "big.svg", "--max-nodes", "100")
    assert result.exit_code == 2
    assert "nodes, more than `dot` lays out in reasonable time (at most 100" in result.stderr
    assert (tmp_path / "big.dot").exists() and not (tmp_path / "big.svg").exists()
    result = run("big.yaml", "-o", "big.svg", "--max-nodes", "100", "--depth", "0")
    assert result.exit_code == 2  # 300 blocks are still 300 nodes
    result = run("big.yaml", "-o", "big.svg", "--depth", "0")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "big.svg").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.yaml"], "unreadable-file"),
        ([str(SPECS / "googlenet.yaml"), "--timeout", "0"], "Invalid value for '--timeout'"),
        ([str(SPECS / "googlenet.yaml"), "--max-nodes", "0"], "Invalid value for '--max-nodes'"),
        ([str(SPECS / "googlenet.yaml"), "--format", "gif"], "Invalid value for '--format'"),
        ([str(SPECS / "googlenet.yaml"), "--rankdir", "BT"], "Invalid value for '--rankdir'"),
        ([str(SPECS / "googlenet.yaml"), "--depth", "-1"], "Invalid value for '--depth'"),
        ([str(SPECS / "googlenet.yaml"), "--set", "oops"], "not of the form key=value"),
        ([str(SPECS / "googlenet.yaml"), "--format", "dot", "-o", "no/such/dir/g.dot"], "cannot"),
    ],
)
def test_draw_usage_errors_exit_2_without_traceback(run, args, message):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
