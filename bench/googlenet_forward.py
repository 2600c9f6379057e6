"""Forward time of `compiler.build("specs/googlenet.yaml")` against a hand-written PyTorch
GoogLeNet of the same structure: batch 8, 224x224, eval mode, CPU.

Both models hold the same weights (the hand-written one loads the built one's state_dict with
strict=True, and the script checks that their logits are identical), and they are timed in
alternating rounds so that machine noise hits both alike. Prints the median of the per-round
ratios, with min and max, and the same for the hand-written model against a copy of itself:
that A/A ratio is the noise floor of the measurement. Not a test: CI times nothing.

    .venv/bin/python bench/googlenet_forward.py [--rounds 11] [--threads 2]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import torch
from torch import nn

import compiler

ROOT = Path(__file__).resolve().parent.parent


class Inception(nn.Module):
    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
        super().__init__()
        self.branch1 = nn.Sequential(nn.Conv2d(in_channels, ch1x1, 1), nn.ReLU())
        self.branch2 = nn.Sequential(
            nn.Conv2d(in_channels, ch3x3red, 1),
            nn.ReLU(),
            nn.Conv2d(ch3x3red, ch3x3, 3, padding=1),
            nn.ReLU(),
        )
        self.branch3 = nn.Sequential(
            nn.Conv2d(in_channels, ch5x5red, 1),
            nn.ReLU(),
            nn.Conv2d(ch5x5red, ch5x5, 5, padding=2),
            nn.ReLU(),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1), nn.Conv2d(in_channels, pool_proj, 1), nn.ReLU()
        )

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class AuxHead(nn.Module):
    def __init__(self, in_channels, num_classes):
        super().__init__()
        self.pool = nn.AvgPool2d(5, stride=3)
        self.conv = nn.Conv2d(in_channels, 128, 1)
        self.fc1 = nn.Linear(2048, 1024)
        self.dropout = nn.Dropout(0.7)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x):
        x = torch.relu(self.conv(self.pool(x)))
        x = torch.relu(self.fc1(torch.flatten(x, 1)))
        return self.fc2(self.dropout(x))


class GoogLeNet(nn.Module):
    """The paper's GoogLeNet, as a person writes it (the structure of specs/googlenet.yaml)."""

    def __init__(self, num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3)
        self.pool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.norm1 = nn.LocalResponseNorm(5)
        self.conv2_reduce = nn.Conv2d(64, 64, 1)
        self.conv2 = nn.Conv2d(64, 192, 3, padding=1)
        self.norm2 = nn.LocalResponseNorm(5)
        self.pool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
        self.pool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
        self.pool4 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)
        self.pool5 = nn.AvgPool2d(7, stride=1)
        self.dropout = nn.Dropout(0.4)
        self.classifier = nn.Linear(1024, num_classes)
        self.aux1 = AuxHead(512, num_classes)
        self.aux2 = AuxHead(528, num_classes)

    def forward(self, x):
        x = self.pool1(torch.relu(self.conv1(x)))
        x = self.norm1(x)
        x = torch.relu(self.conv2_reduce(x))
        x = self.norm2(torch.relu(self.conv2(x)))
        x = self.pool2(x)
        x = self.inception3b(self.inception3a(x))
        x = self.pool3(x)
        a = self.inception4a(x)
        x = self.inception4c(self.inception4b(a))
        d = self.inception4d(x)
        x = self.pool4(self.inception4e(d))
        x = self.inception5b(self.inception5a(x))
        x = self.classifier(self.dropout(torch.flatten(self.pool5(x), 1)))
        if self.training:
            return x, self.aux1(a), self.aux2(d)
        return x


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def timed(model: nn.Module, x: torch.Tensor, repeat: int, clock=time.perf_counter) -> float:
    start = clock()
    for _ in range(repeat):
        model(x)
    return (clock() - start) / repeat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--repeat", type=int, default=2, help="forward passes per timing")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="cpu: process CPU time, which other processes on a shared machine do not inflate",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    built = compiler.build(ROOT / "specs" / "googlenet.yaml").eval()
    hand = GoogLeNet().eval()
    hand.load_state_dict(built.state_dict(), strict=True)
    x = torch.randn(args.batch, 3, 224, 224)
    with torch.inference_mode():
        assert torch.equal(built(x).logits, hand(x)), "the two models disagree"
        for model in (built, hand):  # warm up
            timed(model, x, 1)
        twin = copy.deepcopy(hand)
        ratios, control, built_s, hand_s = [], [], [], []
        for i in range(args.rounds):
            order = [built, hand, twin]
            order = order[i % 3 :] + order[: i % 3]  # rotate who goes first
            times = {id(m): timed(m, x, args.repeat, CLOCKS[args.clock]) for m in order}
            built_s.append(times[id(built)])
            hand_s.append(times[id(hand)])
            ratios.append(times[id(built)] / times[id(hand)])
            control.append(times[id(twin)] / times[id(hand)])

    print(
        f"GoogLeNet forward, batch {args.batch}, 224x224, eval, CPU, {args.threads} threads, "
        f"{args.rounds} rounds of {args.repeat}, {args.clock} clock"
    )
    print(f"  built from the spec : median {statistics.median(built_s) * 1000:8.1f} ms")
    print(f"  hand-written        : median {statistics.median(hand_s) * 1000:8.1f} ms")
    for label, values in (("built / hand", ratios), ("hand copy / hand", control)):
        print(
            f"  ratio {label:<17}: median {statistics.median(values):.4f} "
            f"(min {min(values):.4f}, max {max(values):.4f})"
        )


if __name__ == "__main__":
    main()
