"""Two-dimensional toy data sets, generated on the fly (nothing is downloaded).

Every set is scaled to roughly unit spread so that one noise schedule suits them all.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

Toy2DName = Literal["swiss_roll", "moons", "rings", "checkerboard"]
TOY2D_NAMES: tuple[str, ...] = ("swiss_roll", "moons", "rings", "checkerboard")


def make_toy2d(name: Toy2DName, n: int, *, seed: int = 0, noise: float = 0.05) -> torch.Tensor:
    """Return ``n`` points of the named 2-D set as a float32 tensor of shape (n, 2)."""
    if name not in TOY2D_NAMES:
        raise ValueError(f"unknown toy 2-D set {name!r}; choose one of {', '.join(TOY2D_NAMES)}")
    if n <= 0:
        raise ValueError(f"n must be a positive number of points, got {n}")
    g = torch.Generator().manual_seed(seed)
    if name == "swiss_roll":
        # angle grows along the roll; radius proportional to angle
        theta = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=g, dtype=torch.float64))
        x = torch.stack([theta * torch.cos(theta), theta * torch.sin(theta)], dim=1) / 7.5
    elif name == "moons":
        upper = torch.rand(n, generator=g, dtype=torch.float64) < 0.5
        a = math.pi * torch.rand(n, generator=g, dtype=torch.float64)
        x = torch.stack([torch.cos(a), torch.sin(a)], dim=1)
        shifted = torch.stack([1 - torch.cos(a), 0.5 - torch.sin(a)], dim=1)
        x = torch.where(upper[:, None], x, shifted)
        x = (x - torch.tensor([0.5, 0.25], dtype=torch.float64)) / 0.8
    elif name == "rings":
        outer = torch.rand(n, generator=g, dtype=torch.float64) < 0.5
        a = 2 * math.pi * torch.rand(n, generator=g, dtype=torch.float64)
        r = torch.where(outer, torch.full_like(a, 1.5), torch.full_like(a, 0.6))
        x = torch.stack([r * torch.cos(a), r * torch.sin(a)], dim=1)
    else:  # checkerboard: uniform on the black squares of a 4x4 board on [-2, 2]^2
        u = torch.rand(n, 2, generator=g, dtype=torch.float64) * 4 - 2
        cell = torch.floor(u + 2).to(torch.int64)
        flip = (cell[:, 0] + cell[:, 1]) % 2 == 1
        u[:, 0] = torch.where(flip, torch.where(u[:, 0] > 0, u[:, 0] - 1, u[:, 0] + 1), u[:, 0])
        x = u / 1.15
    x = x + noise * torch.randn(x.shape, generator=g, dtype=torch.float64)
    return x.to(torch.float32)
