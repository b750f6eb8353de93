"""DPM-Solver++(2M), the multistep second-order solver of Lu et al. 2022b (Algorithm 2).

It integrates the probability-flow ODE written for the data prediction ``x0_theta`` in
``lambda = log(alpha / sigma)`` (half the log-SNR), where the linear part is solved exactly:

    x_{t_prev} = (sigma_prev / sigma_t) x_t - alpha_prev (e^{-h} - 1) D,   h = lambda_prev - lambda_t

with ``D = x0_theta(x_t)`` for the first-order step (which is DDIM with eta = 0) and
``D = (1 + 1/(2r)) x0_theta(x_t) - 1/(2r) x0_theta(x_{t_last})``, ``r = h_last / h``, for the
second-order multistep update. The previous data prediction is the only history (a local).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

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


def _lam(ab: float) -> float:
    """lambda = log(alpha / sigma) = 0.5 log snr; -inf at alpha_bar = 0, +inf at alpha_bar = 1."""
    if ab <= 0.0:
        return -math.inf
    if ab >= 1.0:
        return math.inf
    return 0.5 * (math.log(ab) - math.log1p(-ab))


@torch.no_grad()
def sample_dpm_solver_pp(
    model: Model,
    x: torch.Tensor,
    schedule: Schedule,
    pairs: Sequence[tuple[int, int]],
    *,
    order: Literal[1, 2] = 2,
    prediction: Prediction = "eps",
    clip_x0: bool = False,
    clip_range: float = 1.0,
    threshold: float | None = None,
    threshold_max: float = math.inf,
    lower_order_final: bool = True,
    set_alpha_to_one: bool = True,
    callback: Callback | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """DPM-Solver++ multistep of order 1 or 2 (Lu et al. 2022b, Alg. 2), deterministic.

    The first step is first order (no history yet). The last step is first order when it ends at
    sigma = 0 (``set_alpha_to_one``: the update then returns the data prediction itself), or when
    ``lower_order_final`` and fewer than 15 steps (the paper's and diffusers' stabiliser).
    Thresholding/clipping act on the data prediction, as in the paper (sec. 5).
    """
    pairs = validate(
        schedule,
        pairs,
        prediction,
        clip_x0=clip_x0,
        threshold=threshold,
        name="sample_dpm_solver_pp",
    )
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order!r}")
    n = len(pairs)
    coefs = []
    h_last = math.nan
    for i, (ab, ab_p) in enumerate(abar_pairs(schedule, pairs, set_alpha_to_one)):
        a, s = math.sqrt(ab), math.sqrt(1.0 - ab)
        a_p, s_p = math.sqrt(ab_p), math.sqrt(1.0 - ab_p)
        # e^{-h} = (sigma_prev alpha_t) / (alpha_prev sigma_t), finite even when alpha_t = 0
        exp_neg_h = (s_p * a) / (a_p * s)
        ratio = s_p / s  # sigma_prev / sigma_t
        c_d = a_p * (1.0 - exp_neg_h)  # -alpha_prev (e^{-h} - 1)
        h = _lam(ab_p) - _lam(ab)
        final_first = i == n - 1 and (s_p == 0.0 or (lower_order_final and n < 15))
        k = 0.0  # weight of the correction (m0 - m1) / (2r); 0 means first order
        if order == 2 and i > 0 and not final_first and math.isfinite(h) and math.isfinite(h_last):
            k = h / (2.0 * h_last)  # 1 / (2 r), r = h_last / h
        coefs.append((a, s, ratio, c_d, k))
        h_last = h

    m_last: torch.Tensor | None = None
    for i, (t, _) in steps(pairs, progress, "DPM-Solver++"):
        a, s, ratio, c_d, k = coefs[i]
        x0, _ = split_output(call_model(model, x, t), x, a, s, prediction)
        x0, _ = process_x0(x0, clip_x0, clip_range, threshold, threshold_max)
        d = x0 if (k == 0.0 or m_last is None) else (1.0 + k) * x0 - k * m_last
        x = ratio * x + c_d * d
        m_last = x0
        if callback is not None:
            callback(i, t, x, x0)
    return x
