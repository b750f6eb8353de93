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
from diffusion_notes.schedules import alpha_bar_at


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


class TCDStep(NamedTuple):
    """One step's coefficients: back along the trajectory to level ``s`` with ``a_s x0 + s_s eps``,
    then forward noise from ``s`` to ``t_prev``: ``x_prev = r x_s + sqrt(1 - r^2) z``."""

    a_s: float
    s_s: float
    r: float  # sqrt(abar_prev / abar_s)
    renoise: bool


def tcd_level(t_prev: int, gamma: float) -> int:
    """The level ``s = floor((1 - gamma) t_prev)`` that a strategic stochastic step lands on
    before re-noising to ``t_prev`` [@zheng2024trajectory]; ``-1`` (clean data) stays ``-1``."""
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must lie in [0, 1] (0: deterministic, 1: LCM's full re-noising), "
                         f"got {gamma}")
    return t_prev if t_prev < 0 else math.floor((1.0 - gamma) * t_prev)


@torch.no_grad()
def sample_tcd(
    den: Denoiser,
    x: torch.Tensor,
    pairs: Sequence[tuple[int, int]],
    *,
    gamma: float = 0.3,
    set_alpha_to_one: bool = True,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """Strategic stochastic sampling of trajectory consistency distillation [@zheng2024trajectory]
    (diffusers' TCDScheduler, whose ``eta`` is ``gamma``): from ``(x_t, t)`` a deterministic DDIM
    jump with the network's ``x0`` and ``eps`` to the lower level ``s = floor((1 - gamma) t_prev)``,
    then fresh noise from ``s`` up to ``t_prev``. ``gamma = 0`` is deterministic DDIM;
    ``gamma = 1`` jumps to level 0 and re-noises in full, LCM's sampler (:func:`sample_lcm`
    without its boundary scalings, which differ from the identity by ``1e-6`` at ``t >= 49``).
    The last step (``t_prev = -1``) returns ``x0`` (``set_alpha_to_one``) or, as diffusers does,
    the DDIM jump to level 0."""
    pairs = validate(den, pairs, "sample_tcd")
    coefs = []
    for (_, tp), (_, ab_p) in zip(pairs, abar_pairs(den, pairs, set_alpha_to_one), strict=True):
        ab_s = alpha_bar_at(den.schedule, tcd_level(tp, gamma), set_alpha_to_one=set_alpha_to_one)
        renoise = tp >= 0 and gamma > 0
        coefs.append(TCDStep(math.sqrt(ab_s), math.sqrt(1.0 - ab_s),
                             math.sqrt(ab_p / ab_s) if renoise else 1.0, renoise))

    for i, (t, _) in steps(pairs, progress, "TCD"):
        c = coefs[i]
        d = den(x, t)
        x = c.a_s * d.x0 + c.s_s * d.eps
        if c.renoise:
            x = c.r * x + math.sqrt(max(1.0 - c.r * c.r, 0.0)) * draw_noise(x, generator)
        if callback is not None:
            callback(i, t, x, d.x0)
    return x
