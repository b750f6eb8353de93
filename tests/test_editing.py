"""Editing: inpainting keeps the known pixels exactly, reduces to plain sampling without them,
RePaint's resampling moves a Gaussian's inpainted coordinate towards its exact conditional,
and the DDIM-inversion edit reconstructs under the same label."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion_notes.data.gmm import GaussianMixture, labelled_mixture
from diffusion_notes.denoiser import Denoiser
from diffusion_notes.diffusion import q_sample, q_step
from diffusion_notes.editing import (
    check_mask,
    edit_pairs,
    inpaint,
    invert_and_edit,
    n_evaluations,
    q_jump,
    repaint_moves,
)
from diffusion_notes.samplers import sample_ddim, sample_ddpm
from diffusion_notes.schedules import make_schedule
from diffusion_notes.timesteps import timestep_pairs

F64 = torch.float64
pytestmark = pytest.mark.usefixtures("single_thread")
SCHEDULE = make_schedule("linear", 1000)
PAIRS = timestep_pairs(1000, 12)


def linear_model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A fixed, imperfect eps-network: the identities below hold for any model."""
    return 0.5 * torch.tanh(x) + 1e-3 * t.reshape(-1, *([1] * (x.ndim - 1))).to(x.dtype)


def images(seed: int, n: int = 6) -> torch.Tensor:
    return torch.randn(n, 1, 4, 4, generator=torch.Generator().manual_seed(seed), dtype=F64)


def half_mask() -> torch.Tensor:
    m = torch.zeros(1, 1, 4, 4, dtype=F64)
    m[..., :2, :] = 1.0  # top half known
    return m


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


DEN = Denoiser(linear_model, SCHEDULE)


# -- identities ---------------------------------------------------------------------------
@pytest.mark.parametrize("step", ["ddpm", "ddim"])
@pytest.mark.parametrize("resample,jump", [(1, 1), (3, 1), (2, 3)])
def test_known_pixels_are_kept_exactly(step: str, resample: int, jump: int) -> None:
    x0, m = images(0), half_mask()
    out = inpaint(DEN, x0, m, images(1), PAIRS, resample=resample, jump=jump, step=step,
                  eta=0.5, generator=gen(2), progress=False)
    known = m.bool().expand_as(x0)
    assert torch.equal(out[known], x0[known])  # bit for bit, no tolerance
    assert not torch.allclose(out[~known], x0[~known])  # the rest was generated


def test_all_known_mask_returns_the_image() -> None:
    x0 = images(0)
    out = inpaint(DEN, x0, torch.ones(1, 1, 1, 1), images(1), PAIRS, resample=2,
                  generator=gen(2), progress=False)
    assert torch.equal(out, x0)


@pytest.mark.parametrize("step,eta", [("ddpm", 1.0), ("ddim", 0.0), ("ddim", 0.5)])
def test_all_unknown_mask_is_plain_sampling(step: str, eta: float) -> None:
    """No known pixel: the same steps and the same noise draws as the sampler, bit for bit."""
    x0, xT = images(0), images(1)
    out = inpaint(DEN, x0, torch.zeros(1, 1, 4, 4), xT, PAIRS, step=step, eta=eta,
                  generator=gen(2), progress=False)
    if step == "ddpm":
        ref = sample_ddpm(DEN, xT, PAIRS, generator=gen(2), progress=False)
    else:
        ref = sample_ddim(DEN, xT, PAIRS, eta=eta, generator=gen(2), progress=False)
    assert torch.equal(out, ref)


def test_repaint_with_one_sample_is_naive_replacement() -> None:
    x0, m = images(0), half_mask()
    naive = inpaint(DEN, x0, m, images(1), PAIRS, generator=gen(2), progress=False)
    u1 = inpaint(DEN, x0, m, images(1), PAIRS, resample=1, jump=4, generator=gen(2),
                 progress=False)
    u2 = inpaint(DEN, x0, m, images(1), PAIRS, resample=2, generator=gen(2), progress=False)
    assert torch.equal(naive, u1)
    assert not torch.allclose(naive, u2)  # resampling does change the fill


def test_repaint_moves_follow_algorithm_1() -> None:
    """U = 2, j = 1 over 3 steps: each step but the last is followed by one up-and-redo."""
    assert repaint_moves(3, 2, 1) == [("down", 0), ("up", 1), ("down", 0), ("down", 1),
                                      ("up", 2), ("down", 1), ("down", 2)]
    assert repaint_moves(5, 2, 2) == [("down", 0), ("down", 1), ("up", 2), ("down", 0),
                                      ("down", 1), ("down", 2), ("down", 3), ("up", 4),
                                      ("down", 2), ("down", 3), ("down", 4)]
    assert n_evaluations(10, 1) == 10 and n_evaluations(10, 4) == 10 + 3 * 9


