"""`yarch diff`: node matching by resolved id, field and shape changes, parameter and MAC
deltas (checked against figures computed here by hand), block instances, JSON, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from compiler import lint_file
from compiler.cli import cli
from compiler.diff import GraphDiff, as_dict, diff_graphs, render_json, render_text

from .conftest import ROOT, SPECS

GOOGLENET = SPECS / "googlenet.yaml"

# The googlenet edit of the brief: 5x5 branches of 5a and 5b narrowed to 32 and 48 filters,
# declared sizes and `expect:` shapes following, and ten classes.
GOOGLENET_EDITS = [
    (
        "{name: inception5a, in: 832, channels: [256, [160, 320], [32, 128], 128], "
        "expect: [832, 7, 7]}",
        "{name: inception5a, in: 832, channels: [256, [160, 320], [32, 32], 128], "
        "expect: [736, 7, 7]}",
    ),
    (
        "{name: inception5b, in: 832, channels: [384, [192, 384], [48, 128], 128], "
        "expect: [1024, 7, 7]}",
        "{name: inception5b, in: 736, channels: [384, [192, 384], [48, 48], 128], "
        "expect: [944, 7, 7]}",
    ),
    ("expect: [1024, 1, 1]", "expect: [944, 1, 1]"),  # pool5
    (
        "{name: classifier, in: 1024, out: $num_classes}",
        "{name: classifier, in: 944, out: $num_classes}",
    ),
    ("num_classes: 1000", "num_classes: 10"),
]

TINY = """\
name: tiny
input: [3, 32, 32]
layers:
  - conv: {name: c1, out: 8, kernel: 3, padding: 1}
  - relu
  - conv: {name: c2, out: 16, kernel: 3, padding: 1}
  - relu
  - adaptive_avgpool: {name: gap, output: 1}
  - flatten
  - linear: {name: fc, out: 10}
