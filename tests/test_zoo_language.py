"""The language features torchvision's zoo needs (issue 15): `if:` in a numbered scope
renumbers, numbered block bodies (`sequential: true`), layer names with hyphens (RegNet's
`block1-0`), a repeat's copy names and index (`names: "denselayer${i + 1}"`, `${i}`, `${n}`),
and `dropped-input` for a removed multi-input layer whose other input nothing reads."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from compiler import lint_text
from compiler.codegen import codegen_file
from tests.conftest import load_module

torch = pytest.importorskip("torch")
import compiler  # noqa: E402


def build(text: str) -> torch.nn.Module:
    return compiler.build(yaml.safe_load(text))


def weights(module: torch.nn.Module) -> list[str]:
    return [k for k in module.state_dict() if k.endswith("weight")]


def codes(text: str) -> list[str]:
    return [d.code for d in lint_text(text).diagnostics]


NUMBERED = """
name: numbered
input: [3, 8, 8]
params: {expand: 1}
blocks:
  ConvBN:
    sequential: true
    params: {out: ~, act: true}
    layers:
      - conv: {out: $out, kernel: 3, padding: 1, bias: false}
      - bn
      - relu: {if: $act}
layers:
  - seq:
      name: block
      layers:
        - ConvBN: {out: 8, if: "${expand != 1}"}
        - ConvBN: {out: 8}
        - ConvBN: {out: 4, act: false}
"""


@pytest.mark.parametrize(
    ("expand", "first"),
    [(1, ["block.0.0.weight", "block.0.1.weight", "block.1.0.weight"]), (6, None)],
)
def test_if_in_a_seq_renumbers_and_blocks_number_their_bodies(
    expand: int, first: list[str] | None
) -> None:
    text = NUMBERED.replace("expand: 1", f"expand: {expand}")
    assert lint_text(text).diagnostics == []
    keys = weights(build(text))
    if first is not None:  # the first ConvBN removed: the others are 0 and 1, not 1 and 2
        assert keys == [*first, "block.1.1.weight"]
    else:
        assert keys[::2] == ["block.0.0.weight", "block.1.0.weight", "block.2.0.weight"]


def test_a_block_without_sequential_names_its_layers_per_op() -> None:
    text = NUMBERED.replace("    sequential: true\n", "")
    assert weights(build(text))[:2] == ["block.0.conv_1.weight", "block.0.bn_1.weight"]


HYPHENS = """
name: hyphens
input: [3, 8, 8]
layers:
  - seq:
      name: block1
      layers:
        - seq: {name: block1-0, layers: [{conv: {out: 4, kernel: 1}}, relu]}
        - conv: {name: block1-1, out: 4, kernel: 1}
        - add: [block1-0, block1-1]
  - conv: {name: head-1, out: 2, kernel: 1}
"""


def test_layer_names_with_hyphens_are_state_dict_keys(tmp_path: Path) -> None:
    assert lint_text(HYPHENS).diagnostics == []
    model = build(HYPHENS).eval()
    assert weights(model) == ["block1.block1-0.0.weight", "block1.block1-1.weight", "head-1.weight"]
    # generated code holds them with add_module/getattr and equals the built module
    result = lint_text(HYPHENS)
    code = codegen_file(result, "hyphens.yaml")
    assert 'getattr(self, "block1-0")' in code
    generated = load_module(code, tmp_path, "hyphens").Hyphens().eval()
    generated.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(generated(x), model(x))


@pytest.mark.parametrize("bad", ["-a", "a-", "a--b", "a-b c", "1-a", "_a-b"])
def test_only_plain_parts_join_with_hyphens(bad: str) -> None:
    text = f"name: t\ninput: [3, 8, 8]\nlayers:\n  - conv: {{name: '{bad}', out: 4, kernel: 1}}\n"
    assert "invalid-value" in codes(text)


DENSE = """
name: dense
input: [8, 8, 8]
blocks:
  DenseLayer:
    params: {growth: ~}
    layers:
      - bn: {name: norm1}
      - relu: {name: relu1}
      - conv: {name: conv1, out: $growth, kernel: 1, bias: false}
      - concat: [input, conv1]
