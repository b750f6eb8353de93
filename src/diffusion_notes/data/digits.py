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


HELD_OUT_FRACTION = 0.2
HELD_OUT_SEED = 0


def split_indices(
    labels: torch.Tensor, held_out: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stratified split: within every class, a seeded shuffle sends ``held_out`` of it aside."""
    if not 0.0 < held_out < 1.0:
        raise ValueError(f"held_out must be a fraction in (0, 1), got {held_out}")
    g = torch.Generator().manual_seed(seed)
    train, test = [], []
    for c in labels.unique():
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        n_test = round(held_out * len(idx))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return torch.cat(train).sort().values, torch.cat(test).sort().values


def digits_split(*, upscale: int = 1) -> tuple[Digits, Digits]:
    """``(train, held_out)``: the fixed stratified 80 / 20 split of the 1797 digits (1438 / 359).

    It is the split the digit classifier of :mod:`diffusion_notes.metrics` is trained and
    tested on, so held-out digits are unseen by the classifier and by every diffusion model
    trained on ``data="digits_train"``: sample quality is measured against them.
    """
    d = load_digits_tensor(upscale=upscale)
    tr, te = split_indices(d.labels, HELD_OUT_FRACTION, HELD_OUT_SEED)
    return Digits(d.images[tr], d.labels[tr]), Digits(d.images[te], d.labels[te])


def to_uint8_levels(x: torch.Tensor, levels: int = 17) -> torch.Tensor:
    """Map [-1, 1] back to integer levels 0..levels-1 (17 for the source's 0..16 pixels)."""
    return ((x.clamp(-1, 1) + 1) / 2 * (levels - 1)).round().to(torch.int64)