"""


def conv_params(cin: int, cout: int, k: int) -> int:
    return cout * cin * k * k + cout


def conv_macs(cin: int, cout: int, k: int, h: int, w: int) -> int:
    return cout * cin * k * k * h * w


def linear_params(fin: int, fout: int) -> int:
    return fout * fin + fout


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def diff_files(a: Path, b: Path) -> GraphDiff:
    ra, rb = lint_file(a), lint_file(b)
    assert ra.errors == 0 and rb.errors == 0, ra.diagnostics + rb.diagnostics
    assert ra.graph is not None and rb.graph is not None
    return diff_graphs(ra.graph, rb.graph, str(a), str(b))


@pytest.fixture(scope="module")
def edited_googlenet(tmp_path_factory) -> Path:
    text = GOOGLENET.read_text(encoding="utf-8")
    for old, new in GOOGLENET_EDITS:
        assert text.count(old) == 1, f"specs/googlenet.yaml no longer has `{old}`"
        text = text.replace(old, new)
    return write(tmp_path_factory.mktemp("diff"), "googlenet.yaml", text)


@pytest.fixture(scope="module")
def googlenet_diff(edited_googlenet) -> GraphDiff:
    return diff_files(GOOGLENET, edited_googlenet)


@pytest.fixture
def run(monkeypatch):
    monkeypatch.chdir(ROOT)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)

    return invoke


# --- (1) identical specs ----------------------------------------------------------------------


def test_identical_specs_have_no_differences(tmp_path, run):
    copy = write(tmp_path, "copy.yaml", GOOGLENET.read_text(encoding="utf-8"))
    diff = diff_files(GOOGLENET, copy)
    assert diff.identical and not diff.nodes and not diff.instances and not diff.outputs
    payload = as_dict(diff)
    for key in ("added", "removed", "changed", "shape_changes", "instances"):
        assert payload[key] == []
    assert payload["outputs"] == {}
    assert payload["totals"]["params"] == [13_378_280, 13_378_280, 0]
    assert payload["totals"]["macs"] == [1_582_671_872, 1_582_671_872, 0]
    result = run("diff", "specs/googlenet.yaml", copy)
    assert result.exit_code == 0
    assert "No differences after resolution." in result.stdout
    assert result.stderr == ""


def test_the_same_set_applies_to_both(run):
    result = run("diff", "specs/googlenet.yaml", "specs/googlenet.yaml", "--set", "num_classes=10")
    assert result.exit_code == 0
    assert "No differences" in result.stdout
    assert "Total params: 10," in result.stdout  # both resolved with ten classes


# --- (2) googlenet: 5a and 5b narrowed, ten classes ---------------------------------------------


def test_googlenet_field_changes_are_exactly_the_edits(googlenet_diff):
    changed = {r.name: r.fields for r in googlenet_diff.of("changed")}
    assert changed == {
        "inception5a.branch3.2": {"out": (128, 32)},
        "inception5b.branch3.2": {"out": (128, 48)},
        "classifier": {"out": (1000, 10), "in": (1024, 944)},
        "aux1.fc2": {"out": (1000, 10)},
        "aux2.fc2": {"out": (1000, 10)},
    }
    assert not any(r.rewired for r in googlenet_diff.nodes)
    assert googlenet_diff.of("added") == [] and googlenet_diff.of("removed") == []


def test_googlenet_shape_consequences(googlenet_diff):
    rows = {r.name: r for r in googlenet_diff.of("shape")}
    assert list(rows) == [
        "inception5a.branch3.3",
        "inception5a.concat",
        "inception5b.branch1.0",
        "inception5b.branch2.0",
        "inception5b.branch3.0",
        "inception5b.branch3.3",
        "inception5b.branch4.0",
        "inception5b.branch4.1",
        "inception5b.concat",
        "pool5",
        "flatten_1",
        "dropout_1",
    ]
    assert all(r.fields == {} for r in rows.values())

    def out(name):
        return rows[name].pair("shape")

    assert out("inception5a.branch3.3") == ((128, 7, 7), (32, 7, 7))
    assert out("inception5a.concat") == ((832, 7, 7), (736, 7, 7))
    assert out("inception5b.concat") == ((1024, 7, 7), (944, 7, 7))
    assert out("inception5b.branch3.3") == ((128, 7, 7), (48, 7, 7))
    assert out("pool5") == ((1024, 1, 1), (944, 1, 1))
    assert out("flatten_1") == ((1024,), (944,))
    assert out("dropout_1") == ((1024,), (944,))
    for branch in ("branch1.0", "branch2.0", "branch3.0", "branch4.0", "branch4.1"):
        assert rows[f"inception5b.{branch}"].pair("input_shapes") == (
            ((832, 7, 7),),
            ((736, 7, 7),),
        )
    assert out("inception5b.branch1.0") == ((384, 7, 7), (384, 7, 7))  # only its input changed


def test_googlenet_params_and_macs_per_node(googlenet_diff):
    rows = {r.name: r for r in googlenet_diff.nodes}
    hw = (7, 7)
    expected = {
        "inception5a.branch3.2": (
            (conv_params(32, 128, 5), conv_params(32, 32, 5)),
            (conv_macs(32, 128, 5, *hw), conv_macs(32, 32, 5, *hw)),
        ),
        "inception5b.branch3.2": (
            (conv_params(48, 128, 5), conv_params(48, 48, 5)),
            (conv_macs(48, 128, 5, *hw), conv_macs(48, 48, 5, *hw)),
        ),
        "classifier": (
            (linear_params(1024, 1000), linear_params(944, 10)),
            (1024 * 1000, 944 * 10),
        ),
        "aux1.fc2": (
            (linear_params(1024, 1000), linear_params(1024, 10)),
            (1024 * 1000, 1024 * 10),
        ),
        "aux2.fc2": (
            (linear_params(1024, 1000), linear_params(1024, 10)),
            (1024 * 1000, 1024 * 10),
        ),
    }
    for branch, cout in (
        ("branch1.0", 384),
        ("branch2.0", 192),
        ("branch3.0", 48),
        ("branch4.1", 128),
    ):
        expected[f"inception5b.{branch}"] = (
            (conv_params(832, cout, 1), conv_params(736, cout, 1)),
            (conv_macs(832, cout, 1, *hw), conv_macs(736, cout, 1, *hw)),
        )
    for name, (params, macs) in expected.items():
        assert rows[name].pair("params") == params, name
        assert rows[name].pair("macs") == macs, name
    # every other differing node (relu, concat, pools, flatten, dropout) has no weights
    for name, row in rows.items():
        if name not in expected:
            assert row.pair("params") == (0, 0) and row.pair("macs") == (0, 0), name
    assert rows["inception5a.branch3.2"].pair("params") == (102_528, 25_632)
    assert rows["classifier"].pair("params") == (1_025_000, 9_450)

    # totals: the sum of the per-node deltas; eval MACs leave the auxiliary heads out
    d_params = sum(new - old for old, new in (p for p, _ in expected.values()))
    d_macs = sum(
        new - old for name, (_, (old, new)) in expected.items() if not name.startswith("aux")
    )
    assert googlenet_diff.params == (13_378_280, 13_378_280 + d_params)
    assert googlenet_diff.macs == (1_582_671_872, 1_582_671_872 + d_macs)
    assert as_dict(googlenet_diff)["totals"] == {
        "params": [13_378_280, 13_378_280 + d_params, d_params],
        "macs": [1_582_671_872, 1_582_671_872 + d_macs, d_macs],
    }
    assert d_params == -3_290_218 and d_macs == -13_019_168


def test_googlenet_instances_and_outputs(googlenet_diff):
    instances = {i.name: i for i in googlenet_diff.instances}
    assert list(instances) == [
        "inception5a",
        "inception5a.branch3",
        "inception5b",
        "inception5b.branch1",
        "inception5b.branch2",
        "inception5b.branch3",
        "inception5b.branch4",
        "aux1",
        "aux2",
    ]
    a5 = instances["inception5a"]
    assert (a5.status, a5.block, a5.depth) == ("changed", "inception", 0)
    assert a5.fields == {"ch5x5": ([32, 128], [32, 32])}
    assert a5.shape == ((832, 7, 7), (736, 7, 7))
    delta = conv_params(32, 32, 5) - conv_params(32, 128, 5)
    assert a5.params[1] - a5.params[0] == delta
    b5 = instances["inception5b"]
    assert b5.fields == {"in": (832, 736), "ch5x5": ([48, 128], [48, 48])}
    assert b5.input_shape == ((832, 7, 7), (736, 7, 7))
    b5_nodes = [r for r in googlenet_diff.nodes if r.name.startswith("inception5b.")]
    assert b5.params[1] - b5.params[0] == sum(r.b.params - r.a.params for r in b5_nodes)
    assert b5.macs[1] - b5.macs[0] == sum(r.b.macs - r.a.macs for r in b5_nodes)
    assert instances["inception5b.branch1"].status == "shape"
    assert instances["inception5b.branch1"].depth == 1

    outputs = {o.name: o for o in googlenet_diff.outputs}
    assert {n: o.shape for n, o in outputs.items()} == {
        "logits": ((1000,), (10,)),
        "aux1": ((1000,), (10,)),
        "aux2": ((1000,), (10,)),
    }
    assert outputs["aux1"].train_only == (True, True)
    assert googlenet_diff.input_shape == ((3, 224, 224), (3, 224, 224))


def test_googlenet_text(googlenet_diff, edited_googlenet, run):
    text = render_text(googlenet_diff)
    lines = text.splitlines()
    assert lines[0] == f"--- {GOOGLENET}"
    # the instance row comes before its members, members indented under it
    a5 = lines.index(
        "~ inception5a  [inception]  output 832x7x7 -> 736x7x7  "
        "params 1,043,456 -> 966,560 (-76,896)  MACs 51,079,168 -> 47,315,968 (-3,763,200)"
    )
    assert lines[a5 + 1] == "    ch5x5: [32, 128] -> [32, 32]"
    assert lines[a5 + 2] == "  ~ inception5a.branch3.2  conv 5x5 pad 2, 32"
    assert lines[a5 + 3] == "      out: 128 -> 32"
    assert "      params: 102,528 -> 25,632 (-76,896)" in lines
    assert "  > inception5a.concat  concat  output 832x7x7 -> 736x7x7" in lines
    assert (
        "  > inception5b.branch1.0  conv 1x1, 384  input 832x7x7 -> 736x7x7  "
        "params 319,872 -> 283,008 (-36,864)  MACs 15,654,912 -> 13,848,576 (-1,806,336)"
    ) in lines
    assert "    in: 832 -> 736" in lines
    assert "> pool5  avgpool 7x7  output 1024x1x1 -> 944x1x1" in lines
    assert "    in: 1024 -> 944" in lines  # the classifier's declared features
    assert lines.index("~ classifier  linear 10") < lines.index(
        "~ aux1  [AuxHead]  output 1000 -> 10  "
        "params 3,188,840 -> 2,174,090 (-1,014,750)  MACs 4,169,728 -> 3,155,968 (-1,013,760)"
    )
    assert "  aux1: 1000 -> 10 (training only)" in lines
    assert "Total params: 13,378,280 -> 10,088,062 (-3,290,218)" in lines
    assert "Total MACs (eval): 1,582,671,872 -> 1,569,652,704 (-13,019,168)" in lines
    assert lines[-1] == "5 nodes changed, 0 added, 0 removed, 12 shape changes."
    # nested seq branches without changes of their own are not rows of the text
    assert not any("[seq]" in line for line in lines)

    result = run("diff", "specs/googlenet.yaml", edited_googlenet)
    assert result.exit_code == 0, result.output
    assert result.stdout.rstrip("\n") == text.replace(
        f"--- {GOOGLENET}", "--- specs/googlenet.yaml"
    )


def test_text_caps_shape_only_lines(googlenet_diff):
    text = render_text(googlenet_diff, limit=3)
    assert text.count("\n  > ") + text.count("\n> ") == 3
    assert "... and 9 more shape changes (--format json lists them all)" in text
    assert "~ classifier  linear 10" in text  # changes themselves are never cut


# --- (3) added and removed nodes ---------------------------------------------------------------


def test_added_layer(tmp_path, run):
    a = write(tmp_path, "a.yaml", TINY)
    b = write(
        tmp_path,
        "b.yaml",
        TINY.replace(
            "  - conv: {name: c2,",
            "  - conv: {name: extra, out: 8, kernel: 3, padding: 1}\n  - conv: {name: c2,",
        ),
    )
    diff = diff_files(a, b)
    (added,) = diff.of("added")
    assert added.name == "extra" and added.a is None
    assert added.b.inputs == ("relu_1",)
    assert added.b.shape == (8, 32, 32)
    assert (added.b.params, added.b.macs) == (conv_params(8, 8, 3), conv_macs(8, 8, 3, 32, 32))
    (c2,) = diff.of("changed")  # c2 now reads from the new layer: rewired, same fields
    assert c2.name == "c2" and c2.fields == {} and c2.rewired
    assert (c2.a.inputs, c2.b.inputs) == (("relu_1",), ("extra",))
    assert diff.of("removed") == [] and diff.of("shape") == []
    assert diff.params[1] - diff.params[0] == conv_params(8, 8, 3)
    assert diff.macs[1] - diff.macs[0] == conv_macs(8, 8, 3, 32, 32)
    payload = as_dict(diff)
    assert payload["added"] == [
        {
            "name": "extra",
            "op": "conv 3x3 pad 1, 8",
            "inputs": ["relu_1"],
            "input_shapes": [[8, 32, 32]],
            "shape": [8, 32, 32],
            "params": 584,
            "macs": 589_824,
        }
    ]
    text = run("diff", a, b).stdout
    assert (
        "+ extra  conv 3x3 pad 1, 8  from relu_1  output 8x32x32  params 584  MACs 589,824" in text
    )
    assert "    inputs: relu_1 -> extra" in text
    before = conv_params(3, 8, 3) + conv_params(8, 16, 3) + linear_params(16, 10)
    assert before == 1_562
    assert f"Total params: {before:,} -> {before + 584:,} (+584)" in text


def test_removed_layer(tmp_path):
    a = write(tmp_path, "a.yaml", TINY)
    b = write(
        tmp_path,
        "b.yaml",
        TINY.replace("  - conv: {name: c2, out: 16, kernel: 3, padding: 1}\n  - relu\n", ""),
    )
    diff = diff_files(a, b)
    assert [r.name for r in diff.of("removed")] == ["c2", "relu_2"]
    assert [r.name for r in diff.nodes] == ["c2", "relu_2", "gap", "flatten_1", "fc"]
    removed = {r.name: r for r in diff.of("removed")}
    assert removed["c2"].b is None
    assert removed["c2"].a.params == conv_params(8, 16, 3)
    (gap,) = diff.of("changed")  # its input is now relu_1, 8 channels
    assert gap.name == "gap" and gap.fields == {}
    assert (gap.a.inputs, gap.b.inputs) == (("relu_2",), ("relu_1",))
    assert gap.pair("shape") == ((16, 1, 1), (8, 1, 1))
    shapes = {r.name: r for r in diff.of("shape")}
    assert list(shapes) == ["flatten_1", "fc"]
    assert shapes["fc"].pair("params") == (linear_params(16, 10), linear_params(8, 10))
    assert shapes["fc"].pair("macs") == (160, 80)
    assert diff.params[0] - diff.params[1] == conv_params(8, 16, 3) + 16 * 10 - 8 * 10
    assert as_dict(diff)["removed"][0]["name"] == "c2"


def test_added_block_instance_groups_its_members(tmp_path):
    spec = """\
