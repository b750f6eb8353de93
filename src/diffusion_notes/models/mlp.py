"""A small residual MLP that predicts the noise (or x0, or v) of 2-D points.

Input ``x_t`` of shape (B, D) and integer steps ``t`` of shape (B,); output (B, D). The step
enters through sinusoidal features and a small MLP (:class:`TimeEmbedding`), added to the
hidden state of every residual block, the same way the DDPM UNet injects it into each
ResNet block (Ho et al. 2020, app. B).
"""

from __future__ import annotations

import torch
from torch import nn

from diffusion_notes.models.embeddings import TimeEmbedding


class _ResBlock(nn.Module):
    # No normalisation layers: at large t the target eps is close to x_t itself, so the output
    # must be able to grow with |x_t|; a LayerNorm in the path caps it, and samples that start
    # in the Gaussian's tails are then mis-predicted (measured: stray points far off the data).
    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)
        self.act = nn.SiLU()

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        z = self.fc1(self.act(h))
        z = self.fc2(self.act(z + emb))  # time (and label) conditioning
        return h + z


class MLPDenoiser(nn.Module):
    """Residual MLP denoiser for low-dimensional data (2-D toy sets).

    ``model(xt, t)`` or, when built with ``num_classes``, ``model(xt, t, y)`` with
    ``y == num_classes`` meaning "no label".
    """

    def __init__(
        self,
        dim: int = 2,
        width: int = 128,
        depth: int = 3,
        freq_dim: int = 64,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        if dim < 1 or width < 1 or depth < 1:
            raise ValueError(f"dim, width, depth must be >= 1, got {dim}, {width}, {depth}")
        self.dim = dim
        self.num_classes = num_classes
        self.embed = TimeEmbedding(freq_dim, width, num_classes)
        self.inp = nn.Linear(dim, width)
        self.blocks = nn.ModuleList(_ResBlock(width) for _ in range(depth))
        self.out = nn.Linear(width, dim)
        nn.init.zeros_(self.out.weight)  # start as the zero predictor: a stable first step
        nn.init.zeros_(self.out.bias)

    def forward(
        self, xt: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        if xt.ndim != 2 or xt.shape[1] != self.dim:
            raise ValueError(f"xt must have shape (batch, {self.dim}), got {tuple(xt.shape)}")
        if t.ndim == 0:
            t = t.expand(xt.shape[0])
        emb = self.embed(t, y)
        h = self.inp(xt)
        for block in self.blocks:
            h = block(h, emb)
        return self.out(torch.nn.functional.silu(h))
