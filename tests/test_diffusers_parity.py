"""Parity with diffusers 0.42: whole sampling trajectories on the same inputs, float32.

Both sides get the same initial noise, the same fixed network and a generator seeded the same
way; every intermediate state is compared (max abs difference <= 1e-5). Our schedule is the
float64 one from make_schedule, diffusers keeps its own float32 schedule, so the comparison
also covers the float32 round-off of diffusers' alpha_bar (measured differences: <= 4e-6).
The network is a fixed random channel mix plus a t-dependent term, built so that states stay
O(1) and absolute differences are meaningful; clipping at 1 does bite with it.
"""

from __future__ import annotations

import inspect
import math

import pytest
import torch

from diffusion_notes.denoiser import Denoiser
from diffusion_notes.samplers import (
    ddim_invert,
    sample_ddim,
    sample_ddpm,
    sample_dpm_solver_pp,
    sample_lcm,
    sample_tcd,
)
from diffusion_notes.schedules import make_schedule
from diffusion_notes.timesteps import lcm_pairs, timestep_pairs

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

T = 1000
TOL = 1e-5
_g = torch.Generator().manual_seed(0)
W = torch.randn(3, 3, generator=_g) / math.sqrt(3)
X_INIT = torch.randn(2, 3, 4, 4, generator=_g)
_AB = torch.cumprod(1 - torch.linspace(1e-4, 0.02, T, dtype=torch.float64), 0).float()


def tiny_model(prediction: str):
    """eps-net: the exact eps of N(0, 1.5^2 I) data plus a bounded nonlinearity scaled by
    sqrt(abar), so that x0 = (x - s eps) / a stays O(1). v- and x0-nets: bounded maps."""

    def model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = t.reshape(-1)
        ab = _AB[t].reshape(-1, 1, 1, 1)
        a, s = ab.sqrt(), (1 - ab).sqrt()
        mix = torch.tanh(torch.einsum("ij,bjhw->bihw", W, x))
        wave = torch.cos(t.float() / 50).reshape(-1, 1, 1, 1)
        if prediction == "eps":
            return s * x / (ab * 2.25 + 1 - ab) + a * (0.3 * mix + 0.1 * wave)
        if prediction == "v":
            return 0.6 * mix + 0.3 * a * x + 0.1 * wave
        return 1.4 * mix + 0.2 * wave  # x0

    return model


def diffusers_prediction(prediction: str) -> str:
    return {"eps": "epsilon", "v": "v_prediction", "x0": "sample"}[prediction]


def run_diffusers(
    scheduler, n: int | None, model, *, timesteps: list[int] | None = None, **step_kwargs
) -> tuple[torch.Tensor, torch.Tensor]:
    """States after each step and the x0 the scheduler reports (where it reports one); ``n``
    steps of the scheduler's own spacing, or the given ``timesteps``."""
    scheduler.set_timesteps(n, timesteps=timesteps) if timesteps else scheduler.set_timesteps(n)
    if "generator" in inspect.signature(scheduler.step).parameters:
        step_kwargs["generator"] = torch.Generator().manual_seed(1)
    x, states, x0s = X_INIT.clone(), [], []
    for t in scheduler.timesteps:
        out = scheduler.step(model(x, t.expand(x.shape[0])), t, x, **step_kwargs)
        x = out.prev_sample
        states.append(x)
        x0 = getattr(out, "pred_original_sample", None)
        x0 = getattr(out, "denoised", None) if x0 is None else x0
        x0s.append(x if x0 is None else x0)
    return torch.stack(states), torch.stack(x0s)


DENOISER_OPTIONS = ("prediction", "clip_x0", "threshold", "threshold_max", "recompute_eps")


def run_ours(
    sampler, pairs, model, *, schedule=None, stochastic: bool = True, **kwargs
) -> tuple[torch.Tensor, torch.Tensor]:
    """States after each step (and the x0 prediction) from our sampler via its callback; the
    denoiser's options (prediction, clipping, thresholding, recompute_eps) go to the Denoiser."""
    states, x0s = [], []

    def record(i: int, t: int, x: torch.Tensor, x0: torch.Tensor) -> None:
        states.append(x)
        x0s.append(x0)

    if stochastic:
        kwargs["generator"] = torch.Generator().manual_seed(1)
    schedule = make_schedule("linear", T) if schedule is None else schedule
    den_kw = {k: kwargs.pop(k) for k in DENOISER_OPTIONS if k in kwargs}
    den = Denoiser(model, schedule, **den_kw)
    sampler(den, X_INIT.clone(), pairs, callback=record, progress=False, **kwargs)
    return torch.stack(states), torch.stack(x0s)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.double() - b.double()).abs().max().item()


