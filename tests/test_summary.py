"""`yarch summary`: the JSON contract, the reference totals, seed 002's table, the CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from compiler import lint_file
from compiler.summary import Row, Summary, fmt_bytes, render_markdown, render_text, summarize

from .conftest import ROOT, SPECS

SEED_TABLE = Path(__file__).parent / "fixtures" / "seed002_summary.txt"

# paddle.summary's layer types -> yarch op names
PADDLE_OPS = {
    "Conv2D": "conv",
    "ReLU": "relu",
    "MaxPool2D": "maxpool",
    "AvgPool2D": "avgpool",
    "Flatten": "flatten",
    "Dropout": "dropout",
    "Linear": "linear",
}
# `   Conv2D-1      [[1, 3, 224, 224]]   [1, 64, 112, 112]        9,472     `
PADDLE_ROW = re.compile(r"^\s*(\w+)-(\d+)\s+\[\[([\d, ]+)\]\]\s+\[([\d, ]+)\]\s+([\d,]+)\s*$")


def summary_of(path: Path) -> Summary:
    result = lint_file(path)
    assert result.errors == 0, result.diagnostics
    assert result.graph is not None
    return summarize(result.graph)


@pytest.fixture(scope="module")
def googlenet() -> Summary:
    return summary_of(SPECS / "googlenet.yaml")


# --- the reference figures ----------------------------------------------------------------------


def test_googlenet_totals(googlenet):
    assert googlenet.total_params == 13_378_280
    assert googlenet.trainable_params == 13_378_280
    assert googlenet.non_trainable_params == 0
    assert googlenet.total_macs == 1_582_671_872  # eval: the auxiliary heads are left out
    assert googlenet.outputs == {"logits": (1000,), "aux1": (1000,), "aux2": (1000,)}
    assert googlenet.train_only == {"aux1", "aux2"}
    heads = sum(r.params for r in googlenet.rows if r.name in ("aux1", "aux2"))
    assert googlenet.total_params - heads == 6_998_552
    head_macs = sum(r.macs for r in googlenet.rows if r.name in ("aux1", "aux2"))
    assert googlenet.train_macs == googlenet.total_macs + head_macs


def test_rows_nest_blocks_before_their_members(googlenet):
    rows = {r.name: (i, r) for i, r in enumerate(googlenet.rows)}
    i, block = rows["inception3a"]
    assert (block.op, block.kind, block.depth) == ("inception", "block", 0)
    assert block.input_shapes == ((192, 28, 28),) and block.output_shape == (256, 28, 28)
    assert googlenet.rows[i + 1].name == "inception3a.branch1"
    assert googlenet.rows[i + 2] == Row(
        "inception3a.branch1.0",
        "conv 1x1, 64",
        "conv",
        2,
        ((192, 28, 28),),
        (64, 28, 28),
        12_352,
        9_633_792,
        0,  # no buffers
        64 * 28 * 28 * 4,  # its float32 output for one sample
        ("pool2",),  # what it reads
        "inception3a.branch1",  # the block around it
    )
    members = [r for r in googlenet.rows if r.name.startswith("inception3a.")]
    assert block.params == sum(r.params for r in members if r.kind != "block")
    assert block.macs == sum(r.macs for r in members if r.kind != "block")
    leaves = [r for r in members if r.kind != "block"]
    assert block.activation_bytes == sum(r.activation_bytes for r in leaves)
    assert block.param_bytes == 4 * block.params
    # every node appears once; the top-level rows add up to the totals
    assert "input" not in rows and len(rows) == len(googlenet.rows)
    top = [r for r in googlenet.rows if r.depth == 0]
    assert sum(r.params for r in top) == googlenet.total_params


def test_repeats_and_user_blocks_nest(tmp_path):
    spec = tmp_path / "r.yaml"
    spec.write_text(
        "input: [3, 8, 8]\n"
        "blocks:\n  B:\n    layers:\n      - conv: {name: a, out: 4, kernel: 3, padding: 1}\n"
        "layers:\n"
        "  - conv: {name: c, out: 4, kernel: 1, repeat: 2}\n"
        "  - B: {name: b, repeat: 2}\n"
    )
    s = summary_of(spec)
    assert [(r.name, r.kind, r.depth) for r in s.rows] == [
        ("c", "block", 0),
        ("c.0", "conv", 1),
        ("c.1", "conv", 1),
        ("b", "block", 0),
        ("b.0", "block", 1),
        ("b.0.a", "conv", 2),
        ("b.1", "block", 1),
        ("b.1.a", "conv", 2),
    ]
    assert s.rows[3].params == 2 * s.rows[5].params == 2 * (4 * 4 * 9 + 4)


# --- seed 002: every row of the post's paddle.summary table -------------------------------------


def paddle_rows() -> list[tuple[str, tuple[int, ...], int]]:
    """(op, output shape without the batch, params) of each row of seed 002's table."""
    rows = []
    for line in SEED_TABLE.read_text(encoding="utf-8").splitlines():
        match = PADDLE_ROW.match(line)
        assert match, f"not a paddle.summary row: {line!r}"
        kind, _, _, out, params = match.groups()
        shape = tuple(int(d) for d in out.split(","))[1:]
        rows.append((kind, shape, int(params.replace(",", ""))))
    return rows


