"""Guidance denoisers: CFG conventions, classifier guidance against the exact mixture classifier,
intervals, rescale, bit-for-bit identities with the unguided sampler, clear errors."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion_notes.data.gmm import labelled_mixture
from diffusion_notes.denoiser import Denoiser
from diffusion_notes.guidance import (
    ClassifierFreeGuidance,
    ClassifierGuidance,
    classifier_free,
    classifier_guided,
    rescale_guided,
    sigma_of_alpha_bar,
)
from diffusion_notes.models import UNet
from diffusion_notes.schedules import make_schedule
from tests.guided_sampling import sample_ddim_den, sample_ddpm_den

F64 = torch.float64
pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def toy():
    gm = labelled_mixture()
    s = make_schedule("linear", 1000)
    return gm, s


def _points(n: int = 64, seed: int = 0) -> torch.Tensor:
    return 1.5 * torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=F64)


def _cfg(gm, s, y, **kw) -> ClassifierFreeGuidance:
    den = Denoiser(gm.cond_eps_model(s), s, cond=y)
    return classifier_free(den, null_cond=gm.num_classes, **kw)


# ----------------------------------------------------------------------------- CFG conventions


@pytest.mark.parametrize("t", [0, 250, 999])
def test_cfg_at_no_guidance_scale_is_the_conditional_prediction_exactly(toy, t: int) -> None:
    gm, s = toy
    x = _points()
    cond = Denoiser(gm.cond_eps_model(s), s, cond=1)(x, t)
    for kw in ({"scale": 1.0}, {"w": 0.0}):
        d = _cfg(gm, s, 1, **kw)(x, t)
        assert torch.equal(d.eps, cond.eps) and torch.equal(d.x0, cond.x0)


@pytest.mark.parametrize("t", [0, 250, 999])
def test_cfg_scale_zero_and_w_minus_one_are_the_unconditional_prediction(toy, t: int) -> None:
    gm, s = toy
    x = _points()
    uncond = Denoiser(gm.eps_model(s), s)(x, t)
    for kw in ({"scale": 0.0}, {"w": -1.0}):
        d = _cfg(gm, s, 2, **kw)(x, t)
        # torch.lerp returns its start exactly at weight 0, so eps is bit-identical; x0 is
        # converted from the same eps by the same formula
        assert torch.equal(d.eps, uncond.eps)
        torch.testing.assert_close(d.x0, uncond.x0, rtol=0, atol=0)


def test_w_and_scale_conventions_agree_and_match_the_formula(toy) -> None:
    gm, s = toy
    x, t = _points(), 300
    c = Denoiser(gm.cond_eps_model(s), s, cond=0)(x, t).eps
    u = Denoiser(gm.eps_model(s), s)(x, t).eps
    ho = _cfg(gm, s, 0, w=2.5)(x, t).eps  # Ho & Salimans: (1 + w) eps_c - w eps_u
    diffusers = _cfg(gm, s, 0, scale=3.5)(x, t).eps  # diffusers: u + g (c - u)
    torch.testing.assert_close(ho, diffusers, rtol=0, atol=0)
    # float64 round-off of a 3.5x extrapolation of O(1) numbers: a few ulps
    torch.testing.assert_close(ho, 3.5 * c - 2.5 * u, rtol=0, atol=1e-14)
    assert _cfg(gm, s, 0, w=2.5).w == 2.5


def test_cfg_guided_eps_is_the_exact_guided_score(toy) -> None:
    """With exact branches, CFG at scale g is -sigma_t (grad log q(x_t) + g grad log p(y|x_t))."""
    gm, s = toy
    x, t, g = _points(), 400, 3.0
    eps = _cfg(gm, s, 2, scale=g)(x, t).eps
    target = -s.sigma[t].item() * gm.guided_score(x, t, s, 2, g)
    torch.testing.assert_close(eps, target, rtol=0, atol=1e-12)


def test_cfg_evaluates_both_branches_in_one_batched_call(toy) -> None:
    gm, s = toy
    inner = gm.cond_eps_model(s)
    calls = []

    def net(x, t, y):
        calls.append((x.shape[0], torch.as_tensor(y).reshape(-1).tolist()))
        return inner(x, t, y)

    x = _points(5)
    classifier_free(Denoiser(net, s, cond=1), null_cond=3, scale=2.0)(x, 10)
    assert calls == [(10, [1] * 5 + [3] * 5)]


def test_negative_condition_is_the_same_formula(toy) -> None:
    gm, s = toy
    x, t = _points(), 200
    net = gm.cond_eps_model(s)
    d = classifier_free(Denoiser(net, s, cond=0), null_cond=2, scale=2.0)(x, t).eps
    e0 = Denoiser(net, s, cond=0)(x, t).eps
    e2 = Denoiser(net, s, cond=2)(x, t).eps
    torch.testing.assert_close(d, e2 + 2.0 * (e0 - e2), rtol=0, atol=1e-14)


def test_clipping_acts_on_the_guided_prediction(toy) -> None:
    gm, s = toy
    x, t = 3 * _points(), 500
    cfg = _cfg(gm, s, 1, scale=4.0)
    clipped = cfg.replace(clip_x0=True)(x, t)
    torch.testing.assert_close(clipped.x0, cfg(x, t).x0.clamp(-1, 1), rtol=0, atol=0)
    a, sig = cfg.coefficients(t)
    torch.testing.assert_close(a * clipped.x0 + sig * clipped.eps, x, rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- interval, rescale


def test_interval_guides_only_inside_and_is_conditional_outside(toy) -> None:
    gm, s = toy
    x = _points()
    lo, hi = 0.5, 2.0
    cfg = _cfg(gm, s, 0, scale=3.0, interval=(lo, hi))
    full = _cfg(gm, s, 0, scale=3.0)
    cond = Denoiser(gm.cond_eps_model(s), s, cond=0)
    seen_in = seen_out = 0
    for t in range(0, 1000, 37):
        sig = sigma_of_alpha_bar(s.alpha_bar_list[t])
        inside = lo < sig <= hi
        assert cfg.guiding_at(t) == inside
        ref = full if inside else cond
        assert torch.equal(cfg(x, t).eps, ref(x, t).eps)
        seen_in, seen_out = seen_in + inside, seen_out + (not inside)
    assert seen_in > 3 and seen_out > 3  # both branches of the test ran


def test_sigma_of_alpha_bar() -> None:
    assert sigma_of_alpha_bar(0.5) == 1.0
    assert sigma_of_alpha_bar(0.8) == pytest.approx(0.5)
    assert sigma_of_alpha_bar(0.0) == math.inf


def test_rescale_matches_the_diffusers_formula_and_its_ends() -> None:
    g = torch.Generator().manual_seed(3)
    cond = torch.randn(4, 1, 8, 8, generator=g, dtype=F64)
    guided = 3.0 * cond + torch.randn(4, 1, 8, 8, generator=g, dtype=F64)
    out = rescale_guided(guided, cond, 0.7)
    # diffusers' rescale_noise_cfg, written out: std over all but the batch axis (unbiased)
    std_c = cond.std(dim=[1, 2, 3], keepdim=True)
    std_g = guided.std(dim=[1, 2, 3], keepdim=True)
    torch.testing.assert_close(out, 0.7 * guided * std_c / std_g + 0.3 * guided)
    full = rescale_guided(guided, cond, 1.0)
    torch.testing.assert_close(full.std(dim=[1, 2, 3]), cond.std(dim=[1, 2, 3]))
    assert torch.equal(rescale_guided(guided, cond, 0.0), guided)


def test_rescale_matches_diffusers_when_installed() -> None:
    sd = pytest.importorskip("diffusers.guiders.guider_utils")
    g = torch.Generator().manual_seed(4)
    cond = torch.randn(3, 1, 8, 8, generator=g)
    uncond = torch.randn(3, 1, 8, 8, generator=g)
    guided = torch.lerp(uncond, cond, 5.0)
    ours = rescale_guided(guided, cond, 0.7)
    theirs = sd.rescale_noise_cfg(guided, cond, guidance_rescale=0.7)
    torch.testing.assert_close(ours, theirs)


# ----------------------------------------------------------------------------- classifier guidance


def _exact_classifier(gm, s):
    def classifier(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return gm.log_classifier(x, int(t[0]), s)

    classifier.num_classes = gm.num_classes  # type: ignore[attr-defined]
    return classifier


@pytest.mark.parametrize("t", [5, 300, 900])
@pytest.mark.parametrize("scale", [1.0, 4.0])
def test_classifier_guided_eps_equals_the_analytic_guided_eps(toy, t: int, scale: float) -> None:
    """Autograd through the exact classifier log p(y|x_t) gives eps - s sigma grad, and that is
    -sigma (score + scale * (score(x_t|y) - score(x_t))) from the closed forms."""
    gm, s = toy
    x = _points(128, seed=t)
    den = classifier_guided(Denoiser(gm.eps_model(s), s), _exact_classifier(gm, s), y=1,
                            scale=scale)
    got = den(x, t).eps
    target = -s.sigma[t].item() * gm.guided_score(x, t, s, 1, scale)
    # two float64 routes to the same number (autograd of a logsumexp vs a responsibility-weighted
    # sum): agreement to ~1e-13 relative, measured ~1e-15 absolute at these points
    torch.testing.assert_close(got, target, rtol=1e-12, atol=1e-12)
    # x0 moves consistently: x_t = a x0 + s eps still holds
    a, sig = den.coefficients(t)
    torch.testing.assert_close(a * den(x, t).x0 + sig * got, x, rtol=0, atol=1e-12)


def test_classifier_guidance_at_scale_one_is_the_exact_conditional(toy) -> None:
    gm, s = toy
    x, t = _points(), 150
    den = classifier_guided(Denoiser(gm.eps_model(s), s), _exact_classifier(gm, s), y=0)
    cond = Denoiser(gm.cond_eps_model(s), s, cond=0)(x, t).eps
    torch.testing.assert_close(den(x, t).eps, cond, rtol=0, atol=1e-12)


def _zero_grad_classifier(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return torch.zeros(x.shape[0], 3, dtype=x.dtype) + 0.0 * x.sum()  # depends on x, grad 0


def _constant_classifier(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return torch.ones(x.shape[0], 3, dtype=x.dtype)  # ignores x entirely


@pytest.mark.parametrize("clf", [_zero_grad_classifier, _constant_classifier])
@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_zero_gradient_classifier_is_the_unguided_sampler_bit_for_bit(toy, clf, sampler) -> None:
    gm, s = toy
    from diffusion_notes.timesteps import timestep_pairs

    pairs = timestep_pairs(1000, 25)
    base = Denoiser(gm.eps_model(s), s)
    guided = classifier_guided(base, clf, y=2, scale=5.0)
    run = sample_ddpm_den if sampler == "ddpm" else sample_ddim_den
    xT = torch.randn(200, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    a = run(base, xT, pairs, torch.Generator().manual_seed(1))
    b = run(guided, xT, pairs, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


# ----------------------------------------------------------------------------- bad inputs


def test_bad_inputs_give_one_clear_error(toy) -> None:
    gm, s = toy
    net = gm.cond_eps_model(s)
    den = Denoiser(net, s, cond=1)
    with pytest.raises(ValueError, match="scale must be a finite number >= 0"):
        classifier_free(den, null_cond=3, scale=float("nan"))
    with pytest.raises(ValueError, match="scale must be a finite number >= 0"):
        classifier_free(den, null_cond=3, scale=-1.0)
    with pytest.raises(ValueError, match="exactly one of scale= .* and w="):
        classifier_free(den, null_cond=3, scale=2.0, w=1.0)
    with pytest.raises(ValueError, match="w must be a finite number >= -1"):
        classifier_free(den, null_cond=3, w=float("inf"))
    with pytest.raises(ValueError, match="needs null_cond"):
        classifier_free(den, null_cond=None, scale=2.0)
    with pytest.raises(ValueError, match=r"0 <= sigma_lo < sigma_hi"):
        classifier_free(den, null_cond=3, scale=2.0, interval=(2.0, 1.0))
    with pytest.raises(ValueError, match=r"rescale .* \[0, 1\]"):
        classifier_free(den, null_cond=3, scale=2.0, rescale=1.5)
    with pytest.raises(ValueError, match="has no condition"):
        classifier_free(den.with_cond(None), null_cond=3, scale=2.0)(_points(), 5)
    # unknown class, checked against the UNet's own label table
    unet = UNet(base_channels=8, num_classes=10)
    cfg = classifier_free(Denoiser(unet, s, cond=3), null_cond=10, scale=2.0)
    with pytest.raises(ValueError, match=r"unknown class \[12\].*classes 0 \.\. 9"):
        cfg.with_cond(12)
    with pytest.raises(ValueError, match=r"unknown null_cond \[11\]"):
        classifier_free(Denoiser(unet, s, cond=3), null_cond=11, scale=2.0)
    # classifier guidance
    clf = _exact_classifier(gm, s)
    base = Denoiser(gm.eps_model(s), s)
    with pytest.raises(ValueError, match="scale must be a finite number >= 0"):
        classifier_guided(base, clf, y=0, scale=float("nan"))
    with pytest.raises(ValueError, match="scale must be a finite number >= 0"):
        classifier_guided(base, clf, y=0, scale=-2.0)
    with pytest.raises(ValueError, match=r"unknown class \[7\]: the classifier has classes 0 \.\. 2"):
        classifier_guided(base, clf, y=7)
    with pytest.raises(ValueError, match="no target class"):
        classifier_guided(base, clf)(_points(), 5)
    with pytest.raises(ValueError, match=r"unknown class \[5\]: the classifier has 3 classes"):
        classifier_guided(base, _zero_grad_classifier, y=5)(_points(), 5)
    with pytest.raises(ValueError, match=r"classifier returned shape \(64, 3, 1\)"):
        classifier_guided(base, lambda x, t: torch.zeros(x.shape[0], 3, 1), y=0)(_points(), 5)
    with pytest.raises(ValueError, match="needs classifier"):
        ClassifierGuidance(gm.eps_model(s), s, classifier=None)
    with pytest.raises(ValueError, match="integer class labels"):
        classifier_guided(base, _zero_grad_classifier, y=torch.tensor([0.5]))(_points(), 5)


def test_unknown_class_on_the_mixture(toy) -> None:
    gm, _ = toy
    with pytest.raises(ValueError, match=r"unknown class 3: this mixture has classes 0 \.\. 2"):
        gm.conditional(3)


# ----------------------------------------------------------------------------- the exact toy's ODE


def _guided_eps_at(gm, x: torch.Tensor, alpha_bar: float, y: int, gamma: float) -> torch.Tensor:
    """Exact guided eps at any noise level (not only the schedule's integer timesteps)."""
    from diffusion_notes.schedules import Schedule

    one = Schedule.from_alpha_bar(torch.tensor([alpha_bar], dtype=F64))
    return -math.sqrt(1.0 - alpha_bar) * gm.guided_score(x, 0, one, y, gamma)


def _ode_reference(gm, x: torch.Tensor, sig_hi: float, sig_lo: float, y: int, gamma: float,
                   n: int = 400) -> torch.Tensor:
    """RK4 on the probability-flow ODE in DDIM's variables: xbar = x / a, sigma = s / a,
    d xbar / d sigma = eps(a xbar, sigma) [song2020denoising, Eq. 14], steps uniform in
    log sigma; returns x = a xbar at sig_lo."""

    def f(xbar: torch.Tensor, sig: float) -> torch.Tensor:
        ab = 1.0 / (1.0 + sig * sig)
        return _guided_eps_at(gm, xbar * math.sqrt(ab), ab, y, gamma)

    xbar = x * math.sqrt(1.0 + sig_hi**2)
    logs = torch.linspace(math.log(sig_hi), math.log(sig_lo), n + 1, dtype=F64).exp().tolist()
    for s0, s1 in zip(logs[:-1], logs[1:], strict=True):
        h = s1 - s0
        k1 = f(xbar, s0)
        k2 = f(xbar + 0.5 * h * k1, s0 + 0.5 * h)
        k3 = f(xbar + 0.5 * h * k2, s0 + 0.5 * h)
        k4 = f(xbar + h * k3, s1)
        xbar = xbar + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return xbar / math.sqrt(1.0 + sig_lo**2)


def test_exact_toy_guided_ddim_converges_to_the_guided_ode_solution(toy) -> None:
    """DDIM is Euler's method on the PF-ODE in (xbar, sigma), so with exact CFG branches its
    samples at t = 0 converge to the ODE solution with the guided score, at first order."""
    gm, s = toy
    y, gamma = 2, 3.0
    xT = torch.randn(48, 2, generator=torch.Generator().manual_seed(5), dtype=F64)
    sig = [math.sqrt((1 - ab) / ab) for ab in s.alpha_bar_list]
    ref = _ode_reference(gm, xT, sig[999], sig[0], y, gamma)
    den = _cfg(gm, s, y, scale=gamma)
    errors = []
    for n in (25, 50, 100, 200):
        ts = sorted({round(v) for v in torch.linspace(999, 0, n).tolist()}, reverse=True)
        pairs = list(zip(ts[:-1], ts[1:], strict=True))  # stop at t = 0: the ODE's end point
        x = sample_ddim_den(den, xT.clone(), pairs, torch.Generator().manual_seed(0))
        errors.append((x - ref).norm(dim=1).max().item())
    # first order: halving the step size roughly halves the error (measured max errors 0.181,
    # 0.080, 0.037, 0.019: ratios 2.26, 2.14, 1.96; 1.6 leaves room for the integer rounding
    # of the timesteps, and a wrong guided score converges to another point, failing the bound)
    ratios = [a / b for a, b in zip(errors[:-1], errors[1:], strict=True)]
    assert all(r > 1.6 for r in ratios), (errors, ratios)
    assert errors[-1] < 0.03, errors  # and the finest run is close in absolute terms