def max_x0_diff(a: torch.Tensor, b: torch.Tensor, pairs: list[tuple[int, int]]) -> float:
    """Difference of per-step x0 predictions scaled by sqrt(abar_t): x0 = (x - s eps) / a
    amplifies float32 rounding of x by 1/a (up to 157 at t = 999), while a * x0 is what the
    update uses; the scaled difference is held to the same tolerance as the states."""
    scale = make_schedule("linear", T).sqrt_alpha_bar[torch.tensor([t for t, _ in pairs])]
    return ((a.double() - b.double()).abs() * scale.reshape(-1, 1, 1, 1, 1)).max().item()


# -- DDPM ---------------------------------------------------------------------------------
@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("prediction", ["eps", "v"])
@pytest.mark.parametrize("variance", ["fixed_small", "fixed_large"])
@pytest.mark.parametrize("clip", [False, True])
def test_ddpm_matches_diffusers(spacing: str, prediction: str, variance: str, clip: bool) -> None:
    from diffusers import DDPMScheduler

    n = 20
    model = tiny_model(prediction)
    ref = DDPMScheduler(
        num_train_timesteps=T,
        beta_schedule="linear",
        timestep_spacing=spacing,
        prediction_type=diffusers_prediction(prediction),
        variance_type=variance,
        clip_sample=clip,
    )
    d_states, d_x0 = run_diffusers(ref, n, model)
    pairs = timestep_pairs(T, n, spacing)
    o_states, o_x0 = run_ours(
        sample_ddpm, pairs, model, prediction=prediction, variance=variance, clip_x0=clip
    )
    # diffusers adds noise on the last step whenever its last t > 0 (trailing: t = 49 here) with
    # std sqrt(beta_t) for fixed_large; we add none there (Ho et al.'s sampler ends on the mean).
    # The mean of that step does not depend on the variance type and is covered by fixed_small,
    # where diffusers' last-step noise is scaled by sqrt(1e-20).
    last_noisy = variance == "fixed_large" and pairs[-1][0] > 0
    k = n - 1 if last_noisy else n
    assert max_diff(d_states[:k], o_states[:k]) <= TOL
    assert max_x0_diff(d_x0, o_x0, pairs) <= TOL


