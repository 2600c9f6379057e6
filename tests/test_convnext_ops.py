"""ConvNeXt's ops as torch computes them: stochastic depth's training noise, the layer norm over
the channels of a map, the layer scale's bare parameter, linear on the last dimension, and the
diagnostics of `permute`, `mean` and `group_norm`."""

from __future__ import annotations

import pytest
import yaml

from compiler.pipeline import lint_text

torch = pytest.importorskip("torch")
from compiler import build  # noqa: E402  (imports torch)


def _spec(shape: list[int], *layers: str) -> dict:
    rows = "".join(f"  - {layer}\n" for layer in layers)
    return yaml.safe_load(f"input: {shape}\nlayers:\n{rows}")


def _codes(shape: list[int], *layers: str) -> list[str]:
    rows = "".join(f"  - {layer}\n" for layer in layers)
    return [d.code for d in lint_text(f"input: {shape}\nlayers:\n{rows}").diagnostics]


@pytest.mark.parametrize("p", [0.25, 0.5, 0.75])
def test_stochastic_depth_row_drops_whole_samples_and_rescales_the_rest(p):
    torch.manual_seed(0)
    module = build(_spec([3, 4, 4], f"stochastic_depth: {p}")).train()
    x = torch.rand(4000, 3, 4, 4) + 1.0
    ratio = module(x) / x
    per_sample = ratio.flatten(1)
    # every sample is either dropped or kept whole, scaled by 1 / (1 - p)
    kept = per_sample[:, 0] != 0
    assert torch.allclose(per_sample[kept], torch.full_like(per_sample[kept], 1 / (1 - p)))
    assert torch.all(per_sample[~kept] == 0)
    # bernoulli(1 - p) per sample: 4000 draws land within 5 standard deviations
    sd = (p * (1 - p) / 4000) ** 0.5
    assert abs(kept.float().mean().item() - (1 - p)) < 5 * sd
    assert torch.equal(module.eval()(x), x)


def test_stochastic_depth_batch_drops_the_whole_batch_or_none():
    torch.manual_seed(0)
    module = build(_spec([2, 3, 3], "stochastic_depth: {p: 0.5, mode: batch}")).train()
    x = torch.rand(8, 2, 3, 3) + 1.0
    outcomes = set()
    for _ in range(40):
        ratios = (module(x) / x).unique()
        assert len(ratios) == 1
        outcomes.add(round(ratios.item(), 6))
    assert outcomes == {0.0, 2.0}


def test_stochastic_depth_takes_torchvisions_range_of_p():
    assert _codes([3, 4, 4], "stochastic_depth: 1") == []
    assert _codes([3, 4, 4], "stochastic_depth: 1.5") == ["invalid-value"]
    assert _codes([3, 4, 4], "stochastic_depth: -0.1") == ["invalid-value"]
    module = build(_spec([3, 4, 4], "stochastic_depth: 1")).train()
    assert torch.count_nonzero(module(torch.rand(5, 3, 4, 4) + 1)) == 0


def test_layer_norm_over_channels_normalises_each_position():
    module = build(_spec([6, 3, 5], "layer_norm: {eps: 1.0e-6}")).eval()
    (norm,) = [m for m in module.modules() if isinstance(m, torch.nn.LayerNorm)]
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-1, 1)
    x = torch.randn(2, 6, 3, 5)
    mean = x.mean(1, keepdim=True)
    var = x.var(1, unbiased=False, keepdim=True)
    want = (x - mean) / torch.sqrt(var + 1e-6) * norm.weight.view(-1, 1, 1) + norm.bias.view(
        -1, 1, 1
    )
    assert torch.allclose(module(x), want, atol=1e-5)
    assert [k for k, _ in module.state_dict().items()] == [
        "layer_norm_1.weight",
        "layer_norm_1.bias",
    ]


def test_layer_norm_over_the_last_dim_is_nn_layer_norm():
    module = build(_spec([6, 3, 5], "layer_norm: last")).eval()
    x = torch.randn(2, 6, 3, 5)
    assert torch.allclose(module(x), torch.nn.functional.layer_norm(x, (5,)), atol=1e-6)


