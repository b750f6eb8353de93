"""Measured stroke properties of 8x8 digit images: how thick, how big, how slanted.

The map's labs need properties a caption can name ("a thick seven", "a small zero, tilted
left") and an edit must keep (an edited "3" should stay as thick and as slanted as it was).
Each property here is a plain function of the pixels, so generated images are measured by the
same code as the training digits.

Images are in the package's range [-1, 1] (background -1); ink is the pixel value mapped to
[0, 1]. On the 1797 digits the mean thickness is 0.305 (std 0.034), the slant -0.04
(std 0.12) and the size 2.58 px (std 0.19).

    >>> import torch
    >>> x = -torch.ones(1, 1, 8, 8); x[0, 0, 2:6, 3] = 1.0   # an upright bar
    >>> abs(round(float(slant(x)[0]), 3))
    0.0
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def ink(images: torch.Tensor) -> torch.Tensor:
    """Per-pixel ink in [0, 1] of ``(N, 1, H, W)`` images in [-1, 1] (clamped)."""
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"expected images of shape (N, 1, H, W), got {tuple(images.shape)}")
    return ((images.clamp(-1, 1) + 1) / 2).squeeze(1)


def thickness(images: torch.Tensor) -> torch.Tensor:
    """Mean ink over the whole image, shape ``(N,)``: thicker strokes put more ink down."""
    return ink(images).mean(dim=(1, 2))


def _moments(images: torch.Tensor) -> tuple[torch.Tensor, ...]:
    w = ink(images)
    h, wd = w.shape[-2:]
    ys = torch.arange(h, dtype=w.dtype, device=w.device).view(1, h, 1)
    xs = torch.arange(wd, dtype=w.dtype, device=w.device).view(1, 1, wd)
    mass = w.sum(dim=(1, 2)).clamp_min(1e-6)
    my = (w * ys).sum(dim=(1, 2)) / mass
    mx = (w * xs).sum(dim=(1, 2)) / mass
    dy = ys - my.view(-1, 1, 1)
    dx = xs - mx.view(-1, 1, 1)
    vyy = (w * dy * dy).sum(dim=(1, 2)) / mass
    vxx = (w * dx * dx).sum(dim=(1, 2)) / mass
    vxy = (w * dx * dy).sum(dim=(1, 2)) / mass
    return mass, vyy, vxx, vxy


def slant(images: torch.Tensor) -> torch.Tensor:
    """Shear of the ink, shape ``(N,)``: the slope dx/dy of the ink's principal regression.

    Rows grow downwards, so a digit whose top leans right has ink further right at small y:
    the covariance of x and y is negative. The sign is flipped so that **positive slant means
    the top leans right** ("tilted right"), negative "tilted left"; 0 is upright.
    """
    _, vyy, _, vxy = _moments(images)
    return -vxy / vyy.clamp_min(1e-6)


def size(images: torch.Tensor) -> torch.Tensor:
    """Spread of the ink, shape ``(N,)``: ``sqrt(var_y + var_x)`` in pixels (the radius of
    gyration), so a small digit drawn in the middle of the square scores low."""
    _, vyy, vxx, _ = _moments(images)
    return (vyy + vxx).sqrt()


@dataclass(frozen=True)
class StrokeProperties:
    """The three measured properties of a batch, each a tensor of shape ``(N,)``."""

    thickness: torch.Tensor
    slant: torch.Tensor
    size: torch.Tensor


def measure(images: torch.Tensor) -> StrokeProperties:
    """Thickness, slant and size of every image of a batch."""
    return StrokeProperties(thickness(images), slant(images), size(images))