def test_seed_table_is_the_whole_table():
    rows = paddle_rows()
    assert len(rows) == 154
    assert sum(p for _, _, p in rows) == 13_378_280  # the post's "Total params"
    inceptions = [r for r in rows if r[0] == "Inception"]
    assert len(inceptions) == 9 and all(p == 0 for _, _, p in inceptions)


# rows of ours that paddle's table does not have: the concat of each inception block (paddle
# counts it in its `Inception-N` row), and in the paper's network LRN and the aux heads' ReLU
EXTRA_ROWS = {
    "posts/googlenet_paddle.yaml": {"concat": 9},
    "googlenet.yaml": {"concat": 9, "lrn": 2, "relu": 2},
}


@pytest.mark.parametrize("spec", sorted(EXTRA_ROWS))
def test_every_paddle_row_is_in_the_summary(spec):
    summary = summary_of(SPECS / spec)
    ours = [(r.kind, r.output_shape, r.params) for r in summary.rows if r.kind != "block"]
    # `Inception-N` rows are containers (0 params, printed after their members): they match
    # our inception block rows by output shape, in order
    theirs = [(PADDLE_OPS[k], shape, p) for k, shape, p in paddle_rows() if k != "Inception"]
    containers = [shape for k, shape, _ in paddle_rows() if k == "Inception"]
    blocks = [r.output_shape for r in summary.rows if r.op == "inception"]
    assert blocks == containers
    # paddle's rows, in order, are a subsequence of ours: googlenet.yaml adds LRN rows, a ReLU
    # after each aux head's conv and the concat of each inception block; both networks put
    # the main classifier first, then aux1, then aux2, as the post does
    at = 0
    extra: Counter[str] = Counter()
    for n, row in enumerate(theirs):
        while at < len(ours) and ours[at] != row:
            extra[ours[at][0]] += 1
            at += 1
        assert at < len(ours), f"paddle row {n} {row} has no match in order in {spec}"
        at += 1
    assert at == len(ours)  # both end with aux2's classifier
    assert extra == EXTRA_ROWS[spec]
    assert summary.total_params == sum(p for _, _, p in theirs)


# --- renderings ---------------------------------------------------------------------------------


