"""Ancestral DDPM sampling (Ho et al. 2020, Algorithm 2), on any chain of ``(t, t_prev)`` pairs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch

from diffusion_notes.denoiser import Denoiser
from diffusion_notes.diffusion import VARIANCES, Variance
from diffusion_notes.samplers._common import Callback, abar_pairs, draw_noise, steps, validate
from diffusion_notes.schedules import posterior_coefficients
from diffusion_notes.timesteps import full_pairs


class DDPMStep(NamedTuple):
    """One step's coefficients: ``x_prev = c0 x0 + ct x_t + std z``."""

    c0: float
    ct: float
    std: float


@torch.no_grad()
def sample_ddpm(
    den: Denoiser,
    x: torch.Tensor,
    pairs: Sequence[tuple[int, int]] | None = None,
    *,
    variance: Variance = "fixed_small",
    add_noise: bool = True,
    set_alpha_to_one: bool = True,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """Run ``x_{t_prev} ~ N(mu(x_t, x0_pred), var)`` down the pairs (all T steps when ``pairs`` is None).

    The mean is the posterior mean of :func:`diffusion_notes.diffusion.q_posterior` at the
    predicted x0; with skipped steps, ``alpha_t`` becomes ``abar_t / abar_{t_prev}``. ``variance``:
    ``fixed_small`` = beta tilde (the posterior variance), ``fixed_large`` = beta (Ho et al. 2020,
    sec. 3.2 report both give similar samples). No noise is added on the step to ``t_prev = -1``.
    ``add_noise=False`` drops the noise everywhere: a deliberate failure for labs (the samples
    collapse towards the data mean, they do not follow DDIM).
    """
    pairs = validate(den, full_pairs(den.schedule.T) if pairs is None else pairs, "sample_ddpm")
    if variance not in VARIANCES:
        raise ValueError(f"unknown variance {variance!r}; allowed: {', '.join(VARIANCES)}")
    coefs = []
    for (_, tp), (ab, ab_p) in zip(pairs, abar_pairs(den, pairs, set_alpha_to_one), strict=True):
        post = posterior_coefficients(ab, ab_p)
        var = post.variance if variance == "fixed_small" else post.beta
        std = math.sqrt(max(var, 0.0)) if (add_noise and tp >= 0) else 0.0
        coefs.append(DDPMStep(post.c0, post.ct, std))

    for i, (t, _) in steps(pairs, progress, "DDPM"):
        c = coefs[i]
        x0 = den(x, t).x0
        x = c.c0 * x0 + c.ct * x
        if c.std > 0.0:
            x = x + c.std * draw_noise(x, generator)
        if callback is not None:
            callback(i, t, x, x0)
    return x
