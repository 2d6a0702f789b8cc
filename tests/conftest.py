"""Shared fixtures: the offline model (loaded once) and small hand-built networks."""

import matplotlib
import pytest
import torch
from torch import nn

matplotlib.use("Agg")


@pytest.fixture(scope="session")
def model():
    import vizkit

    return vizkit.load_model("efficientnet_lite0", verbose=False, device="cpu")


class TinyNet(nn.Module):
    """conv -> in-place ReLU -> conv -> ReLU6 -> global average pool -> linear; no .features."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(4, 5, 3, padding=1)
        self.act2 = nn.ReLU6()
        self.head = nn.Linear(5, 3)

    def forward(self, x):
        x = self.act2(self.conv2(self.act1(self.conv1(x))))
        return self.head(x.mean((2, 3)))


@pytest.fixture
def tiny():
    return TinyNet().eval()
