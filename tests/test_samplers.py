"""Samplers: identities between them, no final noise, exact-score recovery of a known target,
convergence order, inversion, option checks."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion_notes.data.gmm import GaussianMixture
from diffusion_notes.denoiser import Denoiser, dynamic_threshold
from diffusion_notes.diffusion import q_posterior
from diffusion_notes.samplers import (
    ddim_invert,
    ddim_sigma,
    sample_ddim,
    sample_ddpm,
    sample_dpm_solver_pp,
    sample_euler,
    sample_heun,
    sample_lcm,
    sample_tcd,
)
from diffusion_notes.schedules import make_schedule
from diffusion_notes.timesteps import full_pairs, lcm_pairs, timestep_pairs
from tests.conftest import skewed_mixture

F64 = torch.float64
SAMPLERS = {
    "ddpm": sample_ddpm,
    "ddim": sample_ddim,
    "dpm_solver_pp": sample_dpm_solver_pp,
    "euler": sample_euler,
    "heun": sample_heun,
    "lcm": sample_lcm,
    "tcd": sample_tcd,
}


pytestmark = pytest.mark.usefixtures("single_thread")


def target() -> GaussianMixture:
    return skewed_mixture()


def noise(
    n: int, seed: int, shape: tuple[int, ...] = (2,), dtype: torch.dtype = F64
) -> torch.Tensor:
    return torch.randn(n, *shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def linear_model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A fixed, imperfect eps-network for identities that hold for any model."""
    return 0.5 * torch.tanh(x) + 1e-3 * t.reshape(-1, *([1] * (x.ndim - 1))).to(x.dtype)


# -- identities ---------------------------------------------------------------------------
def test_ddim_eta1_matches_ddpm_variance() -> None:
    s = make_schedule("linear", 1000)
    pairs = timestep_pairs(1000, 37, "trailing")
    # per step: sigma(eta=1)^2 equals the variance of q(x_{t_prev} | x_t, x0) (beta tilde)
    for t, tp in pairs[:-1]:
        post = q_posterior(
            s, torch.zeros(1, 1, dtype=F64), torch.zeros(1, 1, dtype=F64), t, t_prev=tp
        )
        assert ddim_sigma(s, t, tp, 1.0) ** 2 == pytest.approx(post.variance.item(), rel=1e-12)
    # and in distribution: one step from a fixed x_t, many noise draws, same mean and variance
    n, (t, tp) = 100_000, (600, 450)
    x = noise(1, 0).expand(n, 2).contiguous()
    y_ddim = sample_ddim(
        Denoiser(linear_model, s),
        x,
        [(t, tp)],
        eta=1.0,
        generator=torch.Generator().manual_seed(1),
        progress=False,
    )
    y_ddpm = sample_ddpm(
        Denoiser(linear_model, s), x, [(t, tp)], generator=torch.Generator().manual_seed(2), progress=False
    )
    var = ddim_sigma(s, t, tp, 1.0) ** 2
    se_mean, se_var = math.sqrt(var / n), var * math.sqrt(2 / n)
    for y in (y_ddim, y_ddpm):
        assert ((y.var(0) - var).abs() < 5 * se_var).all()
    assert ((y_ddim.mean(0) - y_ddpm.mean(0)).abs() < 5 * math.sqrt(2) * se_mean).all()


@pytest.mark.parametrize("variance", ["fixed_small", "fixed_large"])
@pytest.mark.parametrize("t", [1, 10, 500, 999])
def test_ddpm_step_is_algorithm_2(variance: str, t: int) -> None:
    """One step of sample_ddpm is line 4 of Ho et al.'s Algorithm 2, to rounding:
    x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) eps_theta) / sqrt(alpha_t) + sigma_t z, with
    sigma_t^2 = beta tilde_t or beta_t, computed here from the betas by a plain Python product and
    the same noise draw z (the sampler draws it from the generator it is given). Float64, so
    rtol 1e-10 rejects a 1 % error in any coefficient, a shifted index or a flipped sign."""
    s = make_schedule("linear", 1000)
    betas = s.betas.tolist()
    ab = math.prod(1.0 - b for b in betas[: t + 1])
    ab_prev = ab / (1.0 - betas[t])
    beta = betas[t]
    var = beta if variance == "fixed_large" else beta * (1 - ab_prev) / (1 - ab)
    x = noise(64, 30)
    eps_hat = linear_model(x, torch.full((64,), t))
    z = torch.randn(x.shape, generator=torch.Generator().manual_seed(31), dtype=F64)
    expected = (x - beta / math.sqrt(1 - ab) * eps_hat) / math.sqrt(1 - beta) + math.sqrt(var) * z
    got = sample_ddpm(
        Denoiser(linear_model, s),
        x,
        [(t, t - 1)],
        variance=variance,  # type: ignore[arg-type]
        generator=torch.Generator().manual_seed(31),
        progress=False,
    )
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