layers:
  - DenseLayer: {name: denseblock1, repeat: 3, names: "denselayer${i + 1}", growth: 4}
  - conv: {name: widen, out: "${4 * (i + 1)}", kernel: 1, repeat: 3, names: "w-${i}"}
  - seq: {name: last, repeat: 2, first: {layers: [{conv: {out: "${n}", kernel: 1}}]},
          layers: [{conv: {out: "${10 + i}", kernel: 1}}]}
"""


def test_a_repeat_names_its_copies_and_reads_its_index() -> None:
    result = lint_text(DENSE)
    assert result.diagnostics == []
    g = result.graph
    shapes = {n: g.node(n).shape for n in ("widen.w-0", "widen.w-1", "widen.w-2")}
    assert shapes == {"widen.w-0": (4, 8, 8), "widen.w-1": (8, 8, 8), "widen.w-2": (12, 8, 8)}
    # `first:` is the first copy (i = 0, n = 2); the second reads its own i
    assert g.node("last.0.0").shape == (2, 8, 8)
    assert g.node("last.1.0").shape == (11, 8, 8)
    assert g.node(g.outputs["out"]).shape == (11, 8, 8)
    keys = weights(build(DENSE))
    assert keys[:2] == [
        "denseblock1.denselayer1.norm1.weight",
        "denseblock1.denselayer1.conv1.weight",
    ]
    assert "denseblock1.denselayer3.conv1.weight" in keys
    assert "widen.w-2.weight" in keys


@pytest.mark.parametrize(
    ("layer", "code", "words"),
    [
        ('{conv: {out: 4, kernel: 1, repeat: 2, names: "same"}}', "invalid-value", "copy 0"),
        ('{conv: {out: 4, kernel: 1, repeat: 2, names: "a${i"}}', "invalid-value", "plain name"),
        ('{conv: {out: 4, kernel: 1, repeat: 2, names: "${i / 2}"}}', "invalid-expression", "0.0"),
        ('{conv: {out: 4, kernel: 1, names: "a${i}"}}', "invalid-value", "no `repeat:`"),
        ('{conv: {out: 4, kernel: 1, repeat: 2, names: "${j}"}}', "undefined-parameter", "`j`"),
        ('{conv: {out: "${i}", kernel: 1}}', "undefined-parameter", "`i`"),
    ],
)
def test_copy_names_and_the_index_are_checked(layer: str, code: str, words: str) -> None:
    text = f"name: t\ninput: [3, 8, 8]\nlayers:\n  - {layer}\n"
    (d,) = lint_text(text).diagnostics
    assert (d.code, words in d.message) == (code, True), d.message
    if code == "undefined-parameter" and "`i`" in words:
        assert "repeat" in (d.help or "")


def test_a_removed_add_must_not_drop_its_other_input() -> None:
    block = """
name: t
input: [16, 8, 8]
blocks:
  Residual:
    layers:
      - conv: {name: conv1, out: 32, kernel: 3, padding: 1}
      - add: {from: FROM, if: false}
layers:
  - Residual
"""
    (d,) = lint_text(block.replace("FROM", "[input, conv1]")).diagnostics
    assert d.code == "dropped-input"
    assert "stands for its first input `input`, so `conv1` is read by nothing" in d.message
    # the idiom: without the shortcut, the block is its main path
    assert lint_text(block.replace("FROM", "[conv1, input]")).diagnostics == []


def test_a_repeat_inside_a_seq_reads_its_own_index() -> None:
    # the seq's layers are substituted each in its scope, not by the seq (which has no `i`)
    text = """
name: t
input: [3, 8, 8]
layers:
  - seq:
      name: trunk
      layers:
        - conv: {name: stage, repeat: 2, names: "stage-${i}", out: "${2 + i}", kernel: 1}
"""
    result = lint_text(text)
    assert result.diagnostics == []
    assert result.graph.node("trunk.stage.stage-1").shape == (3, 8, 8)


def test_a_block_used_only_under_a_false_if_is_not_unused() -> None:
    text = """
name: t
input: [3, 8, 8]
params: {se: false}
blocks:
  Gate:
    layers: [{conv: {out: 3, kernel: 1}}, sigmoid]
  Unused:
    layers: [relu]
