"""scikit-learn's bundled 8x8 handwritten digits (1797 images, shipped with the package).

Pixels are integers 0..16 in the source; :func:`load_digits_tensor` scales them to [-1, 1],
the range the diffusion models here work in, and :func:`to_uint8_levels` maps back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.datasets import load_digits


@dataclass(frozen=True)
class Digits:
    images: torch.Tensor  # (N, 1, 8, 8), float32 in [-1, 1]
    labels: torch.Tensor  # (N,), int64 in 0..9


def load_digits_tensor(*, upscale: int = 1) -> Digits:
    """All 1797 digits as tensors in [-1, 1]; ``upscale=2`` gives 16x16 by pixel repetition."""
    if upscale not in (1, 2):
        raise ValueError(f"upscale must be 1 (8x8) or 2 (16x16), got {upscale}")
    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32)) / 16.0 * 2.0 - 1.0
    x = x[:, None]
    if upscale == 2:
        x = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    return Digits(images=x.contiguous(), labels=torch.from_numpy(bunch.target.astype(np.int64)))


def to_uint8_levels(x: torch.Tensor, levels: int = 17) -> torch.Tensor:
    """Map [-1, 1] back to integer levels 0..levels-1 (17 for the source's 0..16 pixels)."""
    return ((x.clamp(-1, 1) + 1) / 2 * (levels - 1)).round().to(torch.int64)
