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

from diffusion_notes.diffusion import Prediction
from diffusion_notes.samplers._common import (
    Callback,
    Model,
    abar_pairs,
    call_model,
    process_x0,
    split_output,
    steps,
    validate,
)
from diffusion_notes.schedules import Schedule


def _x0_eps(model, x, t, a, s, prediction, clip_x0, clip_range, threshold, threshold_max):
    """Network call -> (x0, eps), eps recomputed from a clipped x0 so both describe one x."""
    x0, eps = split_output(call_model(model, x, t), x, a, s, prediction)
    x0, changed = process_x0(x0, clip_x0, clip_range, threshold, threshold_max)
    if changed:
        eps = (x - a * x0) / s
    return x0, eps


@torch.no_grad()
def sample_euler(
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
    set_alpha_to_one: bool = True,
    callback: Callback | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """Explicit Euler on ``dx~/dsigma~ = eps`` (one network call per pair)."""
    pairs = validate(
        schedule, pairs, prediction, clip_x0=clip_x0, threshold=threshold, name="sample_euler"
    )
    for i, (t, _) in steps(pairs, progress, "Euler"):
        ab, ab_p = abar_pairs(schedule, [pairs[i]], set_alpha_to_one)[0]
        a, s = math.sqrt(ab), math.sqrt(1.0 - ab)
        x0, eps = _x0_eps(
            model, x, t, a, s, prediction, clip_x0, clip_range, threshold, threshold_max
        )
        x = math.sqrt(ab_p) * x0 + math.sqrt(1.0 - ab_p) * eps  # = alpha_prev (x~ + dsigma~ eps)
        if callback is not None:
            callback(i, t, x, x0)
    return x


@torch.no_grad()
def sample_heun(
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
    set_alpha_to_one: bool = True,
    callback: Callback | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """Heun (trapezoidal predictor-corrector) on ``dx~/dsigma~ = eps``: ``2n - 1`` network calls
    for ``n`` pairs ending at ``t_prev = -1``.

    x~_prev = x~ + dsigma~ (eps(x, t) + eps(x_euler, t_prev)) / 2, i.e. in x:
    ``x_prev = x_euler + alpha_prev dsigma~ (eps_2 - eps_1) / 2``.
    """
    pairs = validate(
        schedule, pairs, prediction, clip_x0=clip_x0, threshold=threshold, name="sample_heun"
    )
    opts = (prediction, clip_x0, clip_range, threshold, threshold_max)
    for i, (t, tp) in steps(pairs, progress, "Heun"):
        ab, ab_p = abar_pairs(schedule, [pairs[i]], set_alpha_to_one)[0]
        a, s, a_p, s_p = math.sqrt(ab), math.sqrt(1.0 - ab), math.sqrt(ab_p), math.sqrt(1.0 - ab_p)
        x0, eps = _x0_eps(model, x, t, a, s, *opts)
        x_euler = a_p * x0 + s_p * eps
        if tp < 0 or a == 0.0:
            x = x_euler
        else:
            _, eps2 = _x0_eps(model, x_euler, tp, a_p, s_p, *opts)
            x = x_euler + (0.5 * (s_p - a_p * s / a)) * (eps2 - eps)  # alpha_prev * dsigma~ / 2
        if callback is not None:
            callback(i, t, x, x0)
    return x