def test_resampling_jump_is_the_forward_process() -> None:
    """One level up is q_step exactly; a jump of several levels, applied to q(x_tp | x0), has
    q(x_t | x0)'s mean coefficient and variance (checked on the closed form, float64)."""
    x, e = images(0), images(1)
    assert torch.allclose(q_jump(SCHEDULE, x, 499, 500, e), q_step(SCHEDULE, x, 500, e),
                          rtol=0, atol=1e-12)
    x0, e1, e2 = images(2), images(3), images(4)
    up = q_jump(SCHEDULE, q_sample(SCHEDULE, x0, 200, e1), 200, 700, e2)
    ab_t, ab_p = SCHEDULE.alpha_bar_list[700], SCHEDULE.alpha_bar_list[200]
    r = ab_t / ab_p
    # up = sqrt(ab_t) x0 + [sqrt(r (1 - ab_p)) e1 + sqrt(1 - r) e2]: same mean, and the two
    # noise weights' squares add up to 1 - ab_t
    noise_part = math.sqrt(r * (1 - ab_p)) * e1 + math.sqrt(1 - r) * e2
    assert torch.allclose(up, math.sqrt(ab_t) * x0 + noise_part, rtol=0, atol=1e-12)
    assert math.isclose(r * (1 - ab_p) + (1 - r), 1 - ab_t, rel_tol=1e-12)


# -- RePaint's claim on an exact score ------------------------------------------------------
def conditional_w2(resample: int, n: int = 3000) -> tuple[float, float, float]:
    """Inpaint x2 given x1 = c for a correlated 2-D Gaussian (exact score) with 20 DDPM steps;
    return (mean, std, squared W2 distance to the exact conditional N(rho c, 1 - rho^2))."""
    rho, c = 0.9, 1.5
    g = GaussianMixture(torch.zeros(1, 2), torch.tensor([[[1.0, rho], [rho, 1.0]]]), torch.ones(1))
    den = Denoiser(g.eps_model(SCHEDULE), SCHEDULE)
    x_known = torch.zeros(n, 2, dtype=F64)
    x_known[:, 0] = c
    out = inpaint(den, x_known, torch.tensor([[1.0, 0.0]]), torch.randn(n, 2, generator=gen(1),
                  dtype=F64), timestep_pairs(1000, 20), resample=resample, generator=gen(2),
                  progress=False)
    y = out[:, 1]
    mean, std = float(y.mean()), float(y.std())
    return mean, std, (mean - rho * c) ** 2 + (std - math.sqrt(1 - rho**2)) ** 2


def test_resampling_moves_towards_the_exact_conditional() -> None:
    """Measured (n = 3000, 20 steps): naive replacement gives mean 0.85 against the exact 1.35
    (std 0.50 against 0.44), squared W2 0.25; U = 5 gives mean 1.23, std 0.35, squared W2
    0.02, but with a std now *below* the exact one. The asserted factor 0.3 leaves room for
    Monte Carlo error (std error of the mean ~0.01, so W2^2 moves by ~0.01 at most)."""
    _, _, w_naive = conditional_w2(1)
    mean5, _, w_5 = conditional_w2(5)
    assert w_naive > 0.15  # naive replacement is measurably biased here
    assert w_5 < 0.3 * w_naive
    assert abs(mean5 - 1.35) < 0.5 * abs(0.85 - 1.35)


# -- bad input ------------------------------------------------------------------------------
def test_bad_masks_and_options_raise() -> None:
    x0 = images(0)
    with pytest.raises(ValueError, match="does not broadcast"):
        check_mask(torch.ones(1, 1, 3, 4), x0)
    with pytest.raises(ValueError, match="does not broadcast"):
        check_mask(torch.ones(4, 4), x0)
    with pytest.raises(ValueError, match="binary.*0.5"):
        check_mask(torch.full((1, 1, 4, 4), 0.5), x0)
    with pytest.raises(ValueError, match="resample"):
        inpaint(DEN, x0, half_mask(), images(1), PAIRS, resample=0, progress=False)
    with pytest.raises(ValueError, match="jump"):
        inpaint(DEN, x0, half_mask(), images(1), PAIRS, jump=12, progress=False)
    with pytest.raises(ValueError, match="unknown step"):
        inpaint(DEN, x0, half_mask(), images(1), PAIRS, step="euler", progress=False)
    with pytest.raises(ValueError, match="t_prev = -1"):
        inpaint(DEN, x0, half_mask(), images(1), PAIRS[:-1], progress=False)
    with pytest.raises(ValueError, match="t_edit"):
        edit_pairs(PAIRS, -5)


# -- the inversion edit ---------------------------------------------------------------------
def test_inversion_round_trip_and_label_switch() -> None:
    """On the labelled mixture's exact conditional scores: the same-label reconstruction error
    shrinks with more DDIM steps (first-order discretisation; measured RMS 0.285 at 10 steps,
    0.072 at 50, 0.019 at 200: about 1/n), and the edit to another class lands where that
    class's density is higher (measured 97.5 % of 200 points at 50 steps)."""
    mix = labelled_mixture()
    den = Denoiser(mix.cond_eps_model(SCHEDULE), SCHEDULE)
    x0 = mix.conditional(0).sample(200, gen(3))

    def rms(n_steps: int) -> float:
        r = invert_and_edit(den, x0, 0, 0, timestep_pairs(1000, n_steps))
        assert torch.equal(r.reconstruction, r.edit)  # target == source: the same chain
        return float((r.reconstruction - x0).pow(2).sum(1).mean().sqrt())

    coarse, fine = rms(10), rms(50)
    assert fine < 0.1  # against component stds of 0.3-0.45: the round trip nearly closes
    assert fine < 0.4 * coarse  # first order: 5x the steps, ~1/5 the error (0.25 measured)
    edit = invert_and_edit(den, x0, 0, 1, timestep_pairs(1000, 50)).edit
    own = mix.conditional(1).log_prob(edit) > mix.conditional(0).log_prob(edit)
    assert own.double().mean() > 0.9