def test_json_contract(run):
    result = run("summary", "specs/googlenet.yaml", "--format", "json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert set(payload) == {
        "name",
        "input_shape",
        "total_params",
        "trainable_params",
        "total_macs",
        "total_param_bytes",
        "total_buffer_bytes",
        "total_activation_bytes",
        "train_activation_bytes",
        "peak_activation_bytes",
        # issue 16: the batch, the dtype and the training-memory estimate
        "batch_size",
        "dtype",
        "optimizer",
        "input_bytes",
        "forward_backward_bytes",
        "estimated_total_bytes",
        "gradient_bytes",
        "optimizer_state_bytes",
        "training_memory_bytes",
        "outputs",
        "layers",
    }
    assert payload["name"] == "googlenet"
    assert payload["input_shape"] == [3, 224, 224]
    assert payload["total_params"] == payload["trainable_params"] == 13_378_280
    assert payload["total_macs"] == 1_582_671_872
    assert payload["outputs"] == {"logits": [1000], "aux1": [1000], "aux2": [1000]}
    first = payload["layers"][0]
    assert first == {
        "name": "conv1",
        "op": "conv 7x7/2 pad 3, 64",
        "kind": "conv",
        "depth": 0,
        "input_shapes": [[3, 224, 224]],
        "output_shape": [64, 112, 112],
        "params": 9_472,
        "macs": 118_013_952,
        "param_bytes": 37_888,
        "buffer_bytes": 0,
        "activation_bytes": 3_211_264,
        "connected_to": ["input"],
    }
    assert payload["total_param_bytes"] == 4 * 13_378_280
    assert payload["total_buffer_bytes"] == 0
    assert payload["total_activation_bytes"] == 39_649_056
    assert payload["train_activation_bytes"] == 39_797_344
    assert payload["peak_activation_bytes"] == 7_024_640
    concat = next(x for x in payload["layers"] if x["name"] == "inception3a.concat")
    assert concat["input_shapes"] == [[64, 28, 28], [128, 28, 28], [32, 28, 28], [32, 28, 28]]
    branch_ends = [(1, 1), (2, 3), (3, 3), (4, 2)]
    assert concat["connected_to"] == [f"inception3a.branch{b}.{n}" for b, n in branch_ends]
    # the defaults of the new figures: one float32 sample, no optimizer
    assert (payload["batch_size"], payload["dtype"], payload["optimizer"]) == (1, "float32", "none")
    assert payload["input_bytes"] == 3 * 224 * 224 * 4
    assert payload["forward_backward_bytes"] == payload["train_activation_bytes"]
    assert payload["gradient_bytes"] == payload["total_param_bytes"]
    assert payload["optimizer_state_bytes"] == 0
    assert payload["estimated_total_bytes"] == 602_112 + 39_797_344 + 4 * 13_378_280
    assert payload["training_memory_bytes"] == payload["estimated_total_bytes"] + 4 * 13_378_280
    # sorted keys, deterministic bytes
    assert result.stdout == json.dumps(payload, indent=2, sort_keys=True) + "\n"
    assert run("summary", "specs/googlenet.yaml", "--format", "json").stdout == result.stdout


def test_depth_hides_members_and_keeps_totals(run):
    full = json.loads(run("summary", "specs/googlenet.yaml", "--format", "json").stdout)
    result = run("summary", "specs/googlenet.yaml", "--format", "json", "--depth", "0")
    assert result.exit_code == 0
    top = json.loads(result.stdout)
    assert {x["depth"] for x in top["layers"]} == {0}
    assert not any("." in x["name"] for x in top["layers"])
    assert [x["name"] for x in top["layers"]][-3:] == ["classifier", "aux1", "aux2"]
    for key in set(full) - {"layers"}:
        assert top[key] == full[key]
    assert sum(x["params"] for x in top["layers"]) == top["total_params"]
    assert sum(x["param_bytes"] for x in top["layers"]) == top["total_param_bytes"]
    # the top-level rows cover every layer: the training forward's activations
    assert sum(x["activation_bytes"] for x in top["layers"]) == top["train_activation_bytes"]
    assert len(top["layers"]) < len(full["layers"])
    one = json.loads(
        run("summary", "specs/googlenet.yaml", "--format", "json", "--depth", "1").stdout
    )
    assert {x["depth"] for x in one["layers"]} == {0, 1}
    text = run("summary", "specs/googlenet.yaml", "--depth", "0").stdout
    assert "inception3a (inception)" in text and "branch1" not in text
    assert "Total MACs (eval): 1,582,671,872" in text


