"""The MNIST networks of seed 004 build and train on real digits.

scikit-learn ships a small set of real handwritten digits (1,797 images of 8x8, from the UCI
optical recognition data set) inside the package, so no download is needed; they are upsampled
to the 28x28 MNIST input size the post's networks expect.
"""

from __future__ import annotations

import pytest

from .conftest import SPECS

torch = pytest.importorskip("torch")
datasets = pytest.importorskip("sklearn.datasets")
from compiler import torchbuild  # noqa: E402


def _digits():
    digits = datasets.load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    images = torch.nn.functional.interpolate(images, size=(28, 28), mode="bilinear")
    images = (images - images.mean()) / images.std()
    labels = torch.tensor(digits.target)
    generator = torch.Generator().manual_seed(0)
    order = torch.randperm(len(labels), generator=generator)
    train, test = order[:1400], order[1400:]
    return images[train], labels[train], images[test], labels[test]


@pytest.mark.parametrize("name", ["mnist_inception.yaml", "mnist_residual.yaml"])
def test_post_network_trains(name):
    torch.manual_seed(0)
    x_train, y_train, x_test, y_test = _digits()
    model = torchbuild.build(SPECS / "posts" / name)
    # the post's optimiser: SGD, lr 0.01, momentum 0.5
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5)
    loss_fn = torch.nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(1)
    losses = []
    model.train()
    for _step in range(300):
        batch = torch.randint(0, len(y_train), (64,), generator=generator)
        optimizer.zero_grad()
        loss = loss_fn(model(x_train[batch]), y_train[batch])
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    print(f"{name}: loss {first:.3f} -> {last:.3f}, test accuracy {accuracy:.3f}")
    assert first > 2.0  # chance level is ln(10) = 2.3
    assert last < first / 4, (first, last)
    assert accuracy > 0.85, accuracy  # chance is 0.10
