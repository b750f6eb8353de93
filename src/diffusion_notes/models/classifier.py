"""A small CNN that recognises 8x8 digits; its penultimate layer feeds the digits metrics.

The classifier plays the part Inception-v3 plays for FID (Heusel et al. 2017): a network
trained on real data whose hidden features summarise what a digit looks like. 16x16 inputs
(the 2x upscaled digits) are average-pooled back to 8x8 first, so one network serves both.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class DigitClassifier(nn.Module):
    """conv(32) -> conv(64) -> pool -> conv(64) -> flatten -> fc(``feature_dim``) -> fc(10).

    Inputs are (B, 1, 8, 8) or (B, 1, 16, 16) images in [-1, 1]; :meth:`features` returns the
    ``feature_dim`` penultimate activations, :meth:`forward` the 10 logits.
    """

    def __init__(self, feature_dim: int = 64, num_classes: int = 10) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.conv3 = nn.Conv2d(64, 64, 3, padding=1)
        self.fc = nn.Linear(64 * 4 * 4, feature_dim)
        self.head = nn.Linear(feature_dim, num_classes)
        self.dropout = nn.Dropout(0.3)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 1 or x.shape[2:] not in ((8, 8), (16, 16)):
            raise ValueError(f"expected images of shape (B, 1, 8|16, 8|16), got {tuple(x.shape)}")
        if x.shape[-1] == 16:
            x = F.avg_pool2d(x, 2)
        h = F.relu(self.conv1(x))
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)  # 8x8 -> 4x4
        h = F.relu(self.conv3(h))
        return F.relu(self.fc(h.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))
