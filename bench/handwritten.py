"""The paper's GoogLeNet written by hand in PyTorch, as a person writes it.

It has the structure of `specs/googlenet.yaml` (LRN, 5x5 branches, ceil-mode pooling, two
auxiliary heads) and exactly its parameters, so a built module's `state_dict` loads into it with
`strict=True`. The benchmarks compare yarch against it: constructing it, running it, and the
torch route of counting its parameters (`torch_route.py`).
"""

from __future__ import annotations

import torch
from torch import nn


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