name: blocks
input: [3, 16, 16]
blocks:
  Unit:
    params: {width: ~}
    layers:
      - conv: {name: conv, out: $width, kernel: 3, padding: 1}
      - relu
layers:
  - Unit: {name: u1, width: 8}
  - Unit: {name: u2, width: 8}
"""
    a = write(tmp_path, "a.yaml", spec)
    b = write(tmp_path, "b.yaml", spec + "  - Unit: {name: u3, width: 4}\n")
    c = write(tmp_path, "c.yaml", spec.replace("{name: u2, width: 8}", "{name: u2, width: 16}"))
    diff = diff_files(a, b)
    (u3,) = diff.instances
    assert (u3.name, u3.status, u3.block) == ("u3", "added", "Unit")
    assert u3.params == (0, conv_params(8, 4, 3))
    text = render_text(diff).splitlines()
    assert text[3].startswith("+ u3  [Unit]  params 292")
    assert text[4].startswith("  + u3.conv  conv 3x3 pad 1, 4  from u2.relu_1")

    diff = diff_files(a, c)
    (u2,) = diff.instances
    assert u2.fields == {"width": (8, 16)}
    assert {r.name: r.fields for r in diff.of("changed")} == {"u2.conv": {"out": (8, 16)}}
    assert "    width: 8 -> 16" in render_text(diff)


# --- (4) rewiring ------------------------------------------------------------------------------


def test_rewired_from(tmp_path):
    spec = """\