def test_text_table(googlenet, run):
    text = render_text(googlenet)
    assert text == render_text(googlenet)
    result = run("summary", "specs/googlenet.yaml")
    # the default depth (2) hides nothing here: the paper's network nests two deep
    assert result.exit_code == 0 and result.stdout == text + "\n"
    assert result.stderr == ""
    lines = text.splitlines()
    assert lines[0] == (
        "googlenet: input [3, 224, 224], batch 1, float32 (shapes leave out the batch dimension)"
    )
    # a branching spec: Connected to, for which the parameter memory column gives way
    header = [
        "Layer (op)",
        "Input Shape",
        "Output Shape",
        "Param #",
        "MACs",
        "Act Mem",
        "Connected to",
    ]
    assert re.split(r"\s{2,}", lines[2].strip()) == header
    conv1 = next(line for line in lines if line.startswith(" conv1 "))
    assert re.split(r"\s{2,}", conv1.strip()) == [
        "conv1 (conv 7x7/2 pad 3, 64)",
        "[3, 224, 224]",
        "[64, 112, 112]",
        "9,472",
        "118,013,952",
        "3.1 MiB",
        "input",
    ]
    # members under their block, named within it, and so are the values they read
    at = lines.index(next(line for line in lines if line.startswith(" inception3a ")))
    assert lines[at + 1].startswith("   branch1 (seq) ")
    assert re.split(r"\s{2,}", lines[at + 2].strip())[0] == "0 (conv 1x1, 64)"
    assert lines[at + 2].startswith("     0 (conv 1x1, 64) ") and lines[at + 2].endswith(" pool2")
    assert lines[at + 3].endswith(" 0")  # its ReLU reads the conv just above
    concat = lines[at + 18]
    assert re.split(r"\s{2,}", concat.strip())[:2] == ["concat (concat)", "4 inputs"]
    # names that do not fit their column go on over the next line, as Keras writes them
    assert concat.endswith(" branch1, branch2,")
    assert lines[at + 19].strip() == "branch3, branch4"
    assert lines[at + 19].index("branch3") == concat.index("branch1")
    assert lines[at + 20].startswith(" inception3b ") and lines[at + 20].endswith(" inception3a")
    for expected in (
        "Total params: 13,378,280",
        "Trainable params: 13,378,280",
        "Non-trainable params: 0",
        "Total MACs (eval): 1,582,671,872",
        "Total MACs (train): 1,591,044,096",
        "Input size: 588.0 KiB (602,112 bytes)",
        "Forward/backward pass size: 38.0 MiB (39,797,344 bytes)",
        "Params size (float32): 51.0 MiB (53,513,120 bytes)",
        "Buffers size: 0 B",
        "Estimated Total Size: 89.6 MiB (93,912,576 bytes)",
        "Activations (eval): 37.8 MiB (39,649,056 bytes)",
        "Peak activations (eval): 6.7 MiB (7,024,640 bytes)",
        "Gradients (float32): 51.0 MiB (53,513,120 bytes)",
        "Training memory (estimate): 140.6 MiB (147,425,696 bytes)",
        "  logits: [1000]",
        "  aux1: [1000] (training only)",
        "  aux2: [1000] (training only)",
    ):
        assert expected in lines
    assert not any("hidden" in line for line in lines)  # nothing was
    assert not any(line.startswith("Optimizer state") for line in lines)  # none chosen
    assert all(line == line.rstrip() for line in lines)