def test_dpm_solver_order1_equals_ddim() -> None:
    s = make_schedule("cosine", 1000)
    x = noise(64, 3)
    den = Denoiser(linear_model, s)
    for spacing in ("leading", "trailing", "linspace"):
        pairs = timestep_pairs(1000, 25, spacing)
        a = sample_dpm_solver_pp(den, x, pairs, order=1, progress=False)
        b = sample_ddim(den, x, pairs, eta=0.0, progress=False)
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
        c = sample_dpm_solver_pp(den, x, pairs, order=2, progress=False)
        assert (c - b).abs().max() > 1e-4  # the second-order correction is really applied


def test_euler_equals_ddim_eta0() -> None:
    """Euler on dx~/dsigma~ = eps is DDIM with eta = 0 (Song et al. 2021, sec. 4.3)."""
    s = make_schedule("linear", 1000)
    x = noise(64, 4)
    pairs = timestep_pairs(1000, 13, "trailing")
    torch.testing.assert_close(
        sample_euler(Denoiser(linear_model, s), x, pairs, progress=False),
        sample_ddim(Denoiser(linear_model, s), x, pairs, progress=False),
        rtol=1e-12,
        atol=1e-12,
    )


@pytest.mark.parametrize("name", SAMPLERS)
def test_last_step_adds_no_noise(name: str) -> None:
    """Two runs that differ only in their random generator agree exactly on the last step."""
    s = make_schedule("linear", 1000)
    x = noise(16, 5)
    kwargs = {
        "ddpm": {"variance": "fixed_large"},
        "ddim": {"eta": 1.0, "set_alpha_to_one": False},
    }.get(name, {})
    outs = []
    for seed in (0, 1):
        kw = dict(kwargs)
        if name in ("ddpm", "ddim", "lcm", "tcd"):
            kw["generator"] = torch.Generator().manual_seed(seed)
        outs.append(SAMPLERS[name](Denoiser(linear_model, s), x, [(7, -1)], progress=False, **kw))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)
    if name in ("ddpm", "ddim", "lcm", "tcd"):  # ... while a step to t_prev >= 0 is random
        kw = dict(kwargs)
        a = SAMPLERS[name](
            Denoiser(linear_model, s),
            x,
            [(7, 3)],
            generator=torch.Generator().manual_seed(0),
            progress=False,
            **kw,
        )
        b = SAMPLERS[name](
            Denoiser(linear_model, s),
            x,
            [(7, 3)],
            generator=torch.Generator().manual_seed(1),
            progress=False,
            **kw,
        )
        assert (a - b).abs().max() > 1e-3


def test_lcm_single_step_is_the_consistency_function() -> None:
    s = make_schedule("scaled_linear", 1000, beta_start=0.00085, beta_end=0.012)
    x = noise(8, 6)
    t = 999
    den = Denoiser(linear_model, s)
    out = sample_lcm(den, x, [(t, -1)], progress=False)
    a, sig = s.sqrt_alpha_bar[t].item(), s.sigma[t].item()
    x0 = (x - sig * linear_model(x, torch.full((8,), t))) / a
    u = 10.0 * t  # LCM boundary scalings, sigma_data = 0.5
    c_skip, c_out = 0.25 / (u * u + 0.25), u / math.sqrt(u * u + 0.25)
    torch.testing.assert_close(out, c_skip * x + c_out * x0)
    # at t = 0 the consistency function is the identity (boundary condition c_skip = 1)
    torch.testing.assert_close(sample_lcm(den, x, [(0, -1)], progress=False), x)