layers:
  - conv: {out: 3, kernel: 1}
  - Gate: {if: $se}
"""
    (d,) = lint_text(text).diagnostics
    assert (d.code, "`Unused`" in d.message) == ("unused-block", True)


@pytest.mark.parametrize(
    ("expr", "value"),
    # torchvision's _make_divisible: nearest multiple, at least the divisor, < 10% below
    [("32 * 1.1", 32), ("16 * 1.8", 32), ("3", 8), ("40 * 1.4", 56), ("92", 96), ("91", 88)],
)
def test_make_divisible_is_torchvisions(expr: str, value: int) -> None:
    layer = f"conv: {{out: '${{make_divisible({expr})}}', kernel: 1}}"
    text = f"name: t\ninput: [3, 8, 8]\nlayers:\n  - {layer}\n"
    result = lint_text(text)
    assert result.diagnostics == []
    assert result.graph.node("conv_1").shape[0] == value


def test_a_numbered_layer_is_referred_to_by_its_number() -> None:
    # ASPP's branches are an nn.ModuleList: unnamed, numbered, read in parallel and concatenated
    text = """
name: t
input: [4, 8, 8]
layers:
  - seq:
      name: convs
      layers:
        - seq: {from: input, layers: [{conv: {out: 2, kernel: 1}}, relu]}
        - seq: {from: input, layers: [{conv: {out: 3, kernel: 3, padding: 1}}, relu]}
        - concat: ["0", "1"]
"""
    result = lint_text(text)
    assert result.diagnostics == []
    assert result.graph.node(result.graph.outputs["out"]).shape == (5, 8, 8)
    assert weights(build(text)) == ["convs.0.0.weight", "convs.1.0.weight"]
    (d,) = lint_text(text.replace('["0", "1"]', '["0", "7"]')).diagnostics
    assert (d.code, d.message) == ("undefined-reference", "no layer named `7` in `convs`")


UNET = Path(__file__).parent / "fixtures" / "unet.yaml"


def test_a_block_of_two_inputs(tmp_path: Path) -> None:
    result = compiler.lint_file(UNET)
    assert result.diagnostics == []
    g = result.graph
    assert g.node("u2.merged").inputs == ["d2.1", "u2.up"]  # `skip` is the second `from:`
    assert g.instances["u2"].extra_inputs == [("d2.1", "skip")]
    model = compiler.build(UNET).eval()
    code = codegen_file(result, "unet.yaml")
    assert "def forward(self, x: torch.Tensor, skip: torch.Tensor)" in code
    generated = load_module(code, tmp_path, "unet").Unet().eval()
    generated.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = model(x)
        assert out.shape == (2, 2, 32, 32)
        assert torch.equal(generated(x), out)
        assert torch.allclose(compiler.optimize(model)(x), out, atol=1e-5)


def test_a_block_that_ignores_an_input_still_gets_it(tmp_path: Path) -> None:
    # found by the fuzzer: with `up` left out of the concat, `x` feeds only a dead layer in
    # both `Up`s; `u1(u2, d1)` still takes `u2`, so `u2` runs (lowering raised KeyError)
    text = UNET.read_text(encoding="utf-8")
    text = text.replace("from: [skip, up]", "from: [skip]")
    assert "from: [skip]" in text
    (tmp_path / "unet.yaml").write_text(text, encoding="utf-8")
    result = compiler.lint_file(tmp_path / "unet.yaml")
    assert not result.errors
    model = compiler.build(tmp_path / "unet.yaml").eval()
    code = codegen_file(result, "unet.yaml")
    assert "u2 = self.u2(bottom, d2)" in code and "self.u1(u2, d1)" in code
    generated = load_module(code, tmp_path, "unet2").Unet().eval()
    generated.load_state_dict(model.state_dict())
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(generated(x), model(x))


@pytest.mark.parametrize(
    ("old", "new", "code", "words"),
    [
        ("from: [bottom, d2]", "from: [bottom]", "wrong-inputs", "takes 2 input(s), got 1"),
        ("name: merged", "name: skip", "duplicate-name", "names a layer and an input"),
        ("inputs: [x, skip]", "inputs: [x, x]", "invalid-value", "`x` names two inputs"),
    ],
)
def test_a_block_of_two_inputs_is_checked(old: str, new: str, code: str, words: str) -> None:
    text = UNET.read_text(encoding="utf-8").replace(old, new)
    found = [(d.code, d.message) for d in lint_text(text).diagnostics]
    assert any(c == code and words in m for c, m in found), found


# LR-ASPP: the head reads the backbone's output and a value from inside it (block 4)
TWO_LEVELS = """
name: two_levels
input: [3, 16, 16]
layers:
  - seq:
      name: backbone
      layers:
        - conv: {out: 4, kernel: 3, padding: 1}
        - relu
        - conv: {out: 8, kernel: 3, stride: 2, padding: 1}
  - seq:
      name: head
      from: [backbone, backbone.1]
      layers:
        - conv: {name: high, out: 2, kernel: 1}
        - upsample: {name: up, like: backbone.1, mode: bilinear}
        - conv: {name: low, from: backbone.1, out: 2, kernel: 1}
        - add: [up, low]
