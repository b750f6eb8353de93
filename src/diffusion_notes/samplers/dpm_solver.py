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
from typing import Literal, NamedTuple

import torch

from diffusion_notes.denoiser import Denoiser
from diffusion_notes.samplers._common import Callback, abar_pairs, steps, validate


class DPMStep(NamedTuple):
    """One step's coefficients: ``x_prev = ratio x_t + c_d D`` with ``D = (1 + k) x0 - k x0_last``."""

    ratio: float  # sigma_prev / sigma_t
    c_d: float  # -alpha_prev (e^{-h} - 1)
    k: float  # 1 / (2 r), r = h_last / h; 0 means a first-order step


def _lam(ab: float) -> float:
    """lambda = log(alpha / sigma) = 0.5 log snr; -inf at alpha_bar = 0, +inf at alpha_bar = 1."""
    if ab <= 0.0:
        return -math.inf
    if ab >= 1.0:
        return math.inf
    return 0.5 * (math.log(ab) - math.log1p(-ab))


@torch.no_grad()
def sample_dpm_solver_pp(
    den: Denoiser,
    x: torch.Tensor,
    pairs: Sequence[tuple[int, int]],
    *,
    order: Literal[1, 2] = 2,
    lower_order_final: bool = True,
    set_alpha_to_one: bool = True,
    callback: Callback | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """DPM-Solver++ multistep of order 1 or 2 (Lu et al. 2022b, Alg. 2), deterministic.

    The first step is first order (no history yet). The last step is first order when it ends at
    sigma = 0 (``set_alpha_to_one``: the update then returns the data prediction itself), or when
    ``lower_order_final`` and fewer than 15 steps (the paper's and diffusers' stabiliser).
    The denoiser's thresholding/clipping act on the data prediction, as in the paper (sec. 5).
    """
    pairs = validate(den, pairs, "sample_dpm_solver_pp")
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order!r}")
    n = len(pairs)
    coefs = []
    h_last = math.nan
    for i, (ab, ab_p) in enumerate(abar_pairs(den, pairs, set_alpha_to_one)):
        a, s = math.sqrt(ab), math.sqrt(1.0 - ab)
        a_p, s_p = math.sqrt(ab_p), math.sqrt(1.0 - ab_p)
        # e^{-h} = (sigma_prev alpha_t) / (alpha_prev sigma_t), finite even when alpha_t = 0
        exp_neg_h = (s_p * a) / (a_p * s)
        h = _lam(ab_p) - _lam(ab)
        final_first = i == n - 1 and (s_p == 0.0 or (lower_order_final and n < 15))
        k = 0.0  # weight of the correction (m0 - m1) / (2r); 0 means first order
        if order == 2 and i > 0 and not final_first and math.isfinite(h) and math.isfinite(h_last):
            k = h / (2.0 * h_last)  # 1 / (2 r), r = h_last / h
        coefs.append(DPMStep(s_p / s, a_p * (1.0 - exp_neg_h), k))
        h_last = h

    m_last: torch.Tensor | None = None
    for i, (t, _) in steps(pairs, progress, "DPM-Solver++"):
        c = coefs[i]
        x0 = den(x, t).x0
        d = x0 if (c.k == 0.0 or m_last is None) else (1.0 + c.k) * x0 - c.k * m_last
        x = c.ratio * x + c.c_d * d
        m_last = x0
        if callback is not None:
            callback(i, t, x, x0)
    return x