# -- recovery of a known target -----------------------------------------------------------
def moment_failures(y: torch.Tensor, gm: GaussianMixture, n_se: float = 5.0) -> list[str]:
    """Compare sample mean, covariance and mixture weights with the target, each within n_se
    standard errors computed for this sample size (from the target's own moments)."""
    n = y.shape[0]
    failures = []
    cov_true = gm.covariance()
    se_mean = (torch.diagonal(cov_true) / n).sqrt()
    if ((y.mean(0) - gm.mean()).abs() > n_se * se_mean).any():
        failures.append(f"mean {y.mean(0).tolist()} vs {gm.mean().tolist()}")
    ref = gm.sample(200_000, generator=torch.Generator().manual_seed(99))  # for 4th moments
    c = ref - ref.mean(0)
    se_cov = (c[:, :, None] * c[:, None, :]).reshape(len(ref), -1).std(0).reshape(2, 2) / math.sqrt(
        n
    )
    if ((torch.cov(y.T) - cov_true).abs() > n_se * se_cov).any():
        failures.append(f"cov {torch.cov(y.T).tolist()} vs {cov_true.tolist()}")
    r = gm.responsibilities(y)  # E_p[r_k] = w_k; binomial-type std error std(r_k)/sqrt(n)
    se_w = gm.responsibilities(ref).std(0) / math.sqrt(n)
    if ((r.mean(0) - gm.weights).abs() > n_se * se_w).any():
        failures.append(f"weights {r.mean(0).tolist()} vs {gm.weights.tolist()}")
    return failures


RECOVERY = {
    "ddpm_1000": (sample_ddpm, None, "eps", {"generator": 1}),
    "ddim_100": (sample_ddim, 100, "eps", {}),
    "dpm_solver_pp_20": (sample_dpm_solver_pp, 20, "eps", {}),
    "dpm_solver_pp_20_v_zero_snr": (sample_dpm_solver_pp, 20, "v", {}),
}


@pytest.mark.parametrize("case", RECOVERY)
def test_exact_score_recovery(case: str) -> None:
    """With the mixture's exact eps as the network, samples have the target's mean, covariance
    and mixture weights (n = 8000, 5 standard errors: a false alarm rate below 1e-5 per check)."""
    sampler, n_steps, prediction, extra = RECOVERY[case]
    s = make_schedule("linear", 1000, rescale_zero_terminal_snr=case.endswith("zero_snr"))
    gm = target()
    pairs = full_pairs(1000) if n_steps is None else timestep_pairs(1000, n_steps, "trailing")
    kwargs = {k: torch.Generator().manual_seed(v) for k, v in extra.items()}
    y = sampler(
        Denoiser(gm.eps_model(s, prediction), s, prediction=prediction),
        noise(8000, 7),
        pairs,
        progress=False,
        **kwargs,
    )
    assert moment_failures(y, gm) == []


@pytest.mark.parametrize(
    "solver, n_steps, tol",
    [("ddim", 1000, 4e-3), ("euler", 1000, 4e-3), ("heun", 200, 2e-3), ("dpm_solver_pp", 200, 2e-3)],
)
def test_probability_flow_transports_gaussian(solver: str, n_steps: int, tol: float) -> None:
    """The probability-flow ODE dx/dt = f - g^2/2 score (Song et al. 2021) keeps each point's
    standardised position z = (x_t - sqrt(abar_t) m) / sqrt(v_t), v_t = abar_t c^2 + 1 - abar_t,
    when the data are N(m, c^2 I) (the score note derives it). So integrating from x_T with the
    exact eps of that Gaussian must land on m + c z_T. Each solver discretises the ODE in its own
    way; the tolerance on the root-mean-square error is about twice the measured discretisation
    error (first order, 1000 steps: 2.1e-3; second order, 200 steps: Heun 8e-4, DPM-Solver++ 3e-4;
    the last step to clean data is first order for all of them)."""
    s = make_schedule("linear", 1000)
    m = torch.tensor([0.5, -1.0], dtype=F64)
    c = 0.5

    def exact_eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a, sig = s.sqrt_alpha_bar[t, None], s.sigma[t, None]
        return sig * (x - a * m) / (a**2 * c**2 + sig**2)  # -sigma * score of N(a m, v I)

    x_T = noise(500, 32)
    ab_T = s.alpha_bar[-1].item()
    expected = m + c * (x_T - math.sqrt(ab_T) * m) / math.sqrt(ab_T * c**2 + 1 - ab_T)
    pairs = timestep_pairs(1000, n_steps, "trailing")
    out = SAMPLERS[solver](Denoiser(exact_eps, s), x_T, pairs, progress=False)
    assert (out - expected).pow(2).sum(1).mean().sqrt().item() < tol


