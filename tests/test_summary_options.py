"""`yarch summary` as a torchinfo user expects it (issue 16): the default depth, tables within
120 columns, the Connected to column of branching specs, `--batch`, `--dtype`, `--optimizer`
and torchinfo's totals. The figures are checked against torch in tests/test_summary_memory.py;
these tests need no torch."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import pytest

from compiler import lint_file
from compiler.sizes import DTYPE_BYTES, fmt_bytes
from compiler.summary import (
    BLOCK,
    DEFAULT_DEPTH,
    MAX_WIDTH,
    OPTIMIZERS,
    Summary,
    render_markdown,
    render_text,
    summarize,
)

from .conftest import SPECS

TABLE_RULE = re.compile(r"^=+$")
WIDTH = 120  # issue 16: every row of the default table of every bundled spec


@cache
def graph_of(path: Path):
    result = lint_file(path)
    return result if result.errors == 0 and result.graph is not None else None


def summary_of(path: Path, **options) -> Summary:
    result = graph_of(path)
    assert result is not None, f"{path} has errors"
    return summarize(result.graph, **options)


def table_lines(text: str) -> list[str]:
    """The lines between the table's two `=` rules (rows, and rows' continuation lines)."""
    lines = text.splitlines()
    first, second = (i for i, line in enumerate(lines) if TABLE_RULE.match(line))
    return lines[first + 1 : second]


def header_of(text: str) -> list[str]:
    return re.split(r"\s{2,}", text.splitlines()[2].strip())


def table_rows(text: str) -> list[list[str]]:
    """The table's rows as cells (continuation lines, which hold only Connected to names,
    joined to their row's last cell)."""
    rows: list[list[str]] = []
    start = text.splitlines()[2].index("Connected to") if "Connected to" in text else None
    for line in table_lines(text):
        if start is not None and line[:start].strip() == "":
            rows[-1][-1] += " " + line.strip()
        else:
            rows.append(re.split(r"\s{2,}", line.strip()))
    return rows


# --- every spec: 120 columns at the default depth ---------------------------------------------

ALL_SPECS = sorted(SPECS.rglob("*.yaml"))


def test_every_spec_table_fits_120_columns():
    checked = 0
    for path in ALL_SPECS:
        if graph_of(path) is None:  # the posts' mistakes: lint reports them, no table
            continue
        summary = summary_of(path)
        text = render_text(summary, DEFAULT_DEPTH)
        wide = [line for line in text.splitlines() if len(line) > WIDTH]
        assert not wide, f"{path.relative_to(SPECS)}: {len(wide[0])} columns: {wide[0]}"
        # a row of several inputs names them in Connected to, never lists every shape
        for row in summary.visible(DEFAULT_DEPTH):
            if len(row.input_shapes) > 1:
                assert summary.branching, row.name
        for cells in table_rows(text):
            assert cells[1].count("[") <= 1, f"{path.name}: {cells}"
        # every row, and a batch whose MACs take more digits, fit too
        every = render_text(summarize(graph_of(path).graph, batch=256), None)
        assert max(len(line) for line in every.splitlines()) <= WIDTH, path
        checked += 1
    # the library, the zoo and the clean posts (a spec that stopped linting would drop out)
    assert checked >= 90 and any("zoo" in p.parts for p in ALL_SPECS)


def test_the_renderer_aims_at_120_columns():
    assert MAX_WIDTH == WIDTH


def test_cli_default_is_the_checked_table(run):
    text = run("summary", "specs/zoo/inception_v3.yaml").stdout
    assert text == render_text(summary_of(SPECS / "zoo" / "inception_v3.yaml"), 2) + "\n"
    assert max(len(line) for line in text.splitlines()) <= WIDTH


def test_without_a_width_limit_the_widest_spec_would_not_fit():
    """The limit does work: the widest spec's natural table is wider, and cells were cut or
    wrapped to fit it."""
    summary = summary_of(SPECS / "zoo" / "inception_v3.yaml")
    text = render_text(summary, DEFAULT_DEPTH)
    assert any("…" in line for line in table_lines(text))  # a long op description, cut
    rows = table_rows(text)
    assert len(table_lines(text)) > len(rows)  # some Connected to cell went on over lines
    # a wrapped cell keeps every name
    concat = next(r for r in rows if r[0] == "concat_1 (concat)")
    assert concat[-1].replace(", ", ",").split(",") == [
        "branch1x1",
        "branch5x5_2",
        "branch3x3dbl_3",
        "branch_pool",
    ]


# --- depth ----------------------------------------------------------------------------------------