def test_markdown(googlenet, run):
    md = render_markdown(googlenet, depth=0)
    lines = md.splitlines()
    assert lines[0] == (
        "**googlenet**: input `[3, 224, 224]`, batch 1, float32 "
        "(shapes leave out the batch dimension)"
    )
    assert (
        "| Layer | Op | Input shape | Output shape | Params | MACs | Param+buf mem "
        "| Activation mem | Connected to |" in lines
    )
    assert "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | --- |" in lines
    assert (
        "| `conv1` | conv 7x7/2 pad 3, 64 | [3, 224, 224] | [64, 112, 112] | 9,472 | 118,013,952 "
        "| 37.0 KiB | 3.1 MiB | input |" in lines
    )
    # full names in markdown; a block's output is named after the block
    assert "| `inception3b` | inception | [256, 28, 28] | [480, 28, 28] | 388,736 " in md
    assert next(line for line in lines if "`inception3b`" in line).endswith("| inception3a |")
    table = [line for line in lines if line.startswith("| ")]
    assert all(line.count(" | ") == 8 for line in table)
    assert "178 rows nested deeper than 0 hidden (`yarch summary --depth all` shows them)" in lines
    assert "- Peak activations (eval): 6.7 MiB (7,024,640 bytes)" in lines
    assert "- Total MACs (eval): 1,582,671,872" in lines
    assert "- Training memory (estimate): 140.6 MiB (147,425,696 bytes)" in lines
    assert "- Output `aux1`: [1000] (training only)" in lines
    result = run("summary", "specs/googlenet.yaml", "--format", "markdown", "--depth", "0")
    assert result.exit_code == 0 and result.stdout == md + "\n"
    # the default depth of markdown is the text table's
    default = run("summary", "specs/zoo/resnet50.yaml", "--format", "markdown").stdout
    assert "8 rows nested deeper than 2 hidden" in default
    assert "`layer1.0.downsample`" in default and "`layer1.0.downsample.0`" not in default


def test_set_overrides_a_parameter(run):
    result = run("summary", "specs/googlenet.yaml", "--format", "json", "--set", "num_classes=10")
    payload = json.loads(result.stdout)
    assert payload["outputs"] == {"logits": [10], "aux1": [10], "aux2": [10]}
    assert payload["total_params"] == 13_378_280 - 3 * 990 * 1025


# --- memory -------------------------------------------------------------------------------------


def test_fmt_bytes():
    assert [fmt_bytes(n) for n in (0, 40, 1023, 1024, 37_888, 1_048_575)] == [
        "0 B",
        "40 B",
        "1023 B",
        "1.0 KiB",
        "37.0 KiB",
        "1.0 MiB",  # not "1024.0 KiB"
    ]
    assert fmt_bytes(53_513_120) == "51.0 MiB" and fmt_bytes(3 * 2**30) == "3.0 GiB"


def test_memory_of_a_small_graph_by_hand(tmp_path):
    spec = tmp_path / "m.yaml"
    spec.write_text(
        "input: [1, 4, 4]\n"  # 64 bytes
        "layers:\n"
        "  - conv: {name: a, out: 2, kernel: 1}\n"  # 128
        "  - conv: {name: b, out: 8, kernel: 1, from: input}\n"  # 512
        "  - concat: {name: cat, from: [a, b]}\n"  # 640
        "  - maxpool: {name: pool, kernel: 2, stride: 2}\n"  # 160
        "  - bn: {name: norm, affine: false}\n"  # 160
        "  - conv: {name: head, out: 16, kernel: 1, from: b}\n"  # 1,024, training only
        "outputs:\n  out: norm\n  side: {from: head, train_only: true}\n"
    )
    s = summary_of(spec)
    rows = {r.name: r for r in s.rows}
    assert [rows[n].activation_bytes for n in ("a", "b", "cat", "pool", "norm", "head")] == [
        128,
        512,
        640,
        160,
        160,
        1024,
    ]
    assert s.total_param_bytes == 4 * (4 + 16 + 144) == 656
    # running_mean and running_var (10 float32 each) and num_batches_tracked (one int64),
    # kept without `affine`, which only drops the parameters
    assert rows["norm"].params == 0 and rows["norm"].buffer_bytes == 2 * 10 * 4 + 8
    assert s.total_buffer_bytes == 88
    assert s.total_activation_bytes == 128 + 512 + 640 + 160 + 160
    assert s.train_activation_bytes == s.total_activation_bytes + 1024
    # the eval forward in graph order, the input alive throughout: a, b, then the concat
    # with both its inputs still alive (64 + 128 + 512 + 640); `head` does not run in eval
    assert s.peak_activation_bytes == 1344