def test_exact_score_recovery_detects_missing_noise() -> None:
    """The same check rejects DDPM run without its noise (the classic sampling bug)."""
    s = make_schedule("linear", 1000)
    gm = target()
    pairs = timestep_pairs(1000, 100, "trailing")
    den = Denoiser(gm.eps_model(s), s)
    y = sample_ddpm(den, noise(8000, 7), pairs, add_noise=False, progress=False)
    assert any(f.startswith("cov") for f in moment_failures(y, gm))


@pytest.mark.parametrize(
    "sampler, low, high",
    [(sample_euler, 1.7, 2.3), (sample_heun, 2.8, 4.5), (sample_dpm_solver_pp, 2.8, 4.5)],
    ids=["euler", "heun", "dpm_solver_pp"],
)
def test_convergence_order(sampler, low: float, high: float) -> None:
    """Error against a 1000-step solution shrinks ~2x (first order) or ~4x (second order) when the
    step count doubles from 40 to 80. Deterministic; ratios measured: Euler 1.97, Heun 3.26,
    DPM-Solver++(2M) 3.36 (the last step to t = -1 is first order for all of them)."""
    s = make_schedule("linear", 1000)
    den = Denoiser(target().eps_model(s), s)
    x = noise(2000, 8)
    ref = sample_dpm_solver_pp(den, x, timestep_pairs(1000, 1000, "trailing"), progress=False)
    errs = [
        (sampler(den, x, timestep_pairs(1000, n, "trailing"), progress=False) - ref)
        .norm(dim=1)
        .mean()
        .item()
        for n in (40, 80)
    ]
    assert low < errs[0] / errs[1] < high