def test_layer_scale_is_a_bare_parameter_named_after_the_layer():
    spec = _spec([4, 3, 3], "seq: {name: blk, layers: [{layer_scale: {name: gamma, init: 0.5}}]}")
    module = build(spec)
    state = module.state_dict()
    assert list(state) == ["blk.gamma"]
    assert torch.equal(state["blk.gamma"], torch.full((4, 1, 1), 0.5))
    x = torch.randn(2, 4, 3, 3)
    assert torch.equal(module(x), 0.5 * x)


def test_layer_scale_of_features_has_one_value_per_feature():
    module = build(_spec([3, 4, 4], "flatten", "linear: 5", "layer_scale: 2.0"))
    assert module.state_dict()["layer_scale_1"].shape == (5,)


def test_linear_over_the_last_dim_counts_every_position():
    result = lint_text("input: [4, 6, 8]\nlayers:\n  - linear: {out: 3, over: last}\n")
    assert result.diagnostics == []
    node = result.graph.nodes()[-1]
    assert node.shape == (4, 6, 3)
    assert node.params == 8 * 3 + 3
    assert node.macs == 4 * 6 * 3 * 8  # output elements x in_features
    module = build(_spec([4, 6, 8], "linear: {out: 3, over: last}"))
    (linear,) = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
    x = torch.randn(2, 4, 6, 8)
    assert torch.equal(module(x), linear(x))


def test_linear_on_an_unflattened_map_is_still_an_error_without_over_last():
    assert _codes([4, 6, 8], "linear: 3") == ["unflattened-linear"]
    assert _codes([4, 6, 8], "linear: {out: 3, in: 7, over: last}") == ["feature-mismatch"]


@pytest.mark.parametrize(
    ("dims", "shape"),
    [("[0, 2, 3, 1]", (5, 6, 4)), ("[0, 3, 1, 2]", (6, 4, 5)), ("[0, 1, 2, 3]", (4, 5, 6))],
)
def test_permute_shapes_are_torchs(dims, shape):
    result = lint_text(f"input: [4, 5, 6]\nlayers:\n  - permute: {dims}\n")
    assert result.graph.nodes()[-1].shape == shape
    module = build(_spec([4, 5, 6], f"permute: {dims}"))
    assert tuple(module(torch.zeros(1, 4, 5, 6)).shape[1:]) == shape


@pytest.mark.parametrize(
    "dims", ["[0, 2, 1]", "[0, 1, 2, 2]", "[1, 0, 2, 3]", "[0, 1, 2, 3, 4]", "[0, 1, 2, 4]"]
)
def test_permute_that_is_no_order_of_the_dims_is_reported(dims):
    assert _codes([4, 5, 6], f"permute: {dims}") == ["invalid-dims"]


@pytest.mark.parametrize(
    ("layer", "shape"),
    [
        ("mean: [2, 3]", (4,)),
        ("mean: [-1]", (4, 5)),
        ("mean: {dims: [2, 3], keepdim: true}", (4, 1, 1)),
        ("mean: [1]", (5, 6)),
    ],
)
def test_mean_shapes_are_torchs(layer, shape):
    result = lint_text(f"input: [4, 5, 6]\nlayers:\n  - {layer}\n")
    assert result.graph.nodes()[-1].shape == shape
    x = torch.randn(2, 4, 5, 6)
    out = build(_spec([4, 5, 6], layer))(x)
    assert tuple(out.shape[1:]) == shape


@pytest.mark.parametrize("dims", ["[0]", "[4]", "[2, 2]", "[2, -2]", "[1, 2, 3]"])
def test_mean_over_the_batch_or_missing_dims_is_reported(dims):
    assert _codes([4, 5, 6], f"mean: {dims}") == ["invalid-dims"]


def test_group_norm_groups_must_divide_the_channels():
    assert _codes([6, 4, 4], "group_norm: 4") == ["invalid-groups"]
    module = build(_spec([6, 4, 4], "group_norm: 3")).eval()
    x = torch.randn(2, 6, 4, 4)
    assert torch.allclose(module(x), torch.nn.functional.group_norm(x, 3), atol=1e-6)
