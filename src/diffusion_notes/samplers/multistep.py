"""Higher-order multistep solvers of the probability-flow ODE in log-SNR time.

Both integrate the data-prediction form of the VP probability-flow ODE (Lu et al. 2022b, eq. 8).
With ``lambda = log(alpha / sigma)`` and ``D(lambda) = x0_theta(x_lambda, lambda)`` its exact
solution from ``s`` to ``t`` is (the "exponential integrator", Lu et al. 2022b, eq. 9)

    x_t = (sigma_t / sigma_s) x_s + sigma_t * integral_{lambda_s}^{lambda_t} e^lambda D(lambda) dlambda

and a multistep method replaces ``D`` by a polynomial through the data predictions of the last
few steps, integrating the linear part exactly.

* :func:`sample_dpm_solver_pp_3m`: DPM-Solver++(3M), the third-order multistep update of
  Lu et al. 2022b (App. B), with the step-order schedule of diffusers'
  ``DPMSolverMultistepScheduler(solver_order=3)``: orders 1, 2, 3, 3, ..., and, with
  ``lower_order_final`` and fewer than 15 steps, order <= 2 on the last-but-one step; the last
  step is first order when it ends at ``sigma = 0``.
* :func:`sample_exp_adams`: the same exponential integrator with the Lagrange polynomial through
  the last ``order`` data predictions integrated exactly (an exponential Adams-Bashforth
  predictor in ``lambda``; DEIS (Zhang & Chen 2023) builds its multistep method the same way in
  another time variable), plus, optionally, a corrector that redoes each step with the
  polynomial through the *new* evaluation as well (exponential Adams-Moulton). The new evaluation
  is needed for the next step anyway, so the corrector costs no network call: UniPC's idea
  (Zhao et al. 2023, UniC), here with exact polynomial integrals instead of UniPC's B(h) fits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from diffusion_notes.denoiser import Denoiser
from diffusion_notes.samplers._common import Callback, abar_pairs, steps, validate

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(24)


def _lam(ab: float) -> float:
    """lambda = log(alpha / sigma); +inf at alpha_bar = 1 (clean data)."""
    return math.inf if ab >= 1.0 else 0.5 * (math.log(ab) - math.log1p(-ab))


def _levels(den: Denoiser, pairs: Sequence[tuple[int, int]], set_alpha_to_one: bool, name: str):
    """Checked pairs and per-pair (alpha_s, sigma_s, alpha_t, sigma_t, lambda_s, lambda_t)."""
    pairs = validate(den, pairs, name, eps_needs_signal=False)  # alpha_bar = 0: refused below
    out = []
    for (t, _), (ab, ab_p) in zip(pairs, abar_pairs(den, pairs, set_alpha_to_one), strict=True):
        if ab <= 0.0:
            raise ValueError(
                f"{name}: alpha_bar = 0 at t={t} (zero terminal SNR) has lambda = -inf; start the "
                "pairs below T-1 or use sample_ddim/sample_dpm_solver_pp, which handle it"
            )
        a, s, a_p, s_p = math.sqrt(ab), math.sqrt(1 - ab), math.sqrt(ab_p), math.sqrt(1 - ab_p)
        out.append((a, s, a_p, s_p, _lam(ab), _lam(ab_p)))
    return pairs, out


def exp_lagrange_weights(nodes: Sequence[float], lam_s: float, lam_t: float) -> list[float]:
    """``w_j = integral_{lam_s}^{lam_t} e^(lambda - lam_t) L_j(lambda) dlambda`` for the Lagrange
    basis ``L_j`` on ``nodes`` (float64, 24-point Gauss-Legendre: exact to rounding for the
    polynomial degrees and step sizes used here). Then ``x_t = (sigma_t / sigma_s) x_s +
    alpha_t sum_j w_j D_j``; one node gives ``w = 1 - e^(-h)`` (DPM-Solver++ first order)."""
    half, mid = 0.5 * (lam_t - lam_s), 0.5 * (lam_t + lam_s)
    u = half * _GL_NODES + mid
    base = _GL_WEIGHTS * half * np.exp(u - lam_t)
    out = []
    for j, lj in enumerate(nodes):
        basis = np.ones_like(u)
        for m, lm in enumerate(nodes):
            if m != j:
                basis *= (u - lm) / (lj - lm)
        out.append(float((base * basis).sum()))
    return out


def final_extrapolation_weights(lam_0: float, lam_1: float) -> tuple[float, float]:
    """Weights of ``D_0`` (newest, at ``lam_0``) and ``D_1`` for the value at ``sigma~ = 0`` of
    the line through ``(sigma~_0^2, D_0)`` and ``(sigma~_1^2, D_1)``, ``sigma~ = e^-lambda``."""
    u0, u1 = math.exp(-2.0 * lam_0), math.exp(-2.0 * lam_1)
    return u1 / (u1 - u0), -u0 / (u1 - u0)


@torch.no_grad()
def sample_dpm_solver_pp_3m(
    den: Denoiser,
    x: torch.Tensor,
    pairs: Sequence[tuple[int, int]],
    *,
    lower_order_final: bool = True,
    set_alpha_to_one: bool = True,
    callback: Callback | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """DPM-Solver++(3M) (Lu et al. 2022b, App. B; diffusers' ``solver_order=3``), deterministic.

    With ``h = lambda_t - lambda_s0``, ``r0 = h_0 / h``, ``r1 = h_1 / h`` (previous step sizes)
    and the last three data predictions ``m0, m1, m2``:
    ``D1_0 = (m0 - m1) / r0``, ``D1_1 = (m1 - m2) / r1``, ``D1 = D1_0 + r0 / (r0 + r1) (D1_0 -
    D1_1)``, ``D2 = (D1_0 - D1_1) / (r0 + r1)`` and
    ``x_t = (sigma_t / sigma_s0) x - alpha_t (e^-h - 1) m0 + alpha_t ((e^-h - 1) / h + 1) D1
    - alpha_t ((e^-h - 1 + h) / h^2 - 1/2) D2``.
    """
    pairs, lv = _levels(den, pairs, set_alpha_to_one, "sample_dpm_solver_pp_3m")
    n = len(pairs)
    hist: list[torch.Tensor] = []  # data predictions, newest last
    lams: list[float] = []
    for i, (t, _) in steps(pairs, progress, "DPM-Solver++(3M)"):
        a, s, a_p, s_p, lam_s, lam_t = lv[i]
        x0 = den(x, t).x0
        hist, lams = [*hist[-2:], x0], [*lams[-2:], lam_s]
        order = min(3, i + 1)
        if i == n - 1 and (s_p == 0.0 or (lower_order_final and n < 15)):
            order = 1
        elif i == n - 2 and lower_order_final and n < 15:
            order = min(order, 2)
        if s_p == 0.0:  # the step to clean data: e^-h = 0, x_t = alpha_t m0
            x = a_p * x0
        elif lam_t == lam_s:  # (0, -1) with set_alpha_to_one=False: a step of length 0
            pass
        else:
            h = lam_t - lam_s
            em1 = math.expm1(-h)  # e^-h - 1
            x_new = (s_p / s) * x - (a_p * em1) * x0
            if order >= 2:
                r0 = (lam_s - lams[-2]) / h
                d1_0 = (x0 - hist[-2]) / r0
                if order == 2:  # DPM-Solver++(2M): D = m0 + (m0 - m1) / (2 r0)
                    x_new = x_new - (0.5 * a_p * em1) * d1_0
                else:
                    r1 = (lams[-2] - lams[-3]) / h
                    d1_1 = (hist[-2] - hist[-3]) / r1
                    d1 = d1_0 + (r0 / (r0 + r1)) * (d1_0 - d1_1)
                    d2 = (d1_0 - d1_1) / (r0 + r1)
                    x_new = (
                        x_new
                        + (a_p * (em1 / h + 1.0)) * d1
                        - (a_p * ((em1 + h) / (h * h) - 0.5)) * d2
                    )
            x = x_new
        if callback is not None:
            callback(i, t, x, x0)
    return x


@torch.no_grad()
def sample_exp_adams(
    den: Denoiser,
    x: torch.Tensor,
    pairs: Sequence[tuple[int, int]],
    *,
    order: Literal[1, 2, 3, 4] = 3,
    corrector: bool = True,
    final_extrapolation: bool = True,
    set_alpha_to_one: bool = True,
    callback: Callback | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """Exponential Adams predictor-corrector in ``lambda`` on the data prediction.

    Predictor (order ``p = min(order, steps so far)``): ``x_t = (sigma_t / sigma_s) x_s +
    alpha_t sum_j w_j D_j`` over the last ``p`` data predictions, ``w_j`` from
    :func:`exp_lagrange_weights`. Corrector (``corrector=True``): once ``D`` is known at the new
    point, the step just taken is redone from ``x_s`` with that point added to the nodes (order
    ``p + 1``); the next step starts from the corrected ``x`` and keeps the ``D`` evaluated at
    the predicted one (as UniPC does).

    The step to clean data (``sigma_t = 0``, ``lambda = inf``) has no polynomial in lambda to
    integrate; the exact end point is ``alpha_t`` times the limit of ``D`` as ``sigma~ =
    sigma / alpha -> 0`` along the trajectory. Near ``sigma~ = 0``, ``x~ = x / alpha`` and ``D``
    differ from that limit by ``O(sigma~^2)`` (``dx~/dsigma~ = -sigma~ grad log p``), so with
    ``final_extrapolation`` the last two data predictions are extrapolated linearly in
    ``sigma~^2`` to 0 (:func:`final_extrapolation_weights`); without it the step returns the last
    ``D``, which for a sharp target is the posterior mean and so shrinks every mode. Global error ``O(h^order)`` without, ``O(h^(order + 1))`` with the corrector
    (Checked by ``tests/test_multistep.py::test_exp_adams_order``).
    """
    if order not in (1, 2, 3, 4):
        raise ValueError(f"order must be 1, 2, 3 or 4, got {order!r}")
    pairs, lv = _levels(den, pairs, set_alpha_to_one, "sample_exp_adams")
    hist: list[torch.Tensor] = []  # data predictions, newest last
    lams: list[float] = []
    x_start: torch.Tensor | None = None  # x at the start of the previous step (corrector)
    for i, (t, _) in steps(pairs, progress, "exp. Adams"):
        a, s, a_p, s_p, lam_s, lam_t = lv[i]
        x0 = den(x, t).x0
        if corrector and x_start is not None:
            # redo the previous step (lam_prev -> lam_s) with the new node lam_s included
            nodes = [lam_s, *lams[::-1][:order]]
            _, s_prev, _, _, lam_prev, _ = lv[i - 1]
            w = exp_lagrange_weights(nodes, lam_prev, lam_s)
            x = (s / s_prev) * x_start + a * sum(
                wj * dj for wj, dj in zip(w, [x0, *hist[::-1][:order]], strict=True)
            )
        hist, lams = [*hist, x0][-order:], [*lams, lam_s][-order:]
        if s_p == 0.0:  # clean data: lambda_t = inf, x_t = alpha_t * D(sigma~ = 0)
            x_start = x
            if final_extrapolation and len(hist) >= 2:
                w0, w1 = final_extrapolation_weights(lams[-1], lams[-2])
                x = a_p * (w0 * hist[-1] + w1 * hist[-2])
            else:
                x = a_p * x0
        else:
            w = exp_lagrange_weights(lams[::-1], lam_s, lam_t)
            x_start = x
            x = (s_p / s) * x + a_p * sum(
                wj * dj for wj, dj in zip(w, hist[::-1], strict=True)
            )
        if callback is not None:
            callback(i, t, x, x0)
    return x
