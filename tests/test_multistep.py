"""Fast-sampling solvers and placements: orders on an exact-score mixture, parity with diffusers'
DPM-Solver++(3M), exact integrals of the exponential Adams weights, and the placements' ends."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from diffusion_notes.denoiser import Denoiser
from diffusion_notes.placements import LAMBDA_HI, lambdas
from diffusion_notes.samplers import sample_dpm_solver_pp_3m, sample_exp_adams
from diffusion_notes.samplers.multistep import (
    exp_lagrange_weights,
    final_extrapolation_weights,
)
from diffusion_notes.schedules import make_schedule
from diffusion_notes.timesteps import LEVEL_SPACINGS, timestep_pairs, timesteps
from tests.conftest import skewed_mixture

pytestmark = [
    pytest.mark.usefixtures("single_thread"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]
F64 = torch.float64


def noise(n: int, seed: int, shape: tuple[int, ...] = (2,)) -> torch.Tensor:
    return torch.randn(n, *shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


# -- placements ---------------------------------------------------------------------------
@pytest.mark.parametrize("spacing", LEVEL_SPACINGS)
@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 10, 20, 50, 200, 999, 1000])
def test_level_spacings_descend_from_T_minus_1(spacing: str, n: int) -> None:
    s = make_schedule("linear", 1000)
    ts = timesteps(1000, n, spacing, schedule=s)
    assert len(ts) == n and ts[0] == 999
    assert all(a > b for a, b in zip(ts, ts[1:], strict=False)) and ts[-1] >= 0
    if n == 1000:  # n = T degenerates to every timestep
        assert ts == list(range(999, -1, -1))
    if n >= 2 and spacing in ("logsnr", "karras"):
        assert ts[-1] == 0  # the docstring's end: t_min = 0
    if 2 <= n <= 50 and spacing == "snr_window":
        # ends at the timestep nearest to the window's top, sigma~ = 0.03
        lam = lambdas(s)
        assert ts[-1] == int(np.argmin(np.abs(lam - LAMBDA_HI)))


@pytest.mark.parametrize("spacing", ["logsnr", "karras"])
def test_level_spacing_t_min_and_shape(spacing: str) -> None:
    s = make_schedule("linear", 1000)
    ts = timesteps(1000, 10, spacing, schedule=s, t_min=20)
    assert ts[0] == 999 and ts[-1] == 20
    lam = lambdas(s)[ts]
    gaps = np.diff(lam)
    if spacing == "logsnr":  # uniform in lambda up to rounding to integer timesteps
        assert gaps.max() - gaps.min() < 0.05 * gaps.mean()
    else:  # Karras rho = 7 crowds the low-noise end: lambda gaps grow towards t_min
        assert all(a < b for a, b in zip(gaps, gaps[1:], strict=False))


def test_level_spacings_need_the_schedule() -> None:
    with pytest.raises(ValueError, match="schedule="):
        timestep_pairs(1000, 10, "logsnr")
    with pytest.raises(ValueError, match="allowed"):
        timestep_pairs(1000, 10, "log-snr")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="t_min"):
        timestep_pairs(1000, 10, "trailing", t_min=3)


# -- exact weights ------------------------------------------------------------------------
def test_exp_lagrange_weights_integrate_polynomials_exactly() -> None:
    lam_s, lam_t = -1.3, 0.9
    h = lam_t - lam_s
    nodes = [lam_s, lam_s - 0.7, lam_s - 1.5]
    w = exp_lagrange_weights(nodes, lam_s, lam_t)
    # integral_{-h}^0 e^u du = 1 - e^-h and integral_{-h}^0 e^u u du = -1 + e^-h (1 + h),
    # with u = lambda - lam_t; a 1 % change in any weight breaks these at 1e-12
    assert sum(w) == pytest.approx(-math.expm1(-h), abs=1e-12)
    moment = sum(wj * (lj - lam_t) for wj, lj in zip(w, nodes, strict=True))
    assert moment == pytest.approx(-1 + math.exp(-h) * (1 + h), abs=1e-12)
    quad = sum(wj * (lj - lam_t) ** 2 for wj, lj in zip(w, nodes, strict=True))
    # integral e^u u^2 du = [e^u (u^2 - 2u + 2)]_{-h}^0 = 2 - e^-h (h^2 + 2h + 2)
    assert quad == pytest.approx(2 - math.exp(-h) * (h * h + 2 * h + 2), abs=1e-12)


def test_final_extrapolation_is_exact_for_lines_in_sigma_squared() -> None:
    lam0, lam1 = 2.0, 1.0
    w0, w1 = final_extrapolation_weights(lam0, lam1)
    c0, c1 = 0.4, -2.5  # D(sigma~) = c0 + c1 sigma~^2 must extrapolate to c0
    d0, d1 = c0 + c1 * math.exp(-2 * lam0), c0 + c1 * math.exp(-2 * lam1)
    assert w0 * d0 + w1 * d1 == pytest.approx(c0, abs=1e-14)


# -- orders on the exact-score mixture ----------------------------------------------------
def _errors(sampler, ns: tuple[int, ...], **kw) -> list[float]:
    """Mean distance to a 600-step solution after n logsnr steps, ending at alpha_bar[0]
    (set_alpha_to_one=False: every step is a regular step, none jumps to sigma = 0)."""
    s = make_schedule("linear", 1000)
    den = Denoiser(skewed_mixture().eps_model(s), s)
    x = noise(1500, 3)
    ref = sample_exp_adams(den, x, timestep_pairs(1000, 600, "logsnr", schedule=s), order=3,
                           set_alpha_to_one=False, progress=False)
    return [
        (sampler(den, x, timestep_pairs(1000, n, "logsnr", schedule=s),
                 set_alpha_to_one=False, progress=False, **kw) - ref).norm(dim=1).mean().item()
        for n in ns
    ]


@pytest.mark.parametrize(
    ("order", "corrector", "low", "high"),
    [
        # doubling the steps from 40 to 80 divides the error by about 2^order (2^(order+1) with
        # the corrector); measured 4.21, 7.89, 7.73, 14.76 (the first steps run at lower order,
        # which keeps the ratio a little below 2^p at these step counts)
        (2, False, 3.2, 5.0),
        (2, True, 6.0, 10.0),
        (3, False, 6.0, 10.0),
        (3, True, 11.0, 20.0),
    ],
)
def test_exp_adams_order(order: int, corrector: bool, low: float, high: float) -> None:
    e40, e80 = _errors(sample_exp_adams, (40, 80), order=order, corrector=corrector)
    assert low < e40 / e80 < high


def test_dpm_solver_pp_3m_order() -> None:
    """DPM-Solver++(3M) as Lu et al.'s code and diffusers write it converges at second order:
    its second-difference weight is about h/6 where the exact quadratic term needs h/3.
    Measured 40 -> 80 steps: 4.23 (with that weight doubled: 7.73, equal to exp. Adams 3)."""
    e40, e80 = _errors(sample_dpm_solver_pp_3m, (40, 80))
    assert 3.2 < e40 / e80 < 5.0
    adams3 = _errors(sample_exp_adams, (40,), order=3, corrector=False)[0]
    assert adams3 < 0.5 * e40  # the exact third-order integral is measurably better (0.33x)


@pytest.mark.parametrize("n", [5, 8, 20])
def test_dpm_solver_pp_3m_matches_diffusers(n: int) -> None:
    from diffusers import DPMSolverMultistepScheduler

    s = make_schedule("linear", 1000)
    model = skewed_mixture().eps_model(s)
    x = noise(64, 5)
    ref = DPMSolverMultistepScheduler(num_train_timesteps=1000, beta_schedule="linear",
                                      solver_order=3, timestep_spacing="trailing")
    ref.set_timesteps(n)
    y = x.clone()
    for t in ref.timesteps:
        y = ref.step(model(y, torch.full((64,), int(t))), t, y).prev_sample
    ours = sample_dpm_solver_pp_3m(Denoiser(model, s), x,
                                   timestep_pairs(1000, n, "trailing"), progress=False)
    # float64 on both sides; diffusers keeps its sigmas in float32, hence 1e-5
    torch.testing.assert_close(ours, y, rtol=1e-5, atol=1e-5)


# -- DDIM inversion -----------------------------------------------------------------------
def test_ddim_inversion_error_shrinks_like_one_over_steps() -> None:
    """Inversion then sampling with the same n trailing steps returns x0 up to the two passes'
    first-order discretisation error, so the tolerance is C / n. Measured median error on the
    exact-score mixture: 0.198, 0.052, 0.0133 at n = 20, 80, 320 (n x error ~ 4); C = 5 leaves
    25 % margin, and the error must fall by more than 3x per 4x steps (first order: 4x)."""
    from diffusion_notes.samplers import ddim_invert, sample_ddim

    s = make_schedule("linear", 1000)
    gm = skewed_mixture()
    den = Denoiser(gm.eps_model(s), s)
    x0 = gm.sample(500, generator=torch.Generator().manual_seed(4))
    errs = []
    for n in (20, 80, 320):
        pairs = timestep_pairs(1000, n, "trailing")
        back = sample_ddim(den, ddim_invert(den, x0, pairs, progress=False), pairs, progress=False)
        errs.append((back - x0).norm(dim=1).median().item())
        assert errs[-1] < 5.0 / n, (n, errs[-1])
    assert errs[0] / errs[1] > 3.0 and errs[1] / errs[2] > 3.0
