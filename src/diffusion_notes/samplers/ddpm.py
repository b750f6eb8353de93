"""Ancestral DDPM sampling (Ho et al. 2020, Algorithm 2), on any chain of ``(t, t_prev)`` pairs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, get_args

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
from diffusion_notes.timesteps import full_pairs

DDPMVariance = Literal["fixed_small", "fixed_large"]
DDPM_VARIANCES: tuple[str, ...] = get_args(DDPMVariance)


@torch.no_grad()
def sample_ddpm(
    model: Model,
    x: torch.Tensor,
    schedule: Schedule,
    pairs: Sequence[tuple[int, int]] | None = None,
    *,
    variance: DDPMVariance = "fixed_small",
    prediction: Prediction = "eps",
    clip_x0: bool = False,
    clip_range: float = 1.0,
    threshold: float | None = None,
    threshold_max: float = math.inf,
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
    pairs = validate(
        schedule,
        full_pairs(schedule.T) if pairs is None else pairs,
        prediction,
        clip_x0=clip_x0,
        threshold=threshold,
        name="sample_ddpm",
    )
    if variance not in DDPM_VARIANCES:
        raise ValueError(f"unknown variance {variance!r}; allowed: {', '.join(DDPM_VARIANCES)}")
    coefs = []
    for (_, tp), (ab, ab_p) in zip(
        pairs, abar_pairs(schedule, pairs, set_alpha_to_one), strict=True
    ):
        alpha = ab / ab_p  # one-step alpha between the two noise levels
        beta = 1.0 - alpha
        c0 = math.sqrt(ab_p) * beta / (1.0 - ab)  # posterior mean weight of x0 (eq. 7)
        ct = math.sqrt(alpha) * (1.0 - ab_p) / (1.0 - ab)  # ... and of x_t
        var = beta * (1.0 - ab_p) / (1.0 - ab) if variance == "fixed_small" else beta
        std = math.sqrt(max(var, 0.0)) if (add_noise and tp >= 0) else 0.0
        coefs.append((math.sqrt(ab), math.sqrt(1.0 - ab), c0, ct, std))

    for i, (t, _) in steps(pairs, progress, "DDPM"):
        a, s, c0, ct, std = coefs[i]
        x0, _ = split_output(call_model(model, x, t), x, a, s, prediction)
        x0, _ = process_x0(x0, clip_x0, clip_range, threshold, threshold_max)
        x = c0 * x0 + ct * x
        if std > 0.0:
            x = x + std * draw_noise(x, generator)
        if callback is not None:
            callback(i, t, x, x0)
    return x