# -- DDIM ---------------------------------------------------------------------------------
def diffusers_ddim_steps_right(pairs: list[tuple[int, int]], n: int) -> bool:
    """diffusers' DDIM steps to t - T // n; right only if that is the next timestep (or < 0)."""
    return all((tp == t - T // n) if tp >= 0 else (t - T // n < 0) for t, tp in pairs)


def ddim_reference(
    model, pairs, prediction, eta, clip, use_clipped, set_alpha_to_one=True
) -> torch.Tensor:
    """Song et al. 2021, eq. 12 written out in float64 (the independent mathematical reference)."""
    ab = make_schedule("linear", T).alpha_bar
    gen = torch.Generator().manual_seed(1)
    x, states = X_INIT.double(), []
    for t, tp in pairs:
        a_t = ab[t]
        a_p = (
            ab[tp]
            if tp >= 0
            else (torch.tensor(1.0, dtype=torch.float64) if set_alpha_to_one else ab[0])
        )
        out = model(x.float(), torch.full((2,), t)).double()
        if prediction == "eps":
            eps = out
            x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
        else:  # v
            x0 = a_t.sqrt() * x - (1 - a_t).sqrt() * out
            eps = (1 - a_t).sqrt() * x + a_t.sqrt() * out
        if clip:
            x0 = x0.clamp(-1, 1)
            if use_clipped:
                eps = (x - a_t.sqrt() * x0) / (1 - a_t).sqrt()
        sigma = eta * ((1 - a_p) / (1 - a_t) * (1 - a_t / a_p)).sqrt() if tp >= 0 else 0.0
        x = a_p.sqrt() * x0 + (1 - a_p - sigma**2).sqrt() * eps
        if eta > 0:
            noise = torch.randn(x.shape, generator=gen, dtype=torch.float32).double()
            x = x + sigma * noise
        states.append(x)
    return torch.stack(states)


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("n", [10, 30])
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("prediction", ["eps", "v"])
@pytest.mark.parametrize("clip", ["off", "clip", "clip_recompute_eps"])
def test_ddim_matches_diffusers(
    spacing: str, n: int, eta: float, prediction: str, clip: str
) -> None:
    from diffusers import DDIMScheduler

    model = tiny_model(prediction)
    pairs = timestep_pairs(T, n, spacing)
    clip_on, recompute = clip != "off", clip == "clip_recompute_eps"
    o_states, o_x0 = run_ours(
        sample_ddim,
        pairs,
        model,
        eta=eta,
        prediction=prediction,
        clip_x0=clip_on,
        recompute_eps=recompute,  # diffusers' use_clipped_model_output
    )
    if diffusers_ddim_steps_right(pairs, n):
        ref = DDIMScheduler(
            num_train_timesteps=T,
            beta_schedule="linear",
            timestep_spacing=spacing,
            prediction_type=diffusers_prediction(prediction),
            clip_sample=clip_on,
        )
        d_states, d_x0 = run_diffusers(ref, n, model, eta=eta, use_clipped_model_output=recompute)
        assert max_diff(d_states, o_states) <= TOL
        assert max_x0_diff(d_x0, o_x0, pairs) <= TOL
    else:
        # diffusers' DDIMScheduler steps to t - T // n, which is not the next timestep of this
        # spacing (its known off-by-stride bug), so here we test against the mathematics
        ref_states = ddim_reference(model, pairs, prediction, eta, clip_on, recompute)
        assert max_diff(ref_states, o_states) <= TOL


def test_diffusers_ddim_is_wrong_for_linspace() -> None:
    """The bug that the fallback above works around, shown on one case."""
    from diffusers import DDIMScheduler

    model = tiny_model("eps")
    pairs = timestep_pairs(T, 10, "linspace")
    assert not diffusers_ddim_steps_right(pairs, 10)
    ref = DDIMScheduler(num_train_timesteps=T, timestep_spacing="linspace", clip_sample=False)
    d_states, _ = run_diffusers(ref, 10, model)
    o_states, _ = run_ours(sample_ddim, pairs, model, stochastic=False)
    truth = ddim_reference(model, pairs, "eps", 0.0, False, False)
    assert max_diff(truth, o_states) <= TOL
    assert max_diff(truth, d_states) > 1e-2


@pytest.mark.parametrize("spacing, offset", [("leading", 1), ("trailing", 0)])
def test_ddim_final_alpha_and_offset_match_diffusers(spacing: str, offset: int) -> None:
    """set_alpha_to_one=False (final alpha_bar = alpha_bar[0]) and steps_offset, eta = 0
    (with eta > 0 diffusers would add noise on that last step, we do not)."""
    from diffusers import DDIMScheduler

    model = tiny_model("eps")
    ref = DDIMScheduler(
        num_train_timesteps=T,
        timestep_spacing=spacing,
        steps_offset=offset,
        set_alpha_to_one=False,
        clip_sample=False,
    )
    d_states, _ = run_diffusers(ref, 25, model)
    pairs = timestep_pairs(T, 25, spacing, steps_offset=offset)
    o_states, _ = run_ours(sample_ddim, pairs, model, stochastic=False, set_alpha_to_one=False)
    assert max_diff(d_states, o_states) <= TOL


def test_ddim_dynamic_thresholding_matches_diffusers() -> None:
    from diffusers import DDIMScheduler

    model = tiny_model("x0")
    ref = DDIMScheduler(
        num_train_timesteps=T,
        timestep_spacing="trailing",
        prediction_type="sample",
        thresholding=True,
        dynamic_thresholding_ratio=0.9,
        sample_max_value=1.3,
    )
    d_states, d_x0 = run_diffusers(ref, 20, model)
    pairs = timestep_pairs(T, 20, "trailing")
    o_states, o_x0 = run_ours(
        sample_ddim,
        pairs,
        model,
        stochastic=False,
        prediction="x0",
        threshold=0.9,
        threshold_max=1.3,
        recompute_eps=False,  # diffusers' use_clipped_model_output=False
    )
    assert max_diff(d_states, o_states) <= TOL and max_x0_diff(d_x0, o_x0, pairs) <= TOL
    assert o_x0.abs().max().item() <= 1.0 + 1e-6  # thresholded x0 lies in [-1, 1]


def test_ddim_zero_terminal_snr_v_prediction_matches_diffusers() -> None:
    from diffusers import DDIMScheduler

    model = tiny_model("v")
    ref = DDIMScheduler(
        num_train_timesteps=T,
        timestep_spacing="trailing",
        prediction_type="v_prediction",
        rescale_betas_zero_snr=True,
        clip_sample=False,
    )
    d_states, _ = run_diffusers(ref, 20, model)
    pairs = timestep_pairs(T, 20, "trailing")
    o_states, _ = run_ours(
        sample_ddim,
        pairs,
        model,
        stochastic=False,
        prediction="v",
        schedule=make_schedule("linear", T, rescale_zero_terminal_snr=True),
    )
    assert max_diff(d_states, o_states) <= TOL


# -- DPM-Solver++ -------------------------------------------------------------------------
@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("n", [10, 20])
@pytest.mark.parametrize("prediction", ["eps", "v"])
@pytest.mark.parametrize("final", ["zero", "sigma_min"])
def test_dpm_solver_matches_diffusers(spacing: str, n: int, prediction: str, final: str) -> None:
    from diffusers import DPMSolverMultistepScheduler

    model = tiny_model(prediction)
    ref = DPMSolverMultistepScheduler(
        num_train_timesteps=T,
        beta_schedule="linear",
        algorithm_type="dpmsolver++",
        solver_order=2,
        timestep_spacing=spacing,
        prediction_type=diffusers_prediction(prediction),
        final_sigmas_type=final,
    )
    d_states, _ = run_diffusers(ref, n, model)
    pairs = timestep_pairs(T, n, spacing, convention="dpm_solver")
    o_states, _ = run_ours(
        sample_dpm_solver_pp,
        pairs,
        model,
        stochastic=False,
        prediction=prediction,
        set_alpha_to_one=final == "zero",
    )
    assert max_diff(d_states, o_states) <= TOL


def test_dpm_solver_thresholding_matches_diffusers() -> None:
    from diffusers import DPMSolverMultistepScheduler

    model = tiny_model("eps")
    ref = DPMSolverMultistepScheduler(
        num_train_timesteps=T,
        thresholding=True,
        dynamic_thresholding_ratio=0.9,
        sample_max_value=1.2,
    )
    d_states, _ = run_diffusers(ref, 15, model)
    pairs = timestep_pairs(T, 15, "linspace", convention="dpm_solver")
    o_states, _ = run_ours(
        sample_dpm_solver_pp, pairs, model, stochastic=False, threshold=0.9, threshold_max=1.2
    )
    assert max_diff(d_states, o_states) <= TOL


# -- LCM ----------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 4, 8])
@pytest.mark.parametrize("prediction", ["eps", "v"])
@pytest.mark.parametrize("clip", [False, True])
def test_lcm_matches_diffusers(n: int, prediction: str, clip: bool) -> None:
    from diffusers import LCMScheduler

    model = tiny_model(prediction)
    ref = LCMScheduler(
        num_train_timesteps=T, prediction_type=diffusers_prediction(prediction), clip_sample=clip
    )
    d_states, d_denoised = run_diffusers(ref, n, model)
    o_states, o_denoised = run_ours(
        sample_lcm,
        lcm_pairs(T, n),
        model,
        prediction=prediction,
        clip_x0=clip,
        schedule=make_schedule("scaled_linear", T, beta_start=0.00085, beta_end=0.012),
    )
    assert max_diff(d_states, o_states) <= TOL
    assert max_diff(d_denoised, o_denoised) <= TOL


# -- TCD ----------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 4, 8])
@pytest.mark.parametrize("gamma", [0.0, 0.3, 0.5, 1.0])
@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_tcd_matches_diffusers(n: int, gamma: float, prediction: str) -> None:
    """Strategic stochastic sampling on LCM's timesteps and schedule (as the LCM test: at the
    linear schedule's t = 999, x0 = (x - s eps) / a multiplies float32 round-off by 156, and a
    one-step sample is that x0); diffusers' TCDScheduler ends at level 0, which is our
    ``set_alpha_to_one=False``."""
    from diffusers import TCDScheduler

    model = tiny_model(prediction)
    ref = TCDScheduler(num_train_timesteps=T, prediction_type=diffusers_prediction(prediction))
    pairs = lcm_pairs(T, n)
    d_states, _ = run_diffusers(ref, None, model, timesteps=[t for t, _ in pairs], eta=gamma)
    o_states, _ = run_ours(
        sample_tcd, pairs, model, prediction=prediction, gamma=gamma, set_alpha_to_one=False,
        schedule=make_schedule("scaled_linear", T, beta_start=0.00085, beta_end=0.012),
    )
    assert max_diff(d_states, o_states) <= TOL


# -- DDIM inversion -----------------------------------------------------------------------
@pytest.mark.parametrize("spacing", ["leading", "trailing"])
@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_ddim_inversion_matches_diffusers(spacing: str, prediction: str) -> None:
    from diffusers import DDIMInverseScheduler

    model = tiny_model(prediction)
    ref = DDIMInverseScheduler(
        num_train_timesteps=T,
        timestep_spacing=spacing,
        prediction_type=diffusers_prediction(prediction),
        clip_sample=False,
    )
    d_states, _ = run_diffusers(ref, 20, model)
    pairs = timestep_pairs(T, 20, spacing)
    states = []
    ddim_invert(
        Denoiser(model, make_schedule("linear", T), prediction=prediction),
        X_INIT.clone(),
        pairs,
        eval_at="target",
        callback=lambda i, t, x, x0: states.append(x),
        progress=False,
    )
    assert max_diff(d_states, torch.stack(states)) <= TOL