def test_heun_uses_two_evaluations_per_step_but_the_last() -> None:
    s = make_schedule("linear", 1000)
    calls = []

    def counting(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        calls.append(int(t[0]))
        return linear_model(x, t)

    sample_heun(Denoiser(counting, s), noise(4, 9), timestep_pairs(1000, 6, "trailing"), progress=False)
    assert len(calls) == 2 * 6 - 1


# -- inversion ----------------------------------------------------------------------------
def test_ddim_inversion_roundtrip() -> None:
    s = make_schedule("linear", 1000)
    pairs = timestep_pairs(1000, 50, "leading")
    x0 = noise(32, 10)

    def constant(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:  # eps independent of x, t
        return torch.full_like(x, 0.3)

    # with an eps that does not depend on (x, t), inversion and sampling are exact inverses
    const = Denoiser(constant, s)
    z = ddim_invert(const, x0, pairs, progress=False)
    torch.testing.assert_close(
        sample_ddim(const, z, pairs, progress=False), x0, rtol=1e-9, atol=1e-9
    )
    # with the exact mixture eps, reconstruction error is small and shrinks with more steps
    gm = target()
    model = Denoiser(gm.eps_model(s), s)
    data = gm.sample(2000, generator=torch.Generator().manual_seed(11))
    errs = []
    for n in (50, 200):
        p = timestep_pairs(1000, n, "leading")
        back = sample_ddim(model, ddim_invert(model, data, p, progress=False), p, progress=False)
        errs.append((back - data).norm(dim=1).median().item())
    assert errs[1] < 0.05 and errs[1] < errs[0]


# -- options and bad input ----------------------------------------------------------------
@pytest.mark.parametrize("name", ["ddim", "dpm_solver_pp", "euler", "heun", "lcm", "tcd", "ddpm"])
def test_zero_terminal_snr_eps_prediction_raises(name: str) -> None:
    s = make_schedule("linear", 1000, rescale_zero_terminal_snr=True)
    x = noise(4, 12)
    den = Denoiser(linear_model, s)
    with pytest.raises(ValueError, match="eps-prediction is undefined at t=999.*v-prediction"):
        SAMPLERS[name](den, x, timestep_pairs(1000, 10, "trailing"), progress=False)
    # v-prediction is fine there, and eps with leading spacing never visits t = T-1
    v_den = den.replace(prediction="v")
    out = SAMPLERS[name](v_den, x, timestep_pairs(1000, 10, "trailing"), progress=False)
    assert torch.isfinite(out).all()
    out = SAMPLERS[name](den, x, timestep_pairs(1000, 10, "leading"), progress=False)
    assert torch.isfinite(out).all()


def test_bad_options_raise() -> None:
    s = make_schedule("linear", 100)
    x = noise(4, 13)
    pairs = timestep_pairs(100, 5, "trailing")
    den = Denoiser(linear_model, s)
    # the denoiser's options are checked where the denoiser is built
    with pytest.raises(ValueError, match="'epsilon'.*eps, x0, v"):
        Denoiser(linear_model, s, prediction="epsilon")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="choose one of clip_x0"):
        Denoiser(linear_model, s, clip_x0=True, threshold=0.99)
    with pytest.raises(ValueError, match="quantile in \\(0, 1\\]"):
        Denoiser(linear_model, s, threshold=99.5)
    with pytest.raises(TypeError, match="must be a Denoiser.*Denoiser\\(net, schedule"):
        sample_ddim(linear_model, x, pairs, progress=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="eta must lie in \\[0, 1\\]"):
        sample_ddim(den, x, pairs, eta=1.5, progress=False)
    with pytest.raises(ValueError, match="'learned'.*fixed_small, fixed_large"):
        sample_ddpm(den, x, pairs, variance="learned", progress=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="order must be 1 or 2"):
        sample_dpm_solver_pp(den, x, pairs, order=3, progress=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'middle'.*source, target"):
        ddim_invert(den, x, pairs, eval_at="middle", progress=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must chain"):
        sample_ddim(den, x, [(99, 50), (40, -1)], progress=False)
    with pytest.raises(ValueError, match="model output has shape"):
        sample_ddim(Denoiser(lambda a, t: a[:, :1], s), x, pairs, progress=False)
    with pytest.raises(ValueError, match="set_alpha_to_one=False"):
        ddim_invert(den.replace(prediction="x0"), x, pairs, progress=False)


def test_dynamic_threshold() -> None:
    """Saharia et al. 2022: s = quantile of |x0| per example, clamped to >= 1; x0 -> clamp / s."""
    x = torch.cat([torch.linspace(-3, 3, 1001)[None], 0.5 * torch.linspace(-1, 1, 1001)[None]])
    out = dynamic_threshold(x, 0.9)
    s0 = torch.quantile(x[0].abs(), 0.9)
    torch.testing.assert_close(out[0], x[0].clamp(-s0, s0) / s0)
    torch.testing.assert_close(out[1], x[1])  # quantile < 1: s = 1, plain clipping to [-1, 1]
    assert out.abs().max() <= 1.0
    capped = dynamic_threshold(x, 0.9, max_value=1.5)
    torch.testing.assert_close(capped[0], x[0].clamp(-1.5, 1.5) / 1.5)


@pytest.mark.parametrize(
    "shape", [(2,), (3, 8, 8), (3, 4, 8, 8)], ids=["points", "images", "videos"]
)
@pytest.mark.parametrize("name", list(SAMPLERS))
def test_samplers_accept_any_shape(shape: tuple[int, ...], name: str) -> None:
    s = make_schedule("linear", 100)
    x = noise(3, 14, shape, dtype=torch.float32)
    seen = []
    pairs = (
        lcm_pairs(100, 4, original_steps=20)
        if name in ("lcm", "tcd")
        else timestep_pairs(100, 4, "trailing")
    )
    kw = ({"generator": torch.Generator().manual_seed(0)}
          if name in ("ddpm", "ddim", "lcm", "tcd") else {})
    out = SAMPLERS[name](
        Denoiser(linear_model, s, clip_x0=True),
        x,
        pairs,
        callback=lambda i, t, xt, x0: seen.append((i, t, xt.shape)),
        progress=False,
        **kw,
    )
    assert out.shape == x.shape and out.dtype == torch.float32 and torch.isfinite(out).all()
    assert [(i, t) for i, t, _ in seen] == [(i, t) for i, (t, _) in enumerate(pairs)]
