"""Sinusoidal embedding of the timestep, shared by every denoiser in the package.

Ho et al. feed the step ``t`` to the network through the Transformer's sinusoidal position
embedding (Ho et al. 2020, app. B): for ``i < d/2``,
``emb[2i] = sin(t / 10000^(2i/d))`` and ``emb[2i+1] = cos(...)``. We keep the sines in the
first half and the cosines in the second (the order does not matter to a linear layer).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Map integer (or real) timesteps ``t`` of shape (B,) to (B, dim) sinusoidal features."""
    if dim < 2 or dim % 2:
        raise ValueError(f"embedding dim must be an even number >= 2, got {dim}")
    if t.ndim != 1:
        raise ValueError(f"t must have shape (batch,), got {tuple(t.shape)}")
    half = dim // 2
    # frequencies 1 / max_period^(k/half), k = 0..half-1, from 1 down to ~1/max_period
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    )
    args = t.to(torch.float32)[:, None] * freqs[None, :]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


class TimeEmbedding(nn.Module):
    """Sinusoidal features of ``t`` followed by a two-layer MLP (and an optional label table).

    Class conditioning adds a learned vector per label. Row ``num_classes`` of the table is the
    "no label" token used by classifier-free guidance (Ho & Salimans 2022): training drops the
    label to it with some probability, and sampling evaluates the model with and without it.

    ``guidance_embedding=True`` adds a second sinusoidal-plus-MLP branch for the guidance scale
    ``w`` (a latent consistency model's "w-conditioning" [@luo2023latent]; ``w`` is embedded as
    ``1000 w``, as diffusers' LCM pipeline does). Its last layer starts at zero, so a student
    initialised from a teacher's weights starts out ignoring ``w``. Without the flag the module
    has exactly the parameters it always had.
    """

    def __init__(
        self,
        freq_dim: int,
        out_dim: int,
        num_classes: int | None = None,
        *,
        guidance_embedding: bool = False,
    ) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.num_classes = num_classes
        self.mlp = nn.Sequential(
            nn.Linear(freq_dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim)
        )
        self.label = nn.Embedding(num_classes + 1, out_dim) if num_classes else None
        self.guidance: nn.Sequential | None = None
        if guidance_embedding:
            self.guidance = nn.Sequential(
                nn.Linear(freq_dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim)
            )
            nn.init.zeros_(self.guidance[2].weight)
            nn.init.zeros_(self.guidance[2].bias)

    def forward(
        self, t: torch.Tensor, y: torch.Tensor | None = None, w: torch.Tensor | None = None
    ) -> torch.Tensor:
        emb = self.mlp(timestep_embedding(t, self.freq_dim))
        if self.guidance is None:
            if w is not None:
                raise ValueError("a guidance scale w was given to a model built without "
                                 "guidance_embedding=True")
        else:
            if w is None:
                raise ValueError("this model is w-conditioned: pass the guidance scale w")
            w = torch.as_tensor(w, dtype=torch.float32, device=t.device).reshape(-1)
            w = w.expand(t.shape[0]) if w.numel() == 1 else w
            if w.shape != t.shape:
                raise ValueError(f"w must be a scalar or have shape {tuple(t.shape)}, "
                                 f"got {tuple(w.shape)}")
            emb = emb + self.guidance(timestep_embedding(1000.0 * w, self.freq_dim))
        if self.label is None:
            if y is not None:
                raise ValueError("labels y were given to a model built without num_classes")
            return emb
        if y is None:  # no label at all: the "unconditional" token
            y = torch.full_like(t, self.num_classes, dtype=torch.long)
        if y.shape != t.shape:
            raise ValueError(f"y must have shape {tuple(t.shape)} like t, got {tuple(y.shape)}")
        if bool(((y < 0) | (y > self.num_classes)).any()):
            raise ValueError(
                f"labels must lie in 0..{self.num_classes} ({self.num_classes} = no label)"
            )
        return emb + self.label(y)
