"""Squeeze-excitation and the SE-ResNet basic block used by DuRB-S and DuRB-US."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .conv import zero_padded_conv


class SqueezeExcitation(nn.Module):
    """Global average pool -> Linear(C, hidden) -> ReLU -> Linear(hidden, C) -> sigmoid -> scale.

    ``hidden`` is the hidden width itself, not a reduction ratio.
    """

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.fc(x.mean(dim=(2, 3))))
        return x * gate[:, :, None, None]


class SEBasicBlock(nn.Module):
    """SE-ResNet basic block: relu(SE(n2(c2(relu(n1(c1(x)))))) + x), bias-free 3x3 convs.

    With ``norm=False`` the BN layers are absent (DuRN-US).
    """

    def __init__(self, channels: int, hidden: int, *, norm: bool):
        super().__init__()
        self.conv1 = zero_padded_conv(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels) if norm else nn.Identity()
        self.conv2 = zero_padded_conv(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels) if norm else nn.Identity()
        self.se = SqueezeExcitation(channels, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.se(self.bn2(self.conv2(y)))
        return F.relu(y + x)
