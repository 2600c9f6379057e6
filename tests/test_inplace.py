"""Inplace activations (issue 17): `nn.ReLU(inplace=True)` where torchvision writes it, after a
conv, a linear layer, a norm or a sum whose value nothing else reads (`lower._inplace`), and
nowhere else; a model built so computes exactly the values and gradients of one without."""

from __future__ import annotations

import pytest

from compiler import lint_file, lint_text
from compiler.lower import lower

from .conftest import buildable_library

LIBRARY = buildable_library()


def _inplace_layers(text: str) -> set[str]:
    root = lower(lint_text(text).graph)
    found = set()
    stack = [root]
    while stack:
        c = stack.pop()
        for child in c.children:
            if hasattr(child, "children"):
                stack.append(child)
            elif child.call is not None and ("inplace", True, False) in child.call.kwargs:
                found.add(child.node.id)
    return found


HEAD = "input: [3, 8, 8]\nlayers:\n"


@pytest.mark.parametrize(
    ("layers", "inplace"),
    [
        ("  - conv: {name: c, out: 4, kernel: 3}\n  - relu: {name: r}\n", {"r"}),
        ("  - conv: {name: c, out: 4, kernel: 3}\n  - bn\n  - relu6: {name: r}\n", {"r"}),
        # the conv's value is read twice: overwriting it would change the other reader's input
        (
            "  - conv: {name: c, out: 4, kernel: 3}\n  - relu: {name: r}\n"
            "  - add: {name: s, from: [c, r]}\n",
            set(),
        ),
        ("  - relu: {name: r}\n", set()),  # the caller's tensor
        ("  - sigmoid: {name: g}\n  - relu: {name: r}\n", set()),  # sigmoid's backward reads it
        ("  - gelu: {name: g}\n", set()),  # an op that does not take inplace
        (  # the network returns the conv's value
            "  - conv: {name: c, out: 4, kernel: 3}\n  - relu: {name: r}\n"
            "outputs: {feat: c, act: r}\n",
            set(),
        ),
    ],
)
def test_where_an_activation_is_inplace(layers, inplace):
    assert _inplace_layers(HEAD + layers) == inplace


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: p.stem)
def test_inplace_changes_no_value_and_no_gradient(path, monkeypatch):
    torch = pytest.importorskip("torch")
    from compiler import build
    from compiler import lower as lowering

    fast = build(path)
    monkeypatch.setattr(lowering, "_inplace", lambda graph, node: False)
    plain = build(path)
    plain.load_state_dict(fast.state_dict())
    assert any("inplace=True" in repr(m) for m in fast.modules()) or "mnist" in path.stem
    assert not any("inplace=True" in repr(m) for m in plain.modules())
    x = torch.randn(
        2, *lint_file(path).graph.input_shape, generator=torch.Generator().manual_seed(0)
    )
    grads = []
    for model in (fast, plain):
        model.train()
        torch.manual_seed(1)  # the same dropout masks
        out = model(x)
        outs = [o for o in (out if isinstance(out, tuple) else [out]) if o is not None]
        sum(o.square().sum() for o in outs).backward()
        grads.append({k: p.grad for k, p in model.named_parameters()})
    for key, grad in grads[0].items():
        assert torch.equal(grad, grads[1][key]), key