def test_peak_keeps_outputs_to_the_end(tmp_path):
    spec = tmp_path / "k.yaml"
    body = (
        "input: [1, 4, 4]\n"  # 64 bytes
        "layers:\n"
        "  - conv: {name: a, out: 4, kernel: 1}\n"  # 256
        "  - conv: {name: b, out: 1, kernel: 1}\n"  # 64
        "  - conv: {name: c, out: 1, kernel: 1}\n"  # 64
    )
    spec.write_text(body)
    # at most two layer outputs at once: the input, then a and b (64 + 256 + 64)
    assert summary_of(spec).peak_activation_bytes == 384
    spec.write_text(body + "outputs:\n  first: a\n  last: c\n")
    # `a` is an output: it is kept while b and c run (64 + 256 + 64 + 64)
    assert summary_of(spec).peak_activation_bytes == 448


# --- the command line ---------------------------------------------------------------------------


def test_errors_print_diagnostics_and_exit_1(tmp_path, run):
    spec = tmp_path / "bad.yaml"
    spec.write_text("input: [3, 8, 8]\nlayers:\n  - conv: {in: 4, out: 8, kernel: 3}\n")
    result = run("summary", str(spec))
    assert result.exit_code == 1
    assert "error[channel-mismatch]: `conv_1` declares 4 input channels" in result.stderr
    assert f"--> {spec}:3:" in result.stderr
    assert "Found 1 error and 0 warnings in 1 of 1 file." in result.stderr
    assert result.stdout == ""  # no table for a broken spec
    assert run("summary", str(spec), "--format", "json").exit_code == 1


def test_warnings_do_not_block_the_summary(tmp_path, run):
    spec = tmp_path / "w.yaml"
    spec.write_text("input: [1, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 3, stride: 2}\n")
    result = run("summary", str(spec), "--format", "json")
    assert result.exit_code == 0
    assert "warning[stride-remainder]" in result.stderr
    assert json.loads(result.stdout)["layers"][0]["output_shape"] == [4, 3, 3]


def test_unreadable_and_usage_errors_exit_2(tmp_path, run):
    missing = run("summary", str(tmp_path / "nope.yaml"))
    assert missing.exit_code == 2 and "error[unreadable-file]" in missing.stderr
    assert run("summary", "specs/googlenet.yaml", "--depth", "-1").exit_code == 2
    assert run("summary", "specs/googlenet.yaml", "--format", "csv").exit_code == 2
    assert run("summary", "specs/googlenet.yaml", "--set", "oops").exit_code == 2


# --- no torch -----------------------------------------------------------------------------------

# As tests/test_no_torch.py: block torch outright, so that importing it would fail the run.
PROBE = """
import sys
sys.modules["torch"] = None
from compiler.cli import cli
for fmt in ("text", "json", "markdown"):
    options = ["--batch", "2", "--dtype", "bfloat16", "--optimizer", "adam", "--depth", "all"]
    try:
        cli(["summary", "specs/googlenet.yaml", "--format", fmt, *options], standalone_mode=True)
    except SystemExit as exc:
        print("exit", exc.code, file=sys.stderr)
loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
print("torch", loaded[1:] if loaded[:1] == ["torch"] else loaded, file=sys.stderr)
"""


def test_summary_never_imports_torch():
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert "Traceback" not in out.stderr, out.stderr
    assert out.stderr.strip().splitlines()[-4:] == ["exit 0", "exit 0", "exit 0", "torch []"]


def test_summary_process_does_not_load_torch():
    probe = (
        "import runpy, sys\n"
        "sys.argv = ['yarch', 'summary', 'specs/googlenet.yaml', '--format', 'json']\n"
        "try:\n    runpy.run_module('compiler', run_name='__main__')\n"
        "except SystemExit as exc:\n    print('exit', exc.code, file=sys.stderr)\n"
        "print('torch' in sys.modules, file=sys.stderr)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert out.stderr.strip().splitlines()[-2:] == ["exit 0", "False"], out.stderr
    assert json.loads(out.stdout)["total_macs"] == 1_582_671_872
