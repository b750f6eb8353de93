"""Schedules: float64 views, the named schedules against diffusers, zero terminal SNR, extract."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion_notes.diffusion import q_posterior
from diffusion_notes.schedules import (
    SCHEDULE_NAMES,
    Schedule,
    alpha_bar_at,
    extract,
    final_alpha_bar,
    make_schedule,
    posterior_coefficients,
    rescale_zero_terminal_snr,
)

DIFFUSERS_NAME = {
    "linear": "linear",
    "scaled_linear": "scaled_linear",
    "cosine": "squaredcos_cap_v2",
    "sigmoid": "sigmoid",
}
KWARGS = {"scaled_linear": {"beta_start": 0.00085, "beta_end": 0.012}}


def test_snr_and_alpha_bar_views() -> None:
    s = make_schedule("linear", 200)
    assert s.betas.dtype == torch.float64 and s.T == 200
    # alpha_bar is the running product of alphas (plain Python loop as the independent path)
    prod, ab = 1.0, []
    for b in s.betas.tolist():
        prod *= 1.0 - b
        ab.append(prod)
    torch.testing.assert_close(
        s.alpha_bar, torch.tensor(ab, dtype=torch.float64), rtol=1e-13, atol=0
    )
    torch.testing.assert_close(s.alpha_bar_prev[1:], s.alpha_bar[:-1])
    assert s.alpha_bar_prev[0] == 1.0
    torch.testing.assert_close(
        s.sqrt_alpha_bar**2 + s.sigma**2, torch.ones(200, dtype=torch.float64)
    )
    torch.testing.assert_close(s.snr, s.alpha_bar / (1 - s.alpha_bar))
    torch.testing.assert_close(s.log_snr, torch.log(s.snr))
    assert bool((s.snr[1:] < s.snr[:-1]).all()), "SNR must decrease with t"
    # beta tilde equals the variance of q(x_{t-1} | x_t, x_0) computed by q_posterior
    x = torch.zeros(200, 1, dtype=torch.float64)
    post = q_posterior(s, x, x, torch.arange(200))
    torch.testing.assert_close(post.variance.reshape(-1), s.posterior_variance)
    assert s.posterior_variance[0] == 0.0
    torch.testing.assert_close(
        s.posterior_log_variance_clipped[0], torch.log(s.posterior_variance[1])
    )
    torch.testing.assert_close(
        s.posterior_log_variance_clipped[1:], torch.log(s.posterior_variance[1:])
    )
    assert s.alpha_bar_list == s.alpha_bar.tolist()


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
@pytest.mark.parametrize("zero_snr", [False, True])
def test_schedules_match_diffusers(name: str, zero_snr: bool) -> None:
    from diffusers import DDPMScheduler

    ref = DDPMScheduler(
        num_train_timesteps=1000,
        beta_schedule=DIFFUSERS_NAME[name],
        rescale_betas_zero_snr=zero_snr,
        **KWARGS.get(name, {}),
    )
    ours = make_schedule(name, 1000, rescale_zero_terminal_snr=zero_snr, **KWARGS.get(name, {}))
    # diffusers holds betas and their cumulative product in float32: betas agree to float32
    # rounding (measured <= 2.2e-7 relative) and alpha_bar to <= 8e-7 absolute (float32 cumprod
    # of 1000 terms). The rescaled betas near t = T-1 are ratios of tiny float32 numbers there,
    # so for them only alpha_bar is compared.
    if not zero_snr:
        torch.testing.assert_close(ref.betas.double(), ours.betas, rtol=1e-6, atol=0)
    torch.testing.assert_close(ref.alphas_cumprod.double(), ours.alpha_bar, rtol=0, atol=2e-6)


def test_cosine_schedule_is_nichol_dhariwal() -> None:
    s = make_schedule("cosine", 1000)

    def f(u: float) -> float:
        return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

    ab_expected = torch.tensor(
        [f((t + 1) / 1000) / f(0.0) for t in range(1000)], dtype=torch.float64
    )
    capped = s.betas >= 0.999
    assert s.betas.max().item() == pytest.approx(0.999) and bool(capped[-1])
    first_cap = int(capped.nonzero()[0])
    # before the cap, alpha_bar telescopes to f((t+1)/T) / f(0) (Nichol & Dhariwal 2021, eq. 17)
    torch.testing.assert_close(s.alpha_bar[:first_cap], ab_expected[:first_cap], rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_zero_terminal_snr_rescale(name: str) -> None:
    base = make_schedule(name, 1000, **KWARGS.get(name, {}))
    z = make_schedule(name, 1000, rescale_zero_terminal_snr=True, **KWARGS.get(name, {}))
    assert z.alpha_bar[-1].item() == 0.0 and z.betas[-1].item() == pytest.approx(1.0)
    assert z.snr[-1].item() == 0.0 and z.log_snr[-1].item() == -math.inf
    assert z.sqrt_alpha_bar[0].item() == pytest.approx(base.sqrt_alpha_bar[0].item(), rel=1e-12)
    # Lin et al. 2023, Alg. 1: the new sqrt(alpha_bar) is an affine map of the old one
    a0, aT = base.sqrt_alpha_bar[0], base.sqrt_alpha_bar[-1]
    torch.testing.assert_close(z.sqrt_alpha_bar, (base.sqrt_alpha_bar - aT) * a0 / (a0 - aT))
    assert bool((z.alpha_bar[1:] < z.alpha_bar[:-1]).all())
    torch.testing.assert_close(rescale_zero_terminal_snr(base.betas), z.betas)


def test_from_alpha_bar_round_trip() -> None:
    s = make_schedule("scaled_linear", 300, beta_start=0.00085, beta_end=0.012)
    torch.testing.assert_close(
        Schedule.from_alpha_bar(s.alpha_bar).betas, s.betas, rtol=1e-10, atol=1e-15
    )


@pytest.mark.parametrize(
    "shape", [(5, 2), (5, 3, 8, 8), (5, 3, 4, 8, 8)], ids=["points", "images", "videos"]
)
def test_extract_broadcasts(shape: tuple[int, ...]) -> None:
    s = make_schedule("linear", 100)
    like = torch.zeros(shape, dtype=torch.float32)
    t = torch.tensor([0, 10, 20, 30, 99])
    out = extract(s.alpha_bar, t, like)
    assert out.shape == (5,) + (1,) * (len(shape) - 1) and out.dtype == torch.float32
    torch.testing.assert_close(out.reshape(-1), s.alpha_bar[t].float())
    assert (out * like).shape == like.shape
    scalar = extract(s.alpha_bar, 7, like)
    assert scalar.shape == (1,) * len(shape) and scalar.item() == pytest.approx(
        s.alpha_bar[7].item()
    )
    with pytest.raises(ValueError, match="integer"):
        extract(s.alpha_bar, torch.tensor([0.5]), like)


def test_unknown_schedule_name_raises() -> None:
    with pytest.raises(ValueError, match="'quadratic'.*linear, scaled_linear, cosine, sigmoid"):
        make_schedule("quadratic")  # type: ignore[arg-type]


@pytest.mark.parametrize("betas", [[0.1, 0.0], [0.5, 1.5], [[0.1]], [0.1, float("nan")]])
def test_bad_betas_raise(betas: list) -> None:
    with pytest.raises(ValueError, match="beta"):
        Schedule(torch.tensor(betas))


def test_bad_T_raises() -> None:
    with pytest.raises(ValueError, match="T must be a positive integer"):
        make_schedule("linear", 0)


def test_final_alpha_bar_choice() -> None:
    s = make_schedule("linear", 1000)
    assert final_alpha_bar(s, True) == 1.0
    assert final_alpha_bar(s, False) == pytest.approx(1 - 1e-4)
    assert alpha_bar_at(s, -1, set_alpha_to_one=False) == float(s.alpha_bar[0])
    assert alpha_bar_at(s, 500) == float(s.alpha_bar[500])
    # the tensor view of alpha_bar at t - 1 uses the same value at t = -1
    assert s.alpha_bar_padded(False)[0].item() == final_alpha_bar(s, False)
    assert s.alpha_bar_prev[0].item() == final_alpha_bar(s, True)


def test_posterior_coefficients_floats_and_tensors_agree() -> None:
    """One formula serves the samplers' floats and q_posterior's tensors alike, and it is the
    posterior: averaging q(x_prev | x_t, x0) over q(x_t | x0) gives back q(x_prev | x0)."""
    s = make_schedule("cosine", 1000)
    t, tp = 700, 350
    ab, ab_p = s.alpha_bar_list[t], s.alpha_bar_list[tp]
    floats = posterior_coefficients(ab, ab_p)
    tensors = posterior_coefficients(s.alpha_bar[t], s.alpha_bar[tp])
    for f, v in zip(floats, tensors, strict=True):
        assert f == pytest.approx(v.item(), rel=1e-14)
    # the mean weights reproduce x_prev's marginal mean: sqrt(abar_prev) x0 = c0 x0 + ct a_t x0
    assert floats.c0 + floats.ct * math.sqrt(ab) == pytest.approx(math.sqrt(ab_p), rel=1e-12)
    # ... and its variance: 1 - abar_prev = variance + ct^2 (1 - abar_t)
    total = floats.variance + floats.ct**2 * (1 - ab)
    assert total == pytest.approx(1 - ab_p, rel=1e-12)
