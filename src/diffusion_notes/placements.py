"""Step placements that depend on the noise schedule: where, in noise level, the steps go.

:mod:`diffusion_notes.timesteps` turns the target levels computed here into strictly descending
integer timesteps (its ``spacing`` names ``logsnr``, ``karras`` and ``snr_window``); this module
holds the only floating-point part of that, in float64:

* ``logsnr``: levels uniform in ``lambda = log(alpha / sigma)`` (half the log-SNR) between the
  first and the last timestep, the spacing DPM-Solver uses (Lu et al. 2022a, sec. 3.3,
  "uniform logSNR"); diffusers' ``use_lu_lambdas``.
* ``karras``: ``sigma~ = sigma / alpha`` uniform in ``sigma~^(1/rho)`` with ``rho = 7``
  (Karras et al. 2022, eq. 5); diffusers' ``use_karras_sigmas``.
* ``snr_window``: uniform in ``lambda``, but only over the window where the data is decided,
  ``lambda in [LAMBDA_LO, LAMBDA_HI]``, plus the mandatory first evaluation at ``t = T - 1``.
  Outside the window a sampler gains little from extra steps: above the window the noised data
  is nearly Gaussian (the solver's linear part handles it), below it the denoiser barely moves
  (``E[x0 | x_t]`` is ``x_t / alpha`` up to ``sigma~^2`` times the score). The window's ends are
  set in units of the data's scale: the noise-to-signal ratio ``sigma~`` runs from 2 (noise
  twice as large as unit-variance data) to 0.06, below half the standard deviation (0.14) of
  the fast-sampling note's ring modes; a solver that ends there needs a last step that undoes
  the posterior mean's shrinkage (``sample_exp_adams``'s ``final_extrapolation``). The ends
  were chosen on the ring (a 3 x 3 grid of ends at 5, 8 and 10 evaluations, see
  ``docs/fast-sampling/ode-solvers.md``) and are checked on a second mixture and on digits in
  ``bench/fast_sampling.py``. It carries over to a second 2-D mixture but NOT to the 8x8
  digits: the window is in units of one coordinate, and in 64 dimensions the class is decided
  at higher noise than ``sigma~ = 2`` (measured there: FD 84.9 against 32.4 with ``logsnr``).

Every function returns levels as ``lambda`` values in descending order of timestep (ascending
``lambda``), one per evaluation, the first at ``t = T - 1``.
"""

from __future__ import annotations

import math

import numpy as np

from diffusion_notes.schedules import Schedule

KARRAS_RHO = 7.0
# the snr_window placement's window in lambda = -log(sigma~): sigma~ from 2 down to 0.06
LAMBDA_LO = -math.log(2.0)
LAMBDA_HI = -math.log(0.06)


def lambdas(schedule: Schedule) -> np.ndarray:
    """``lambda[t] = 0.5 log(abar / (1 - abar))`` for ``t = 0 .. T-1`` (float64, decreasing)."""
    return 0.5 * schedule.log_snr.numpy()


def _check(schedule: Schedule, n: int, t_min: int) -> np.ndarray:
    lam = lambdas(schedule)
    if not np.isfinite(lam).all():
        raise ValueError(
            "schedule-dependent spacings need a finite log-SNR at every timestep; this schedule "
            "reaches alpha_bar = 0 or 1 (zero terminal SNR): use 'trailing' spacing instead"
        )
    if not 0 <= t_min <= schedule.T - n:
        raise ValueError(
            f"t_min={t_min} must lie in [0, T - n_steps] = [0, {schedule.T - n}] so that "
            f"{n} distinct timesteps fit above it"
        )
    return lam


def logsnr_levels(schedule: Schedule, n: int, *, t_min: int = 0) -> np.ndarray:
    """``n`` levels uniform in lambda from ``lambda[T-1]`` to ``lambda[t_min]`` (both included)."""
    lam = _check(schedule, n, t_min)
    if n == 1:
        return lam[-1:].copy()
    return np.linspace(lam[-1], lam[t_min], n)


def karras_levels(
    schedule: Schedule, n: int, *, t_min: int = 0, rho: float = KARRAS_RHO
) -> np.ndarray:
    """``sigma~_i = (smax^(1/rho) + i/(n-1) (smin^(1/rho) - smax^(1/rho)))^rho`` (Karras et al.
    2022, eq. 5) between ``sigma~[T-1]`` and ``sigma~[t_min]``, as lambda = -log sigma~."""
    lam = _check(schedule, n, t_min)
    if n == 1:
        return lam[-1:].copy()
    smax, smin = math.exp(-lam[-1]), math.exp(-lam[t_min])
    r = np.linspace(0.0, 1.0, n)
    sig = (smax ** (1 / rho) + r * (smin ** (1 / rho) - smax ** (1 / rho))) ** rho
    return -np.log(sig)


def snr_window_levels(
    schedule: Schedule, n: int, *, lam_lo: float = LAMBDA_LO, lam_hi: float = LAMBDA_HI
) -> np.ndarray:
    """The first level at ``t = T - 1``, then ``n - 1`` levels uniform in lambda over
    ``[max(lam_lo, lambda[T-1]), min(lam_hi, lambda[0])]``, both ends included."""
    lam = _check(schedule, n, 0)
    if n == 1:
        return lam[-1:].copy()
    if not lam_lo < lam_hi:
        raise ValueError(f"the window needs lam_lo < lam_hi, got {lam_lo} and {lam_hi}")
    lo, hi = max(lam_lo, float(lam[-1])), min(lam_hi, float(lam[0]))
    if n == 2:
        return np.array([lam[-1], hi])
    return np.concatenate([lam[-1:], np.linspace(lo, hi, n - 1)])


def nearest_timesteps(schedule: Schedule, levels: np.ndarray) -> list[int]:
    """The training timestep whose lambda is nearest to each level (lambda decreases in t)."""
    lam = lambdas(schedule)
    rev = lam[::-1]  # ascending, index T-1-t
    idx = np.clip(np.searchsorted(rev, levels), 1, len(rev) - 1)
    left, right = rev[idx - 1], rev[idx]
    pick = np.where(np.abs(levels - left) <= np.abs(right - levels), idx - 1, idx)
    return [int(len(rev) - 1 - i) for i in pick]