# rows of the default table and of every row, for the three networks issue 16 measured
DEFAULT_ROWS = {
    "resnet50": (191, 199),  # the downsample convs and norms (depth 3) hidden
    "googlenet": (177, 312),  # the inception branches' BasicConv2d members hidden
    "densenet121": (87, 493),  # every dense layer's members hidden
}


@pytest.mark.parametrize("name", sorted(DEFAULT_ROWS))
def test_default_depth_hides_rows_nested_deeper_than_2(run, name):
    shown, every = DEFAULT_ROWS[name]
    result = run("summary", f"specs/zoo/{name}.yaml")
    assert result.exit_code == 0, result.output
    summary = summary_of(SPECS / "zoo" / f"{name}.yaml")
    assert len(summary.rows) == every
    assert len(table_rows(result.stdout)) == len(summary.visible(2)) == shown
    hidden = f"{every - shown:,} rows nested deeper than 2 hidden"
    assert f"{hidden} (`yarch summary --depth all` shows them)" in result.stdout.splitlines()
    # the totals count every layer, hidden or not
    assert f"Total params: {summary.total_params:,}" in result.stdout
    # --depth all shows every row, and says nothing is hidden
    every_row = run("summary", f"specs/zoo/{name}.yaml", "--depth", "all").stdout
    assert len(table_rows(every_row)) == every and "hidden" not in every_row


def test_resnet50_table_is_shorter_than_before():
    """Issue 16 counted 215 lines for ResNet-50 (199 rows); by default its table hides the
    downsample branches' members, as torchinfo's depth 3 does."""
    summary = summary_of(SPECS / "zoo" / "resnet50.yaml")
    shown = summary.visible(DEFAULT_DEPTH)
    hidden = [r for r in summary.rows if r not in shown]
    assert len(shown) == 191
    assert [r.name for r in hidden] == [
        f"layer{i}.0.downsample.{j}" for i in (1, 2, 3, 4) for j in (0, 1)
    ]
    assert {r.depth for r in hidden} == {3}
    assert [r.name for r in summary.rows if r.depth <= 1][:6] == [
        "conv1",
        "bn1",
        "relu",
        "maxpool",
        "layer1",
        "layer1.0",
    ]


def test_json_keeps_every_layer_unless_asked(run):
    full = json.loads(run("summary", "specs/zoo/resnet50.yaml", "--format", "json").stdout)
    assert len(full["layers"]) == 199
    two = run("summary", "specs/zoo/resnet50.yaml", "--format", "json", "--depth", "2").stdout
    assert len(json.loads(two)["layers"]) == 191
    every = run("summary", "specs/zoo/resnet50.yaml", "--format", "json", "--depth", "all")
    assert json.loads(every.stdout) == full


@pytest.mark.parametrize("bad", ["-1", "some", "2.5", "9" * 50])
def test_bad_depth_is_a_usage_error(run, bad):
    result = run("summary", "specs/googlenet.yaml", "--depth", bad)
    assert result.exit_code == 2
    assert "is not a whole number from 0 or `all`" in result.stderr
    assert "Traceback" not in result.output


def test_depth_all_is_case_and_space_tolerant(run):
    assert run("summary", "specs/vgg11.yaml", "--depth", " ALL ").exit_code == 0


# --- Connected to ---------------------------------------------------------------------------------


def test_connected_to_for_googlenet():
    summary = summary_of(SPECS / "googlenet.yaml")
    assert summary.branching
    text = render_text(summary)
    assert header_of(text)[-1] == "Connected to"
    rows = {cells[0]: cells for cells in table_rows(text)}
    # the auxiliary heads leave after inception 4a and 4d: named after the blocks
    assert rows["aux1 (AuxHead)"][-1] == "inception4a"
    assert rows["aux2 (AuxHead)"][-1] == "inception4d"
    assert rows["inception4b (inception)"][-1] == "inception4a"
    # a concat reads its branches, named within its block
    concats = [cells for name, cells in rows.items() if name == "concat (concat)"]
    assert {c[-1] for c in concats} == {"branch1, branch2, branch3, branch4"}
    # every row of the table has the column
    assert all(len(cells) == len(header_of(text)) for cells in table_rows(text))


def test_connected_to_names_the_shown_row_when_depth_hides_the_value():
    summary = summary_of(SPECS / "zoo" / "googlenet.yaml")
    # inception3a's concat reads the output of each branch's last BasicConv2d ...
    concat = next(r for r in summary.rows if r.name == "inception3a.concat")
    assert concat.inputs[1] == "inception3a.branch2.1.relu"
    rows = {c[0]: c for c in table_rows(render_text(summary, 3))}
    # ... which is the output of `branch2`, the block that holds it, at any depth
    names = "branch1, branch2, branch3, branch4"
    assert next(c[-1] for n, c in rows.items() if n == "concat (concat)") == names
    # at depth 0 only blocks are shown: the aux heads read `inception4a`
    top = {c[0]: c for c in table_rows(render_text(summary, 0))}
    assert top["aux1 (InceptionAux)"][-1] == "inception4a"
    md = render_markdown(summary, 3)
    assert "| inception3a.branch1, inception3a.branch2, inception3a.branch3," in md


