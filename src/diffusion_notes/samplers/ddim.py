"""DDIM sampling (Song et al. 2021, eq. 12) with stochasticity ``eta``, and DDIM inversion."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, NamedTuple, get_args

import torch

from diffusion_notes.denoiser import Denoiser
from diffusion_notes.samplers._common import Callback, abar_pairs, draw_noise, steps, validate
from diffusion_notes.schedules import Schedule, alpha_bar_at, posterior_coefficients

EvalAt = Literal["source", "target"]
EVAL_AT: tuple[str, ...] = get_args(EvalAt)


class DDIMStep(NamedTuple):
    """One step's coefficients: ``x_prev = a_prev x0 + direction eps + sigma z``."""

    a_prev: float
    direction: float
    sigma: float


def ddim_sigma_from_alpha_bar(ab: float, ab_prev: float, eta: float) -> float:
    """sigma_t(eta) = eta * sqrt((1 - abar_prev) / (1 - abar_t)) * sqrt(1 - abar_t / abar_prev)
    (Song et al. 2021, eq. 16): eta times the square root of DDPM's posterior variance beta tilde
    (:func:`~diffusion_notes.schedules.posterior_coefficients`)."""
    return eta * math.sqrt(max(posterior_coefficients(ab, ab_prev).variance, 0.0))


def ddim_sigma(
    schedule: Schedule, t: int, t_prev: int, eta: float, *, set_alpha_to_one: bool = True
) -> float:
    """The DDIM noise scale for one step ``t -> t_prev`` (see :func:`ddim_sigma_from_alpha_bar`)."""
    return ddim_sigma_from_alpha_bar(
        alpha_bar_at(schedule, t),
        alpha_bar_at(schedule, t_prev, set_alpha_to_one=set_alpha_to_one),
        eta,
    )


@torch.no_grad()
def sample_ddim(
    den: Denoiser,
    x: torch.Tensor,
    pairs: Sequence[tuple[int, int]],
    *,
    eta: float = 0.0,
    set_alpha_to_one: bool = True,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """x_{t_prev} = sqrt(abar_prev) x0 + sqrt(1 - abar_prev - sigma^2) eps + sigma z (Song et al. 2021, eq. 12).

    ``eta = 0`` is the deterministic DDIM sampler (an Euler step of the probability-flow ODE in
    ``sigma / alpha``); ``eta = 1`` gives DDPM's posterior variance at every step. When the
    denoiser clips or thresholds x0, its ``recompute_eps=True`` (default; as in the DDIM authors'
    and improved-diffusion's code) recomputes eps from the clipped x0 so the step stays on the
    DDIM posterior; False keeps the network's eps (diffusers' default
    ``use_clipped_model_output=False``). No noise on the last step.
    """
    pairs = validate(den, pairs, "sample_ddim")
    if not 0.0 <= eta <= 1.0:
        raise ValueError(
            f"eta must lie in [0, 1] (0: deterministic DDIM, 1: DDPM variance); got {eta}"
        )
    coefs = []
    for (_, tp), (ab, ab_p) in zip(pairs, abar_pairs(den, pairs, set_alpha_to_one), strict=True):
        sig = ddim_sigma_from_alpha_bar(ab, ab_p, eta) if tp >= 0 else 0.0  # no noise at the end
        direction = math.sqrt(max(1.0 - ab_p - sig * sig, 0.0))  # weight of eps ("points to x_t")
        coefs.append(DDIMStep(math.sqrt(ab_p), direction, sig))

    for i, (t, _) in steps(pairs, progress, "DDIM"):
        c = coefs[i]
        x0, eps = den(x, t)
        x = c.a_prev * x0 + c.direction * eps
        if c.sigma > 0.0:
            x = x + c.sigma * draw_noise(x, generator)
        if callback is not None:
            callback(i, t, x, x0)
    return x


@torch.no_grad()
def ddim_invert(
    den: Denoiser,
    x0: torch.Tensor,
    pairs: Sequence[tuple[int, int]],
    *,
    eval_at: EvalAt = "source",
    set_alpha_to_one: bool = True,
    callback: Callback | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """Run deterministic DDIM backwards, from data to the noise level of ``pairs[0][0]``.

    Each pair ``(t, t_prev)`` is crossed upwards: ``x_t = sqrt(abar_t) x0_hat + sqrt(1 - abar_t)
    eps_hat``, with ``(x0_hat, eps_hat)`` read from the denoiser at the current sample and the
    current level's ``alpha_bar`` (explicit Euler of the probability-flow ODE).
    ``eval_at="source"`` gives the network the current level's timestep (``max(t_prev, 0)``);
    ``"target"`` gives it ``t``, the convention of diffusers' DDIMInverseScheduler and of
    null-text inversion (Mokady et al. 2023). Returns the latent at ``pairs[0][0]``; sampling it
    back with :func:`sample_ddim` (eta=0) reconstructs ``x0`` up to the discretisation error.
    """
    # the conversion happens at the source level t_prev < T-1, never at alpha_bar = 0
    pairs = validate(den, pairs, "ddim_invert", eps_needs_signal=False)
    if eval_at not in EVAL_AT:
        raise ValueError(f"unknown eval_at {eval_at!r}; allowed: {', '.join(EVAL_AT)}")
    if den.prediction == "x0" and set_alpha_to_one and pairs[-1][1] == -1:
        raise ValueError(
            "ddim_invert: an x0-prediction gives no noise direction at clean data "
            "(alpha_bar = 1 at t_prev = -1); pass set_alpha_to_one=False"
        )
    up = list(reversed(pairs))
    x = x0
    for i, (t, tp) in steps(up, progress, "DDIM inversion"):
        ab_src = alpha_bar_at(den.schedule, tp, set_alpha_to_one=set_alpha_to_one)
        ab_tgt = alpha_bar_at(den.schedule, t)
        t_model = max(tp, 0) if eval_at == "source" else t
        x0_hat, eps = den(x, t_model, alpha_bar=ab_src)  # converted at the current level
        x = math.sqrt(ab_tgt) * x0_hat + math.sqrt(1.0 - ab_tgt) * eps
        if callback is not None:
            callback(i, t, x, x0_hat)
    return x

