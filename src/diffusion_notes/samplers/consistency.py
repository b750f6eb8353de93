"""Multistep consistency sampling as latent consistency models use it (Luo et al. 2023, Alg. 3;
Song et al. 2023, Alg. 1).

The consistency function is ``f(x_t, t) = c_skip(t) x_t + c_out(t) x0_theta(x_t, t)`` with the
LCM boundary scalings (``c_skip(0) = 1``, ``c_out(0) = 0``); each step maps to clean data and then
re-noises to the next level: ``x_{t_prev} = sqrt(abar_prev) f + sqrt(1 - abar_prev) z``. The last
step returns ``f`` without noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch

from diffusion_notes.denoiser import Denoiser
from diffusion_notes.samplers._common import Callback, abar_pairs, draw_noise, steps, validate


class LCMStep(NamedTuple):
    """One step's coefficients: ``f = c_skip x_t + c_out x0``; then ``a_prev f + s_prev z``."""

    c_skip: float
    c_out: float
    a_prev: float
    s_prev: float
    renoise: bool


def consistency_scalings(
    t: int, *, timestep_scaling: float = 10.0, sigma_data: float = 0.5
) -> tuple[float, float]:
    """LCM's discrete boundary scalings with ``u = timestep_scaling * t``:
    ``c_skip = sigma_data^2 / (u^2 + sigma_data^2)``, ``c_out = u / sqrt(u^2 + sigma_data^2)``."""
    u = t * timestep_scaling
    return sigma_data**2 / (u * u + sigma_data**2), u / math.sqrt(u * u + sigma_data**2)


@torch.no_grad()
def sample_lcm(
    den: Denoiser,
    x: torch.Tensor,
    pairs: Sequence[tuple[int, int]],
    *,
    timestep_scaling: float = 10.0,
    sigma_data: float = 0.5,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """Multistep consistency sampler; use :func:`diffusion_notes.timesteps.lcm_pairs` for the
    timesteps an LCM was distilled on (1-8 steps are typical). The callback's ``x0_pred`` is
    the consistency function's output ``f(x_t, t)``, LCM's own estimate of the clean sample."""
    pairs = validate(den, pairs, "sample_lcm")
    coefs = []
    for (t, tp), (_, ab_p) in zip(pairs, abar_pairs(den, pairs, True), strict=True):
        c_skip, c_out = consistency_scalings(
            t, timestep_scaling=timestep_scaling, sigma_data=sigma_data
        )
        coefs.append(LCMStep(c_skip, c_out, math.sqrt(ab_p), math.sqrt(1.0 - ab_p), tp >= 0))

    for i, (t, _) in steps(pairs, progress, "LCM"):
        c = coefs[i]
        denoised = c.c_out * den(x, t).x0 + c.c_skip * x  # the consistency function f(x_t, t)
        x = c.a_prev * denoised + c.s_prev * draw_noise(denoised, generator) if c.renoise else denoised
        if callback is not None:
            callback(i, t, x, denoised)
    return x