name: wiring
input: [3, 16, 16]
layers:
  - conv: {name: a, out: 8, kernel: 3, padding: 1}
  - conv: {name: b, out: 8, kernel: 3, padding: 1}
  - conv: {name: c, out: 8, kernel: 1, from: a}
  - add: [b, c]
"""
    a = write(tmp_path, "a.yaml", spec)
    b = write(tmp_path, "b.yaml", spec.replace("from: a}", "from: b}"))
    diff = diff_files(a, b)
    (c,) = diff.nodes
    assert (c.name, c.status, c.fields) == ("c", "changed", {})  # `from` itself is not a field
    assert (c.a.inputs, c.b.inputs) == (("a",), ("b",))
    assert c.pair("params") == (conv_params(8, 8, 1),) * 2
    row = as_dict(diff)["changed"][0]
    assert row["inputs"] == [["a"], ["b"]]
    assert row["shape"] is None and row["input_shapes"] is None and row["fields"] == {}
    assert diff.params[0] == diff.params[1]
    text = render_text(diff)
    assert "~ c  conv 1x1, 8\n    inputs: a -> b\n    params: 72 (unchanged)" in text
    total = conv_params(3, 8, 3) + conv_params(8, 8, 3) + conv_params(8, 8, 1)
    assert f"Total params: {total:,} (unchanged)" in text


def test_op_change(tmp_path):
    a = write(tmp_path, "a.yaml", TINY)
    b = write(
        tmp_path,
        "b.yaml",
        TINY.replace(
            "adaptive_avgpool: {name: gap, output: 1}", "adaptive_maxpool: {name: gap, output: 1}"
        ),
    )
    (gap,) = diff_files(a, b).nodes
    assert gap.status == "changed"
    assert gap.fields == {"op": ("adaptive_avgpool", "adaptive_maxpool")}


# --- (5) JSON ----------------------------------------------------------------------------------


def test_json_contract_and_determinism(googlenet_diff, edited_googlenet, run):
    first = run("diff", "--format", "json", "specs/googlenet.yaml", edited_googlenet)
    second = run("diff", "specs/googlenet.yaml", edited_googlenet, "--format", "json")
    assert first.exit_code == 0 and first.stdout == second.stdout
    payload = json.loads(first.stdout)
    assert first.stdout.rstrip("\n") == json.dumps(payload, indent=2, sort_keys=True)
    assert set(payload) == {
        "a",
        "b",
        "input_shape",
        "added",
        "removed",
        "changed",
        "shape_changes",
        "instances",
        "outputs",
        "totals",
    }
    assert payload["a"] == "specs/googlenet.yaml" and payload["b"] == str(edited_googlenet)
    assert payload["input_shape"] == {"a": [3, 224, 224], "b": [3, 224, 224]}
    row_keys = {"name", "op", "fields", "inputs", "input_shapes", "shape", "params", "macs"}
    assert all(set(r) == row_keys for r in payload["changed"] + payload["shape_changes"])
    classifier = next(r for r in payload["changed"] if r["name"] == "classifier")
    assert classifier == {
        "name": "classifier",
        "op": "linear 10",
        "fields": {"in": [1024, 944], "out": [1000, 10]},
        "inputs": None,
        "input_shapes": [[[1024]], [[944]]],
        "shape": [[1000], [10]],
        "params": [1_025_000, 9_450],
        "macs": [1_024_000, 9_440],
    }
    pool5 = next(r for r in payload["shape_changes"] if r["name"] == "pool5")
    assert pool5["fields"] == {} and pool5["shape"] == [[1024, 1, 1], [944, 1, 1]]
    assert [r["name"] for r in payload["changed"]] == [
        "inception5a.branch3.2",
        "inception5b.branch3.2",
        "classifier",
        "aux1.fc2",
        "aux2.fc2",
    ]
    inst = payload["instances"][0]
    assert set(inst) == {
        "name",
        "block",
        "status",
        "depth",
        "fields",
        "input_shape",
        "shape",
        "params",
        "macs",
    }
    assert inst["fields"] == {"ch5x5": [[32, 128], [32, 32]]}
    assert payload["outputs"]["logits"] == {
        "from": ["classifier", "classifier"],
        "shape": [[1000], [10]],
        "train_only": [False, False],
    }
    assert payload["totals"]["params"] == [13_378_280, 10_088_062, -3_290_218]
    # recomputed from freshly resolved graphs: the same bytes
    again = diff_files(GOOGLENET, edited_googlenet)
    assert render_json(again) == render_json(googlenet_diff)
    assert render_text(again) == render_text(googlenet_diff)


def test_input_shape_change(tmp_path):
    a = write(tmp_path, "a.yaml", TINY)
    b = write(tmp_path, "b.yaml", TINY.replace("input: [3, 32, 32]", "input: [3, 64, 64]"))
    diff = diff_files(a, b)
    assert as_dict(diff)["input_shape"] == {"a": [3, 32, 32], "b": [3, 64, 64]}
    assert render_text(diff).splitlines()[2] == "input: 3x32x32 -> 3x64x64"
    c1 = next(r for r in diff.nodes if r.name == "c1")
    assert c1.status == "shape" and c1.pair("macs") == (
        conv_macs(3, 8, 3, 32, 32),
        conv_macs(3, 8, 3, 64, 64),
    )
    assert not diff.outputs  # fc still gives 10


# --- (6) exit codes ----------------------------------------------------------------------------


def test_a_spec_with_errors_exits_1_with_its_diagnostics(tmp_path, run):
    good = write(tmp_path, "good.yaml", TINY)
    bad = write(
        tmp_path, "bad.yaml", TINY.replace("out: 16, kernel: 3", "out: 16, kernel: 3, stride: 0")
    )
    for args in ((good, bad), (bad, good)):
        result = run("diff", *args)
        assert result.exit_code == 1
        assert result.stdout == ""
        assert "error[invalid-value]" in result.stderr
        assert f"--> {bad}:" in result.stderr


def test_unreadable_spec_exits_2(tmp_path, run):
    good = write(tmp_path, "good.yaml", TINY)
    result = run("diff", good, tmp_path / "missing.yaml")
    assert result.exit_code == 2
    assert "error[unreadable-file]" in result.stderr
    assert result.stdout == ""


def test_set_of_an_unknown_parameter_is_an_error(tmp_path, run):
    good = write(tmp_path, "good.yaml", TINY)
    result = run("diff", good, good, "--set", "width=3")
    assert result.exit_code == 1
    assert "error[undefined-parameter]" in result.stderr


def test_diff_never_imports_torch():
    probe = (
        "import sys\n"
        "sys.modules['torch'] = None\n"
        "from compiler.cli import cli\n"
        "try:\n"
        "    cli(['diff', 'specs/googlenet.yaml', 'specs/googlenet.yaml', '--format', 'json'])\n"
        "except SystemExit as exc:\n"
        "    print('exit', exc.code)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert "Traceback" not in out.stderr, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "exit 0"
