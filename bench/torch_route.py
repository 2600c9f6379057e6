"""The torch route: what a user does today instead of `yarch lint specs/googlenet.yaml`.

A Python process that imports torch, builds the GoogLeNet by hand (`handwritten.py`, the same
network as the spec) and counts its parameters. `run.py` times this whole process against the
whole `yarch lint` process; it prints the count so that the benchmark can check it.
"""

import torch
from handwritten import GoogLeNet

if __name__ == "__main__":
    torch.manual_seed(0)
    model = GoogLeNet()
    print(sum(p.numel() for p in model.parameters()))
