"""Static output sizes equal PyTorch's, checked against torch itself on the meta device."""

from __future__ import annotations

import itertools
import random

import pytest

from compiler import lint_text
from compiler.ops.spatial import Window

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _torch_size(fn, size: int) -> int | None:
    x = torch.empty(1, 2, size, size, device="meta")
    try:
        return fn(x).shape[-1]
    except RuntimeError:
        return None


def _cases(n: int, seed: int):
    rng = random.Random(seed)
    for _ in range(n):
        k = rng.randint(1, 7)
        yield (
            rng.randint(1, 40),  # input size
            k,
            rng.randint(1, 4),  # stride
            rng.randint(0, k // 2),  # padding
            rng.randint(1, 3),  # dilation
            rng.random() < 0.5,  # ceil mode
        )


@pytest.mark.parametrize("case", list(_cases(400, 1)))
def test_maxpool_matches_torch(case):
    size, k, s, p, d, ceil = case
    if 2 * p > d * (k - 1) + 1:
        pytest.skip("padding over half the window: covered by the pool-padding rule")
    ours = Window((k, k), (s, s), (p, p), (d, d), ceil).out_size(size, 0)
    theirs = _torch_size(lambda x: F.max_pool2d(x, k, s, p, dilation=d, ceil_mode=ceil), size)
    assert (ours if ours > 0 else None) == theirs


@pytest.mark.parametrize("case", list(_cases(300, 2)))
def test_avgpool_matches_torch(case):
    size, k, s, p, _, ceil = case
    ours = Window((k, k), (s, s), (p, p), (1, 1), ceil).out_size(size, 0)
    theirs = _torch_size(lambda x: F.avg_pool2d(x, k, s, p, ceil_mode=ceil), size)
    assert (ours if ours > 0 else None) == theirs


@pytest.mark.parametrize("case", list(_cases(300, 3)))
def test_conv_matches_torch(case):
    size, k, s, p, d, _ = case
    ours = Window((k, k), (s, s), (p, p), (d, d)).out_size(size, 0)
    weight = torch.empty(4, 2, k, k, device="meta")
    theirs = _torch_size(lambda x: F.conv2d(x, weight, None, s, p, d), size)
    assert (ours if ours > 0 else None) == theirs


@pytest.mark.parametrize(("k", "p"), list(itertools.product(range(1, 8), range(0, 5))))
def test_pool_padding_rule_matches_torch(k, p):
    spec = f"input: [2, 32, 32]\nlayers:\n  - maxpool: {{kernel: {k}, stride: 1, padding: {p}}}\n"
    flagged = any(d.code == "pool-padding" for d in lint_text(spec).diagnostics)
    rejected = _torch_size(lambda x: F.max_pool2d(x, k, 1, p), 32) is None
    assert flagged == rejected


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_same_padding_matches_torch_for_stride_one():
    for size, k in itertools.product(range(1, 20), range(1, 8)):
        ours = Window((k, k), (1, 1), "same").out_size(size, 0)
        weight = torch.empty(4, 2, k, k, device="meta")
        assert ours == _torch_size(lambda x, w=weight: F.conv2d(x, w, padding="same"), size)


def test_params_and_macs_match_torch_modules():
    spec = """
input: [6, 20, 20]
layers:
  - conv: {out: 12, kernel: [3, 5], stride: 2, padding: [1, 2], groups: 3}
  - bn
  - conv: {out: 8, kernel: 1, bias: false}
  - flatten
  - linear: 10
"""
    result = lint_text(spec)
    assert result.diagnostics == []
    nodes = result.graph.nodes()
    modules = [
        torch.nn.Conv2d(6, 12, (3, 5), 2, (1, 2), groups=3),
        torch.nn.BatchNorm2d(12),
        torch.nn.Conv2d(12, 8, 1, bias=False),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 10 * 10, 10),
    ]
    x = torch.zeros(1, 6, 20, 20)
    for node, module in zip(nodes[1:], modules, strict=True):
        x = module(x)
        assert node.shape == tuple(x.shape[1:])
        assert node.params == sum(p.numel() for p in module.parameters())
    conv = nodes[1]
    assert conv.macs == 12 * (6 // 3) * 3 * 5 * 10 * 10


@pytest.mark.parametrize("size", range(1, 14))
def test_chunk_parts_match_torch(size):
    """Every part of `x.chunk(chunks, 1)` has the size yarch infers, and a part torch does not
    make is yarch's `empty-chunk`."""
    x = torch.empty(1, size, 2, 2, device="meta")
    for chunks in range(2, 9):
        for part in range(chunks):
            spec = (
                f"input: [{size}, 2, 2]\nlayers:\n  - chunk: {{chunks: {chunks}, part: {part}}}\n"
            )
            result = lint_text(spec)
            parts = x.chunk(chunks, 1)
            if part < len(parts):
                assert not result.diagnostics, (size, chunks, part)
                graph = result.graph
                assert graph.node(graph.outputs["out"]).shape == tuple(parts[part].shape[1:])
            else:
                assert [d.code for d in result.diagnostics] == ["empty-chunk"], (size, chunks)


@pytest.mark.parametrize("seed", range(40))
def test_mul_broadcasts_as_torch(seed):
    rng = random.Random(seed)
    shapes = [tuple(rng.choice((1, 2, 3)) for _ in range(3)) for _ in range(rng.randint(2, 3))]
    spec = "input: [3, 3, 3]\nlayers:\n" + "".join(
        f"  - adaptive_avgpool: {{name: p{i}, from: input, output: [{s[1]}, {s[2]}]}}\n"
        f"  - conv: {{name: c{i}, out: {s[0]}, kernel: 1}}\n"
        for i, s in enumerate(shapes)
    )
    spec += f"  - mul: [{', '.join(f'c{i}' for i in range(len(shapes)))}]\n"
    result = lint_text(spec)
    graph = result.graph
    try:
        want = tuple(torch.broadcast_shapes(*[(2, *s) for s in shapes])[1:])
    except RuntimeError:
        assert [d.code for d in result.diagnostics] == ["mul-mismatch"], shapes
        return
    assert not result.diagnostics, shapes
    assert graph.node(graph.outputs["out"]).shape == want


@pytest.mark.parametrize(("sizes", "part"), [([2, 4], 0), ([2, 4], 1), ([1, 1, 4], 2)])
def test_split_is_torch_split(sizes: list[int], part: int) -> None:
    torch = pytest.importorskip("torch")
    from compiler import lint_text

    text = f"name: t\ninput: [6, 5, 5]\nlayers:\n  - split: {{sizes: {sizes}, part: {part}}}\n"
    result = lint_text(text)
    assert result.diagnostics == []
    want = torch.zeros(1, 6, 5, 5).split(sizes, 1)[part].shape[1:]
    assert result.graph.node("split_1").shape == tuple(want)
