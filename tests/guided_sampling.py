"""Run the package samplers on a Denoiser (guided or not) with fixed settings, for the tests."""

from __future__ import annotations

import torch

from diffusion_notes.denoiser import Denoiser
from diffusion_notes.samplers import sample_ddim, sample_ddpm


def _as_model(den: Denoiser):
    return lambda x, tt: den(x, int(tt[0])).eps


def sample_ddpm_den(den: Denoiser, x: torch.Tensor, pairs, generator: torch.Generator):
    return sample_ddpm(_as_model(den), x, den.schedule, pairs, generator=generator,
                       progress=False)


def sample_ddim_den(den: Denoiser, x: torch.Tensor, pairs, generator: torch.Generator):
    return sample_ddim(_as_model(den), x, den.schedule, pairs, eta=0.0, generator=generator,
                       progress=False)
