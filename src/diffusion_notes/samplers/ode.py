"""Euler and Heun solvers of the probability-flow ODE (Song et al. 2021; Karras et al. 2022).

With ``x~ = x / alpha`` and ``sigma~ = sigma / alpha = sqrt((1 - abar) / abar)`` the VP
probability-flow ODE becomes ``dx~ / dsigma~ = eps_theta(x, t)`` (Karras et al. 2022, sec. 4 and
Table 1 for the scaled VP case). One Euler step of it is, back in x,

    x_prev = alpha_prev x0_hat + sigma_prev eps_hat

which is exactly DDIM with eta = 0 (Song et al. 2021, sec. 4.3). Heun adds the trapezoidal
correction with a second network call at ``t_prev`` (Karras et al. 2022, Alg. 1), except on the
last step to clean data, which has no timestep to evaluate, and on a step that starts at
alpha_bar = 0, where ``sigma~`` is infinite and only the Euler step has a finite limit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from diffusion_notes.denoiser import Denoiser
from diffusion_notes.samplers._common import Callback, abar_pairs, steps, validate


@torch.no_grad()
def sample_euler(
    den: Denoiser,
    x: torch.Tensor,
    pairs: Sequence[tuple[int, int]],
    *,
    set_alpha_to_one: bool = True,
    callback: Callback | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """Explicit Euler on ``dx~/dsigma~ = eps`` (one network call per pair)."""
    pairs = validate(den, pairs, "sample_euler")
    levels = abar_pairs(den, pairs, set_alpha_to_one)
    for i, (t, _) in steps(pairs, progress, "Euler"):
        ab_p = levels[i][1]
        x0, eps = den(x, t)
        x = math.sqrt(ab_p) * x0 + math.sqrt(1.0 - ab_p) * eps  # = alpha_prev (x~ + dsigma~ eps)
        if callback is not None:
            callback(i, t, x, x0)
    return x


@torch.no_grad()
def sample_heun(
    den: Denoiser,
    x: torch.Tensor,
    pairs: Sequence[tuple[int, int]],
    *,
    set_alpha_to_one: bool = True,
    callback: Callback | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """Heun (trapezoidal predictor-corrector) on ``dx~/dsigma~ = eps``: ``2n - 1`` network calls
    for ``n`` pairs ending at ``t_prev = -1``.

    x~_prev = x~ + dsigma~ (eps(x, t) + eps(x_euler, t_prev)) / 2, i.e. in x:
    ``x_prev = x_euler + alpha_prev dsigma~ (eps_2 - eps_1) / 2``.
    """
    pairs = validate(den, pairs, "sample_heun")
    levels = abar_pairs(den, pairs, set_alpha_to_one)
    for i, (t, tp) in steps(pairs, progress, "Heun"):
        ab, ab_p = levels[i]
        a, s, a_p, s_p = math.sqrt(ab), math.sqrt(1.0 - ab), math.sqrt(ab_p), math.sqrt(1.0 - ab_p)
        x0, eps = den(x, t)
        x_euler = a_p * x0 + s_p * eps
        if tp < 0 or a == 0.0:
            x = x_euler
        else:
            eps2 = den(x_euler, tp).eps
            x = x_euler + (0.5 * (s_p - a_p * s / a)) * (eps2 - eps)  # alpha_prev * dsigma~ / 2
        if callback is not None:
            callback(i, t, x, x0)
    return x