"""


def test_a_dotted_name_reads_inside_a_seq_and_a_seq_reads_several_inputs(tmp_path: Path) -> None:
    result = lint_text(TWO_LEVELS)
    assert result.diagnostics == []
    assert result.graph.node("head.low").inputs == ["backbone.1"]
    model = build(TWO_LEVELS).eval()
    assert weights(model) == [
        "backbone.0.weight",
        "backbone.2.weight",
        "head.high.weight",
        "head.low.weight",
    ]
    x = torch.randn(2, 3, 16, 16)
    b, h = model.backbone, model.head
    low = getattr(b, "1")(getattr(b, "0")(x))
    high = h.high(getattr(b, "2")(low))
    up = torch.nn.functional.interpolate(high, size=low.shape[2:], mode="bilinear")
    with torch.no_grad():
        assert torch.equal(model(x), up + h.low(low))
        # the opened backbone has no forward of its own: the model's forward calls its layers
        with pytest.raises(NotImplementedError):
            model.backbone(x)
        code = codegen_file(result, "two_levels.yaml")
        # the head reads the backbone's layer 1 as its second argument
        assert 'getattr(self.backbone, "1")' in code
        assert "def forward(self, x: torch.Tensor, backbone_1: torch.Tensor)" in code
        generated = load_module(code, tmp_path, "two_levels").TwoLevels().eval()
        generated.load_state_dict(model.state_dict())
        assert torch.equal(generated(x), model(x))


def test_a_layer_read_from_outside_leaves_its_instance_closed() -> None:
    # `backbone.1` is block 1's output: block 1 keeps its forward, `backbone` opens
    text = TWO_LEVELS.replace("        - relu\n", "        - seq: [relu]\n")
    assert lint_text(text).diagnostics == []
    model = build(text).eval()
    x = torch.randn(1, 4, 16, 16)
    assert torch.equal(getattr(model.backbone, "1")(x), torch.relu(x))


@pytest.mark.parametrize(
    ("old", "new", "code", "message"),
    [
        (
            "from: backbone.1,",
            "from: backbone.7,",
            "undefined-reference",
            "no layer named `backbone.7`",
        ),
        (
            "from: backbone.1,",
            "from: backbone..1,",
            "invalid-value",
            "`backbone..1` is not a layer name",
        ),
        ("name: low,", "name: backbone.1,", "invalid-value", "cannot be used as a name"),
        # a second input read by the name of a layer inside: which one is meant?
        (
            "[backbone, backbone.1]",
            "[backbone, backbone.1, stem]",
            "duplicate-name",
            "`stem` is an input of `head` and a name inside it",
        ),
    ],
)
def test_dotted_names_and_several_inputs_are_checked(
    old: str, new: str, code: str, message: str
) -> None:
    text = TWO_LEVELS.replace(
        "  - seq:\n      name: backbone",
        "  - conv: {name: stem, out: 3, kernel: 1}\n  - seq:\n      name: backbone",
    )
    text = text.replace("name: high,", "name: stem,")
    assert old in text
    diags = lint_text(text.replace(old, new)).diagnostics
    assert [d.code for d in diags][:1] == [code], [d.message for d in diags]
    assert message in diags[0].message
    assert diags[0].span is not None
