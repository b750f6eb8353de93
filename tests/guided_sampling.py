"""Run the package samplers on a Denoiser (guided or not) with fixed settings, for the tests."""

from __future__ import annotations

import torch

from diffusion_notes.denoiser import Denoiser
from diffusion_notes.samplers import sample_ddim, sample_ddpm


def sample_ddpm_den(den: Denoiser, x: torch.Tensor, pairs, generator: torch.Generator):
    return sample_ddpm(den, x, pairs, generator=generator, progress=False)


def sample_ddim_den(den: Denoiser, x: torch.Tensor, pairs, generator: torch.Generator):
    return sample_ddim(den, x, pairs, eta=0.0, generator=generator, progress=False)
