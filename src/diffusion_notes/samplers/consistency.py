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

import torch

from diffusion_notes.diffusion import Prediction
from diffusion_notes.samplers._common import (
    Callback,
    Model,
    abar_pairs,
    call_model,
    draw_noise,
    process_x0,
    split_output,
    steps,
    validate,
)
from diffusion_notes.schedules import Schedule


def consistency_scalings(
    t: int, *, timestep_scaling: float = 10.0, sigma_data: float = 0.5
) -> tuple[float, float]:
    """LCM's discrete boundary scalings with ``u = timestep_scaling * t``:
    ``c_skip = sigma_data^2 / (u^2 + sigma_data^2)``, ``c_out = u / sqrt(u^2 + sigma_data^2)``."""
    u = t * timestep_scaling
    return sigma_data**2 / (u * u + sigma_data**2), u / math.sqrt(u * u + sigma_data**2)


@torch.no_grad()
def sample_lcm(
    model: Model,
    x: torch.Tensor,
    schedule: Schedule,
    pairs: Sequence[tuple[int, int]],
    *,
    prediction: Prediction = "eps",
    clip_x0: bool = False,
    clip_range: float = 1.0,
    threshold: float | None = None,
    threshold_max: float = math.inf,
    timestep_scaling: float = 10.0,
    sigma_data: float = 0.5,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """Multistep consistency sampler; use :func:`diffusion_notes.timesteps.lcm_pairs` for the
    timesteps an LCM was distilled on (1-8 steps are typical). The callback's ``x0_pred`` is
    the consistency function's output ``f(x_t, t)``, LCM's own estimate of the clean sample."""
    pairs = validate(
        schedule, pairs, prediction, clip_x0=clip_x0, threshold=threshold, name="sample_lcm"
    )
    coefs = []
    for (t, tp), (ab, ab_p) in zip(pairs, abar_pairs(schedule, pairs, True), strict=True):
        c_skip, c_out = consistency_scalings(
            t, timestep_scaling=timestep_scaling, sigma_data=sigma_data
        )
        coefs.append(
            (
                math.sqrt(ab),
                math.sqrt(1.0 - ab),
                c_skip,
                c_out,
                math.sqrt(ab_p),
                math.sqrt(1.0 - ab_p),
                tp >= 0,
            )
        )

    for i, (t, _) in steps(pairs, progress, "LCM"):
        a, s, c_skip, c_out, a_p, s_p, renoise = coefs[i]
        x0, _ = split_output(call_model(model, x, t), x, a, s, prediction)
        x0, _ = process_x0(x0, clip_x0, clip_range, threshold, threshold_max)
        denoised = c_out * x0 + c_skip * x  # the consistency function f(x_t, t)
        x = a_p * denoised + s_p * draw_noise(denoised, generator) if renoise else denoised
        if callback is not None:
            callback(i, t, x, denoised)
    return x