def test_no_connected_to_for_vgg():
    for name in ("vgg16.yaml", "zoo/vgg16_bn.yaml", "alexnet.yaml"):
        summary = summary_of(SPECS / name)
        assert not summary.branching, name
        text = render_text(summary, DEFAULT_DEPTH)
        header = header_of(text)
        assert "Connected to" not in header and header[-2:] == ["Param Mem", "Act Mem"]
        assert "Connected to" not in render_markdown(summary, DEFAULT_DEPTH)


def test_branching_means_two_readers_or_two_inputs(tmp_path):
    def branching(body: str) -> bool:
        spec = tmp_path / "b.yaml"
        spec.write_text("input: [1, 4, 4]\nlayers:\n" + body)
        result = lint_file(spec)
        assert result.errors == 0, result.diagnostics
        return summarize(result.graph).branching

    chain = "  - conv: {name: a, out: 2, kernel: 1}\n  - relu: {name: r}\n"
    assert not branching(chain)
    assert branching(chain + "  - add: [a, r]\n")  # a is read twice, add reads two values
    # the input read by two layers
    assert branching(chain + "  - conv: {name: b, out: 2, kernel: 1, from: input}\n")


# --- batch, dtype, optimizer ----------------------------------------------------------------


def test_batch_scales_what_it_should_and_nothing_else():
    path = SPECS / "googlenet_torchvision.yaml"
    one, four = summary_of(path), summary_of(path, batch=4)
    # per-sample figures (the JSON contract's) stay as they are
    assert one.rows == four.rows
    for key in ("total_macs", "train_macs", "total_activation_bytes", "peak_activation_bytes"):
        assert getattr(four, key) == getattr(one, key), key
    # the figures of the batch scale with it: input, activations kept for backward
    assert four.input_bytes == 4 * one.input_bytes == 4 * 3 * 224 * 224 * 4
    assert four.forward_backward_bytes == 4 * one.forward_backward_bytes
    # the weights do not
    for key in ("total_param_bytes", "total_buffer_bytes", "gradient_bytes"):
        assert getattr(four, key) == getattr(one, key), key
    growth = four.estimated_total_bytes - one.estimated_total_bytes
    assert growth == 3 * (one.input_bytes + one.forward_backward_bytes)
    assert four.training_memory_bytes - one.training_memory_bytes == growth
    # the text table: MACs and activation memory per row scale, shapes and Param # do not
    rows1 = table_rows(render_text(one, 1))
    rows4 = table_rows(render_text(four, 1))
    header = header_of(render_text(one, 1))
    macs, mem, params = header.index("MACs"), header.index("Act Mem"), header.index("Param #")
    for a, b in zip(rows1, rows4, strict=True):
        # (the wider MACs leave the layer column less room: its cells may be cut shorter)
        assert a[1:3] == b[1:3] and a[params] == b[params] and a[-1] == b[-1]
        assert int(b[macs].replace(",", "")) == 4 * int(a[macs].replace(",", ""))
    conv1 = next(r for r in four.rows if r.name == "conv1")
    row = next(r for r in rows4 if r[0].startswith("conv1 (Basic"))
    assert row[mem] == fmt_bytes(4 * conv1.activation_bytes) != fmt_bytes(conv1.activation_bytes)
    text = render_text(four)
    assert text.splitlines()[0].startswith("googlenet_torchvision: input [3, 224, 224], batch 4,")
    assert f"Total MACs (eval, batch of 4): {4 * one.total_macs:,}" in text


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_dtype_changes_bytes(dtype):
    path = SPECS / "resnet18.yaml"
    f32, other = summary_of(path), summary_of(path, dtype=dtype)
    ratio = DTYPE_BYTES[dtype] / 4
    for key in (
        "total_param_bytes",
        "total_activation_bytes",
        "train_activation_bytes",
        "peak_activation_bytes",
        "input_bytes",
        "forward_backward_bytes",
        "gradient_bytes",
    ):
        assert getattr(other, key) == getattr(f32, key) * ratio, key
    # batch norm's running statistics take the dtype; num_batches_tracked stays int64
    norms = [r for r in f32.rows if r.kind == "bn"]
    assert len(norms) == 20
    channels = sum((r.buffer_bytes - 8) // 8 for r in norms)  # running_mean + running_var
    assert f32.total_buffer_bytes == channels * 2 * 4 + 8 * len(norms)
    assert other.total_buffer_bytes == channels * 2 * DTYPE_BYTES[dtype] + 8 * len(norms)
    # counts do not change
    assert (other.total_params, other.total_macs) == (f32.total_params, f32.total_macs)
    assert f"Params size ({dtype}): " in render_text(other)


def test_optimizer_state():
    path = SPECS / "resnet18.yaml"
    base = summary_of(path)
    params = base.trainable_params * 4
    for optimizer, copies in (("none", 0), ("sgd", 0), ("sgd-momentum", 1), ("adam", 2)):
        s = summary_of(path, optimizer=optimizer)
        assert OPTIMIZERS[optimizer] == copies
        assert s.optimizer_state_bytes == copies * params
        assert s.training_memory_bytes == (
            s.input_bytes
            + s.forward_backward_bytes
            + s.total_param_bytes
            + s.total_buffer_bytes
            + s.gradient_bytes
            + s.optimizer_state_bytes
        )
    assert summary_of(path, optimizer="adamw").optimizer_state_bytes == 2 * params
    text = render_text(summary_of(path, optimizer="adam"))
    assert "Optimizer state (adam): " in text
    assert text.index("Gradients (float32)") < text.index("Training memory (estimate)")
    assert "Optimizer state" not in render_text(base)  # none: not counted, not printed


def test_options_reach_every_format(run):
    args = ["summary", "specs/resnet18.yaml", "--batch", "8", "--dtype", "float16"]
    payload = json.loads(run(*args, "--optimizer", "sgd-momentum", "--format", "json").stdout)
    expected = summary_of(
        SPECS / "resnet18.yaml", batch=8, dtype="float16", optimizer="sgd-momentum"
    )
    assert (payload["batch_size"], payload["dtype"], payload["optimizer"]) == (
        8,
        "float16",
        "sgd-momentum",
    )
    for key in (
        "input_bytes",
        "forward_backward_bytes",
        "estimated_total_bytes",
        "gradient_bytes",
        "optimizer_state_bytes",
        "training_memory_bytes",
        "total_param_bytes",
        "total_buffer_bytes",
    ):
        assert payload[key] == getattr(expected, key), key
    # per layer: one sample, in the dtype
    conv1 = next(x for x in payload["layers"] if x["name"] == "conv1")
    assert conv1["activation_bytes"] == 64 * 112 * 112 * 2
    assert conv1["param_bytes"] == 9_408 * 2
    md = run(*args, "--format", "markdown").stdout
    assert "- Input size: 2.3 MiB (2,408,448 bytes)" in md  # 8 x 3 x 224 x 224 x 2
    assert "batch 8, float16" in md.splitlines()[0]


@pytest.mark.parametrize(
    "args",
    [
        ["--batch", "0"],
        ["--batch", "many"],
        ["--dtype", "int8"],
        ["--optimizer", "rmsprop"],
    ],
)
def test_bad_options_are_usage_errors(run, args):
    result = run("summary", "specs/vgg11.yaml", *args)
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_summarize_refuses_unknown_settings():
    result = graph_of(SPECS / "vgg11.yaml")
    for bad in ({"batch": 0}, {"dtype": "int8"}, {"optimizer": "rmsprop"}):
        with pytest.raises(ValueError):
            summarize(result.graph, **bad)


def test_block_rows_read_their_inputs():
    summary = summary_of(SPECS / "resnet18.yaml")
    rows = {r.name: r for r in summary.rows}
    first = next(r for r in summary.rows if r.kind == BLOCK)
    assert first.inputs and all(i in rows or i == "input" for i in first.inputs)


def test_wrapped_names_fill_their_column():
    from compiler.summary import _wrap

    # the last name needs no comma after it: `bn3, downsample` fills 15 columns exactly
    assert _wrap("bn3, downsample", 15) == ["bn3, downsample"]
    assert _wrap("bn3, downsample", 14) == ["bn3,", "downsample"]
    assert _wrap("a, b, c", 4) == ["a,", "b, c"]
    assert _wrap("a_very_long_name, b", 8) == ["a_very_…", "b"]
    # ResNet-50's residual adds keep their two names on one line
    text = render_text(summary_of(SPECS / "zoo" / "resnet50.yaml"), DEFAULT_DEPTH)
    adds = [line for line in table_lines(text) if line.lstrip().startswith("add_1 (add)")]
    # (the shortcut: the downsample branch, or the block before, named within the stage)
    assert len(adds) == 16
    assert all(re.search(r"  bn3, (downsample|[0-9])$", line) for line in adds)
    assert sum(line.endswith("bn3, downsample") for line in adds) == 4
