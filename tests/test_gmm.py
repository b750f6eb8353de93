"""Gaussian mixtures: sampling, density, exact noised marginals, score, denoiser, eps model."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion_notes.data.gmm import GaussianMixture, ring_mixture
from diffusion_notes.diffusion import q_sample, score_from_eps, to_x0_eps, x0_from_score
from diffusion_notes.schedules import make_schedule
from tests.conftest import skewed_mixture

F64 = torch.float64


pytestmark = pytest.mark.usefixtures("single_thread")




def test_sample_moments_match_closed_form() -> None:
    gm = skewed_mixture()
    n = 40_000
    x = gm.sample(n, generator=torch.Generator().manual_seed(0))
    cov = gm.covariance()
    se_mean = (torch.diagonal(cov) / n).sqrt()
    assert ((x.mean(0) - gm.mean()).abs() < 5 * se_mean).all()
    # std error of each covariance entry, estimated from the sample's own fourth moments
    c = x - x.mean(0)
    prods = c[:, :, None] * c[:, None, :]
    se_cov = prods.reshape(n, -1).std(0).reshape(2, 2) / math.sqrt(n)
    assert ((torch.cov(x.T) - cov).abs() < 5 * se_cov).all()


def test_log_prob_is_normalised() -> None:
    gm = skewed_mixture()
    h = 0.02
    g = torch.arange(-7, 7, h, dtype=F64) + h / 2
    pts = torch.stack(torch.meshgrid(g, g, indexing="ij"), dim=-1)
    mass = gm.log_prob(pts).exp().sum().item() * h * h
    assert mass == pytest.approx(1.0, abs=1e-4)  # midpoint rule error O(h^2) ~ 1e-5 here


def test_responsibilities_mean_equals_weights() -> None:
    gm = skewed_mixture()
    n = 20_000
    r = gm.responsibilities(gm.sample(n, generator=torch.Generator().manual_seed(1)))
    assert r.shape == (n, 3)
    torch.testing.assert_close(r.sum(1), torch.ones(n, dtype=F64))
    se = r.std(0) / math.sqrt(n)  # E_p[r_k] = w_k exactly; tolerance: 5 std errors
    assert ((r.mean(0) - gm.weights).abs() < 5 * se).all()


@pytest.mark.parametrize("t", [0, 100, 500, 999])
def test_noised_matches_forward_samples(t: int) -> None:
    s = make_schedule("linear", 1000)
    gm = skewed_mixture()
    n = 40_000
    g = torch.Generator().manual_seed(2)
    xt = q_sample(s, gm.sample(n, generator=g), t, torch.randn(n, 2, generator=g, dtype=F64))
    qt = gm.noised(s, t)
    cov = qt.covariance()
    assert ((xt.mean(0) - qt.mean()).abs() < 5 * (torch.diagonal(cov) / n).sqrt()).all()
    c = xt - xt.mean(0)
    se_cov = (c[:, :, None] * c[:, None, :]).reshape(n, -1).std(0).reshape(2, 2) / math.sqrt(n)
    assert ((torch.cov(xt.T) - cov).abs() < 5 * se_cov).all()
    # and the mean log-density of the samples matches -entropy estimated from q_t's own samples
    own = qt.sample(n, generator=g)
    lp_fwd, lp_own = qt.log_prob(xt), qt.log_prob(own)
    se = math.sqrt(lp_fwd.var().item() / n + lp_own.var().item() / n)
    assert abs(lp_fwd.mean().item() - lp_own.mean().item()) < 5 * se


@pytest.mark.parametrize("t", [0, 10, 300, 999])
def test_score_matches_finite_difference(t: int) -> None:
    s = make_schedule("cosine", 1000)
    gm = skewed_mixture()
    x = torch.tensor([[0.3, -0.2], [2.0, 1.0], [-1.5, 0.4], [0.0, -2.5]], dtype=F64)
    qt = gm.noised(s, t)
    h = 1e-5
    fd = torch.stack(
        [
            (qt.log_prob(x + h * e) - qt.log_prob(x - h * e)) / (2 * h)
            for e in torch.eye(2, dtype=F64)
        ],
        dim=1,
    )
    # central differences in float64: truncation O(h^2 |d^3 log p|) plus rounding ~1e-16/h = 1e-11
    torch.testing.assert_close(gm.score(x, t, s), fd, rtol=1e-6, atol=1e-6)


def test_denoiser_and_eps_are_tweedie() -> None:
    """E[x0 | x_t] = (x_t + (1 - abar) score) / sqrt(abar) (Tweedie) and eps* = -sigma * score.

    The mixture's score (-sum_k r_k C_k^{-1} (x - a m_k)) and its denoiser (Gaussian conditioning
    per component) are computed independently of these formulas; diffusion.x0_from_score and
    diffusion.score_from_eps must turn one into the other. Float64 algebra: default tolerances
    (rtol 1e-7) reject a 1 % coefficient error by five orders of magnitude."""
    s = make_schedule("linear", 1000)
    gm = skewed_mixture()
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(3), dtype=F64) * 2
    for t in (0, 5, 200, 800, 999):
        tt = torch.full((50,), t)
        score = gm.score(x, t, s)
        torch.testing.assert_close(x0_from_score(s, x, tt, score), gm.denoise(x, t, s))
        torch.testing.assert_close(score_from_eps(s, tt, gm.eps_model(s)(x, tt), x), score)


def test_dsm_is_scaled_eps_loss() -> None:
    """Denoising score matching (Vincent 2011; the score note, eq-dsm) on a Gaussian mixture.

    (1) Per sample, ||s_theta + eps / sigma||^2 = ||eps - eps_theta||^2 / sigma^2 when s_theta is
    score_from_eps(eps_theta): exact algebra, rtol 1e-9.
    (2) J_DSM - J_exact does not depend on the network: for two different networks the
    difference J_DSM(net1) - J_DSM(net2) equals J_exact(net1) - J_exact(net2), where J_exact uses
    the mixture's exact score. Same samples on both sides; the tolerance is 5 standard errors of
    the paired difference (measured: the two sides agree to about 1 standard error)."""
    s = make_schedule("linear", 1000)
    gm = skewed_mixture()
    g = torch.Generator().manual_seed(21)
    n = 200_000
    x0 = gm.sample(n, generator=g)
    eps = torch.randn(n, 2, generator=g, dtype=F64)
    exact = gm.eps_model(s)
    nets = (
        lambda x, t: 0.9 * exact(x, t) + 0.05 * torch.tanh(x),
        lambda x, t: 0.5 * torch.tanh(x),
    )
    for t in (20, 300, 700):
        tt = torch.full((n,), t)
        xt = q_sample(s, x0, tt, eps)
        sig = s.sigma[t].item()
        true_score = gm.score(xt, t, s)
        dsm, exact_sm = [], []
        for net in nets:
            e_hat = net(xt, tt)
            s_hat = score_from_eps(s, tt, e_hat, xt)
            per_dsm = ((s_hat + eps / sig) ** 2).sum(1)
            torch.testing.assert_close(per_dsm, ((eps - e_hat) ** 2).sum(1) / sig**2, rtol=1e-9, atol=0)
            dsm.append(per_dsm)
            exact_sm.append(((s_hat - true_score) ** 2).sum(1))
        paired = (dsm[0] - dsm[1]) - (exact_sm[0] - exact_sm[1])
        se = paired.std().item() / math.sqrt(n)
        assert abs(paired.mean().item()) < 5 * se
        # power: the networks really differ, by many standard errors
        assert abs((exact_sm[0] - exact_sm[1]).mean().item()) > 20 * se


def test_eps_model_predictions_agree() -> None:
    s = make_schedule("linear", 1000, rescale_zero_terminal_snr=True)
    gm = ring_mixture()
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(4), dtype=F64)
    t = torch.randint(0, 1000, (64,), generator=torch.Generator().manual_seed(5))
    t[0] = 999  # alpha_bar = 0: x0-prediction is the mixture mean, eps = x_t
    ref_x0, ref_eps = to_x0_eps(s, x, t, gm.eps_model(s, "x0")(x, t), "x0")
    for prediction in ("v",):
        x0, eps = to_x0_eps(s, x, t, gm.eps_model(s, prediction)(x, t), prediction)
        torch.testing.assert_close(x0, ref_x0)
        torch.testing.assert_close(eps, ref_eps)
    torch.testing.assert_close(ref_eps[0], x[0])
    torch.testing.assert_close(ref_x0[0], gm.mean())
    # mixed timesteps in one batch equal per-timestep calls
    model = gm.eps_model(s, "eps")
    one_by_one = torch.cat([model(x[i : i + 1], t[i : i + 1]) for i in range(1, 64)])
    torch.testing.assert_close(model(x[1:], t[1:]), one_by_one)
    # the output follows the input's dtype
    assert model(x[1:].float(), t[1:]).dtype == torch.float32


def test_bad_mixtures_raise() -> None:
    eye = torch.eye(2).expand(2, 2, 2)
    with pytest.raises(ValueError, match=r"means must have shape \(K, d\)"):
        GaussianMixture(torch.zeros(2), eye, torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match="covs must have shape"):
        GaussianMixture(torch.zeros(2, 2), torch.eye(2), torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match="sum to 1"):
        GaussianMixture(torch.zeros(2, 2), eye, torch.tensor([0.5, 0.6]))
    with pytest.raises(ValueError, match="positive definite"):
        GaussianMixture(
            torch.zeros(2, 2), torch.stack([torch.eye(2), -torch.eye(2)]), torch.tensor([0.5, 0.5])
        )
    with pytest.raises(ValueError, match="last dimension d=2"):
        ring_mixture().log_prob(torch.zeros(3, 3))


# ----------------------------------------------------------------------------- labelled mixtures


def test_labelled_mixture_bayes_rule_for_densities_and_scores() -> None:
    """p(x|y) = p(x) p(y|x) / p(y) exactly, and grad log p(y|x_t) (autograd through the exact
    classifier) = grad log q(x_t|y) - grad log q(x_t) (closed forms)."""
    from diffusion_notes.data.gmm import labelled_mixture

    gm, s = labelled_mixture(), make_schedule("linear", 1000)
    x = 1.5 * torch.randn(200, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    log_py_x = gm.log_classifier(x, -1, s)
    torch.testing.assert_close(log_py_x.exp().sum(1), torch.ones(200, dtype=F64))
    for y in range(gm.num_classes):
        lhs = gm.conditional(y).log_prob(x)
        rhs = gm.log_prob(x) + log_py_x[:, y] - gm.class_prior()[y].log()
        torch.testing.assert_close(lhs, rhs, rtol=0, atol=1e-12)
    for t in (10, 400, 999):
        xg = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(gm.log_classifier(xg, t, s)[:, 1].sum(), xg)
        # float64, two algebraically equal routes: agreement ~1e-15, 1e-11 allows for the
        # 1/s^2 amplification of round-off at small t
        torch.testing.assert_close(grad, gm.classifier_score(x, t, s, 1), rtol=0, atol=1e-11)


def test_labelled_mixture_classifier_averages_to_the_prior_under_q_t() -> None:
    from diffusion_notes.data.gmm import labelled_mixture

    gm, s = labelled_mixture(), make_schedule("linear", 1000)
    x0, _ = gm.sample_labelled(40_000, generator=torch.Generator().manual_seed(2))
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(3), dtype=F64)
    p = gm.log_classifier(q_sample(s, x0, 300, eps), 300, s).exp()
    se = p.std(0) / math.sqrt(len(p))  # E_q[p(y|x_t)] = p(y) exactly; 5 standard errors
    assert ((p.mean(0) - gm.class_prior()).abs() < 5 * se).all()


def test_noised_tilted_density_is_not_the_tilted_noised_density() -> None:
    """The score guidance adds up, grad log q(x_t) + gamma grad log p(y|x_t), is the score of the
    tilted *noised* density; the noised *tilted* density p(x) p(y|x)^gamma * N has another score,
    except at gamma = 0 and gamma = 1 (where both are q(x_t) and q(x_t|y))."""
    from diffusion_notes.data.gmm import labelled_mixture

    gm, s, t = labelled_mixture(), make_schedule("linear", 1000), 300
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(4), dtype=F64)
    # gamma = 1: the quadrature reproduces the exact conditional score (measured max error
    # 3e-14 with 301^2 points at s = 0.78; 1e-6 is a generous bound on the quadrature error)
    quad1 = gm.noised_tilted_score(x, t, s, 0, 1.0)
    torch.testing.assert_close(quad1, gm.guided_score(x, t, s, 0, 1.0), rtol=0, atol=1e-6)
    # gamma = 4: the two scores differ by far more than the quadrature error
    gap = (gm.noised_tilted_score(x, t, s, 0, 4.0) - gm.guided_score(x, t, s, 0, 4.0)).norm(dim=1)
    assert gap.max() > 0.1, gap.max()  # measured 9.3
