"""The Gaussian diffusion process: forward marginals, posteriors, parameterisations, losses, ELBO.

Notation (code index ``t = 0 .. T-1``; see schedules.py): ``a_t = sqrt(alpha_bar_t)``,
``s_t = sqrt(1 - alpha_bar_t)``, so ``x_t = a_t x0 + s_t eps``. The three network targets are
``eps``, ``x0`` and ``v = a_t eps - s_t x0`` (Salimans & Ho 2022, sec. 4); any one of them with
``x_t`` determines the other two. ``t`` arguments are ints or LongTensors of shape ``(B,)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from tqdm import tqdm  # text bars: no ipywidgets needed in notebooks

from diffusion_notes.schedules import Schedule, extract, posterior_coefficients

Prediction = Literal["eps", "x0", "v"]
PREDICTIONS: tuple[str, ...] = get_args(Prediction)
Variance = Literal["fixed_small", "fixed_large"]
VARIANCES: tuple[str, ...] = get_args(Variance)
# A network: model(x_t, t) or model(x_t, t, cond), t a LongTensor (B,); output shaped like x_t.
Model = Callable[..., torch.Tensor]

TimeArg = torch.Tensor | int
Coef = float | torch.Tensor  # a scalar coefficient, or a tensor that broadcasts against x_t


def check_prediction(prediction: str) -> None:
    """Raise a ValueError naming the allowed prediction types."""
    if prediction not in PREDICTIONS:
        raise ValueError(f"unknown prediction {prediction!r}; allowed: {', '.join(PREDICTIONS)}")


# -- forward process -----------------------------------------------------------------------
def q_step(schedule: Schedule, x_prev: torch.Tensor, t: TimeArg, eps: torch.Tensor) -> torch.Tensor:
    """One forward step ``q(x_t | x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, beta_t I)`` (Ho et al. 2020,
    eq. 2), reparameterised: ``x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps``."""
    beta = extract(schedule.betas, t, x_prev)
    return torch.sqrt(1.0 - beta) * x_prev + torch.sqrt(beta) * eps


def q_sample(schedule: Schedule, x0: torch.Tensor, t: TimeArg, eps: torch.Tensor) -> torch.Tensor:
    """Sample ``q(x_t | x_0) = N(sqrt(abar_t) x0, (1 - abar_t) I)`` (Ho et al. 2020, eq. 4)."""
    return extract(schedule.sqrt_alpha_bar, t, x0) * x0 + extract(schedule.sigma, t, x0) * eps


@dataclass(frozen=True)
class Posterior:
    """A diagonal Gaussian ``q(x_{t_prev} | x_t, x_0)``: mean, variance, log-variance."""

    mean: torch.Tensor
    variance: torch.Tensor
    log_variance: torch.Tensor


def _alpha_bar_prev(schedule: Schedule, t: TimeArg, t_prev: TimeArg | None) -> torch.Tensor:
    """alpha_bar at t_prev (default t - 1) as a float64 (B,) tensor, the value at -1 being
    :func:`~diffusion_notes.schedules.final_alpha_bar` (1)."""
    if t_prev is None:
        return extract(schedule.alpha_bar_prev, t, schedule.betas).reshape(-1)
    tp = torch.as_tensor(t_prev).reshape(-1).long().cpu()
    return schedule.alpha_bar_padded()[tp + 1]


def q_posterior(
    schedule: Schedule,
    x0: torch.Tensor,
    xt: torch.Tensor,
    t: TimeArg,
    *,
    t_prev: TimeArg | None = None,
) -> Posterior:
    """The forward-process posterior ``q(x_{t_prev} | x_t, x_0)`` (Ho et al. 2020, eqs. 6-7).

    With ``t_prev = t - 1`` (default) it is ``N(c0 x0 + ct x_t, beta tilde_t)``; for a skip
    ``t -> t_prev`` the same formulas hold with ``alpha_t`` replaced by ``abar_t / abar_{t_prev}``
    (the coefficients: :func:`~diffusion_notes.schedules.posterior_coefficients`).
    """
    ab = extract(schedule.alpha_bar, t, schedule.betas).reshape(-1)
    c0, ct, var, _ = posterior_coefficients(ab, _alpha_bar_prev(schedule, t, t_prev))

    def shaped(v: torch.Tensor) -> torch.Tensor:
        return v.to(device=xt.device, dtype=xt.dtype).reshape(-1, *([1] * (xt.ndim - 1)))

    mean = shaped(c0) * x0 + shaped(ct) * xt
    variance = shaped(var).expand_as(mean)
    return Posterior(mean=mean, variance=variance, log_variance=torch.log(variance))


def posterior_mean_from_eps(
    schedule: Schedule, xt: torch.Tensor, t: TimeArg, eps: torch.Tensor
) -> torch.Tensor:
    """The posterior mean in its eps form (Ho et al. 2020, eq. 10 / Algorithm 2, line 4):
    ``mu~_t = (x_t - beta_t / sqrt(1 - abar_t) eps) / sqrt(alpha_t)``, for consecutive steps.

    Equal to ``q_posterior(schedule, x0, xt, t).mean`` when ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps``.
    """
    beta = extract(schedule.betas, t, xt)
    return (xt - beta / extract(schedule.sigma, t, xt) * eps) / torch.sqrt(1.0 - beta)


# -- parameterisations -----------------------------------------------------------------------
# Each conversion is written once, for ``a = sqrt(abar)`` and ``s = sqrt(1 - abar)`` given as
# Python floats or as tensors that broadcast against x_t (``x_t = a x0 + s eps``); the
# schedule-indexed functions below and the denoiser both call these.
def x0_from_eps_at(xt: torch.Tensor, eps: torch.Tensor, a: Coef, s: Coef) -> torch.Tensor:
    """x0 = (x_t - s eps) / a (invert Ho et al. 2020, eq. 4); undefined where abar = 0."""
    return (xt - s * eps) / a


def eps_from_x0_at(xt: torch.Tensor, x0: torch.Tensor, a: Coef, s: Coef) -> torch.Tensor:
    """eps = (x_t - a x0) / s; undefined where abar = 1."""
    return (xt - a * x0) / s


def v_at(x0: torch.Tensor, eps: torch.Tensor, a: Coef, s: Coef) -> torch.Tensor:
    """v = a eps - s x0 (Salimans & Ho 2022, sec. 4)."""
    return a * eps - s * x0


def x0_from_v_at(xt: torch.Tensor, v: torch.Tensor, a: Coef, s: Coef) -> torch.Tensor:
    """x0 = a x_t - s v (uses a^2 + s^2 = 1)."""
    return a * xt - s * v


def eps_from_v_at(xt: torch.Tensor, v: torch.Tensor, a: Coef, s: Coef) -> torch.Tensor:
    """eps = s x_t + a v."""
    return s * xt + a * v


def _a_s(schedule: Schedule, t: TimeArg, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sqrt(abar_t), sqrt(1 - abar_t))`` shaped to broadcast against ``like``."""
    return extract(schedule.sqrt_alpha_bar, t, like), extract(schedule.sigma, t, like)


def predict_x0_from_eps(
    schedule: Schedule, xt: torch.Tensor, t: TimeArg, eps: torch.Tensor
) -> torch.Tensor:
    """x0 = (x_t - s_t eps) / a_t (:func:`x0_from_eps_at` at timestep ``t``)."""
    return x0_from_eps_at(xt, eps, *_a_s(schedule, t, xt))


def predict_eps_from_x0(
    schedule: Schedule, xt: torch.Tensor, t: TimeArg, x0: torch.Tensor
) -> torch.Tensor:
    """eps = (x_t - a_t x0) / s_t (:func:`eps_from_x0_at` at timestep ``t``)."""
    return eps_from_x0_at(xt, x0, *_a_s(schedule, t, xt))


def v_from_x0_eps(
    schedule: Schedule, x0: torch.Tensor, t: TimeArg, eps: torch.Tensor
) -> torch.Tensor:
    """v = a_t eps - s_t x0 (:func:`v_at` at timestep ``t``)."""
    return v_at(x0, eps, *_a_s(schedule, t, x0))


def x0_from_v(schedule: Schedule, xt: torch.Tensor, t: TimeArg, v: torch.Tensor) -> torch.Tensor:
    """x0 = a_t x_t - s_t v (:func:`x0_from_v_at` at timestep ``t``)."""
    return x0_from_v_at(xt, v, *_a_s(schedule, t, xt))


def eps_from_v(schedule: Schedule, xt: torch.Tensor, t: TimeArg, v: torch.Tensor) -> torch.Tensor:
    """eps = s_t x_t + a_t v (:func:`eps_from_v_at` at timestep ``t``)."""
    return eps_from_v_at(xt, v, *_a_s(schedule, t, xt))


def score_from_eps(
    schedule: Schedule, t: TimeArg, eps: torch.Tensor, like: torch.Tensor
) -> torch.Tensor:
    """grad log q(x_t) = -eps / s_t (Song et al. 2021, score SDE; Tweedie's formula)."""
    return -eps / extract(schedule.sigma, t, like)


def x0_from_score(
    schedule: Schedule, xt: torch.Tensor, t: TimeArg, score: torch.Tensor
) -> torch.Tensor:
    """Tweedie's formula: ``E[x0 | x_t] = (x_t + (1 - abar_t) grad log q(x_t)) / sqrt(abar_t)``."""
    return (xt + (1.0 - extract(schedule.alpha_bar, t, xt)) * score) / extract(
        schedule.sqrt_alpha_bar, t, xt
    )


def x0_eps_from_output(
    output: torch.Tensor, xt: torch.Tensor, a: Coef, s: Coef, prediction: Prediction
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x0, eps)`` from a network output of type ``prediction`` at ``x_t = a x0 + s eps``.

    ``a = sqrt(abar_t)`` and ``s = sqrt(1 - abar_t)`` are floats or tensors that broadcast
    against ``xt``; the conversions are the ``*_at`` functions above.
    """
    if prediction == "eps":
        return x0_from_eps_at(xt, output, a, s), output
    if prediction == "x0":
        return output, eps_from_x0_at(xt, output, a, s)
    if prediction == "v":
        return x0_from_v_at(xt, output, a, s), eps_from_v_at(xt, output, a, s)
    check_prediction(prediction)
    raise AssertionError("unreachable")


def to_x0_eps(
    schedule: Schedule, xt: torch.Tensor, t: TimeArg, output: torch.Tensor, prediction: Prediction
) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn a network output of type ``prediction`` into the pair ``(x0, eps)``."""
    check_prediction(prediction)
    return x0_eps_from_output(output, xt, *_a_s(schedule, t, xt), prediction)


# -- training loss -----------------------------------------------------------------------------
def min_snr_weight(snr: torch.Tensor, gamma: float, prediction: Prediction) -> torch.Tensor:
    """Min-SNR-gamma loss weight (Hang et al. 2023, eq. 9 and its eps / v forms).

    The x0-loss weight is ``min(snr, gamma)``; an eps-MSE equals snr times the x0-MSE, so its
    weight is ``min(snr, gamma) / snr``; a v-MSE equals (snr + 1) times the x0-MSE, so its weight
    is ``min(snr, gamma) / (snr + 1)``. At snr = 0 the eps weight takes its limit, 1.
    """
    check_prediction(prediction)
    if gamma <= 0:
        raise ValueError(f"min_snr_gamma must be positive, got {gamma}")
    clipped = torch.clamp(snr, max=gamma)
    if prediction == "x0":
        return clipped
    if prediction == "v":
        return clipped / (snr + 1.0)
    return torch.where(
        snr > 0, clipped / snr.clamp(min=torch.finfo(snr.dtype).tiny), torch.ones_like(snr)
    )


def eps_loss_weight(schedule: Schedule, variance: Variance = "fixed_small") -> torch.Tensor:
    """lambda_t of Ho et al. 2020, eq. 12: ``beta_t^2 / (2 sigma_t^2 alpha_t (1 - abar_t))``.

    ``L_{t-1} - C_t = lambda_t E||eps - eps_theta||^2`` when the reverse step has variance
    ``sigma_t^2`` (``fixed_small``: beta tilde; ``fixed_large``: beta) and its mean is written
    with eps_theta. A float64 tensor of shape ``(T,)`` in code indices; entry 0 (the paper's
    t = 1, where the bound has the decoder term L_0 instead of a KL) is NaN.
    """
    if variance not in VARIANCES:
        raise ValueError(f"unknown variance {variance!r}; allowed: {', '.join(VARIANCES)}")
    betas, alphas, ab = schedule.betas, schedule.alphas, schedule.alpha_bar
    var = schedule.posterior_variance if variance == "fixed_small" else betas
    weight = betas**2 / (2.0 * var * alphas * (1.0 - ab))
    weight[0] = math.nan
    return weight


def prediction_target(
    schedule: Schedule, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, prediction: Prediction
) -> torch.Tensor:
    """What a network trained for ``prediction`` should output for ``x_t = q_sample(x0, t, eps)``:
    ``eps``, ``x0`` or ``v = sqrt(abar_t) eps - sqrt(1 - abar_t) x0``."""
    check_prediction(prediction)
    if prediction == "eps":
        return eps
    if prediction == "x0":
        return x0
    return v_from_x0_eps(schedule, x0, t, eps)


def training_loss(
    model: Model,
    x0: torch.Tensor,
    schedule: Schedule,
    *,
    prediction: Prediction = "eps",
    t: torch.Tensor | None = None,
    eps: torch.Tensor | None = None,
    min_snr_gamma: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Mean squared error of the network's ``prediction`` target (Ho et al. 2020, eq. 14 for eps).

    ``t`` is uniform on ``0 .. T-1`` and ``eps ~ N(0, I)`` unless given. With ``min_snr_gamma``
    each example's MSE is weighted by :func:`min_snr_weight` (Hang et al. 2023). Returns a scalar.
    """
    check_prediction(prediction)
    B = x0.shape[0]
    if t is None:
        t = torch.randint(0, schedule.T, (B,), generator=generator, device="cpu").to(x0.device)
    t = torch.as_tensor(t, device=x0.device).long().reshape(-1)
    if t.shape[0] != B:
        raise ValueError(f"t has {t.shape[0]} entries for a batch of {B}")
    if eps is None:
        eps = torch.randn(x0.shape, generator=generator, device="cpu", dtype=x0.dtype).to(x0.device)
    xt = q_sample(schedule, x0, t, eps)
    target = prediction_target(schedule, x0, t, eps, prediction)
    out = model(xt, t)
    if out.shape != x0.shape:
        raise ValueError(f"model output has shape {tuple(out.shape)}, expected {tuple(x0.shape)}")
    per_example = ((out - target) ** 2).reshape(B, -1).mean(dim=1)
    if min_snr_gamma is not None:
        w = min_snr_weight(schedule.snr.to(t.device)[t], min_snr_gamma, prediction)
        per_example = per_example * w.to(per_example.dtype)
    return per_example.mean()


# -- variational bound -------------------------------------------------------------------------
def normal_kl(
    mean1: torch.Tensor, logvar1: torch.Tensor, mean2: torch.Tensor, logvar2: torch.Tensor
) -> torch.Tensor:
    """KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)) per element, in nats."""
    return 0.5 * (
        -1.0
        + logvar2
        - logvar1
        + torch.exp(logvar1 - logvar2)
        + (mean1 - mean2) ** 2 * torch.exp(-logvar2)
    )


def discretized_gaussian_log_likelihood(
    x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor, *, bins: int = 256
) -> torch.Tensor:
    """log P(x) per element for data on ``bins`` levels in [-1, 1] (Ho et al. 2020, eq. 13).

    Each level owns the interval of width ``2 / (bins - 1)`` around it; the end levels extend to
    -inf and +inf. Computed in float64 with log-CDFs for stability.
    """
    x, mean, log_scale = (v.to(torch.float64) for v in (x, mean, log_scale))
    half = 1.0 / (bins - 1)
    inv_std = torch.exp(-log_scale)
    upper = (x - mean + half) * inv_std
    lower = (x - mean - half) * inv_std
    log_cdf_upper = torch.special.log_ndtr(upper)
    log_sf_lower = torch.special.log_ndtr(-lower)  # log(1 - Phi(lower))
    # middle bins: log(Phi(upper) - Phi(lower)), computed on the side away from the tails
    mid = torch.where(
        lower > 0,
        log_sf_lower + torch.log1p(-torch.exp(torch.special.log_ndtr(-upper) - log_sf_lower)),
        log_cdf_upper + torch.log1p(-torch.exp(torch.special.log_ndtr(lower) - log_cdf_upper)),
    )
    return torch.where(
        x < -1 + 1e-3 * half, log_cdf_upper, torch.where(x > 1 - 1e-3 * half, log_sf_lower, mid)
    )


@dataclass(frozen=True)
class ELBOResult:
    """Terms of the negative ELBO in bits per dimension (Ho et al. 2020, eq. 5), batch-averaged.

    ``terms[0]`` is the decoder NLL ``L_0 = -log p(x0 | x_{t=0})``; ``terms[t]`` for ``t >= 1`` is
    ``L_t = KL(q(x_{t-1} | x_t, x0) || p(x_{t-1} | x_t))`` (code indices); ``prior`` is
    ``KL(q(x_{T-1} | x0) || N(0, I))``. ``total_bpd = prior + terms.sum()``.
    """

    terms: torch.Tensor
    prior: torch.Tensor
    decoder: torch.Tensor
    total_bpd: torch.Tensor
    per_example_bpd: torch.Tensor


@torch.no_grad()
def elbo_bpd(
    model: Model,
    x0: torch.Tensor,
    schedule: Schedule,
    *,
    prediction: Prediction = "eps",
    variance: Variance = "fixed_small",
    clip_x0: bool = False,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> ELBOResult:
    """Negative ELBO in bits/dim for 8-bit data scaled to [-1, 1], one model call per timestep.

    For each t a fresh ``x_t ~ q(x_t | x0)`` is drawn; the reverse step ``p(x_{t-1} | x_t)`` has the
    posterior mean at the predicted x0 and variance beta tilde (``fixed_small``) or beta
    (``fixed_large``). The decoder uses the t=0 posterior scale (improved-diffusion's choice).
    """
    check_prediction(prediction)
    if variance not in VARIANCES:
        raise ValueError(f"unknown variance {variance!r}; allowed: {', '.join(VARIANCES)}")
    if x0.min() < -1 or x0.max() > 1:
        raise ValueError("x0 must be 8-bit data scaled to [-1, 1] (x / 127.5 - 1)")
    B, D = x0.shape[0], x0[0].numel()
    to_bpd = 1.0 / (D * math.log(2.0))
    log_var_p = (
        schedule.posterior_log_variance_clipped
        if variance == "fixed_small"
        else torch.cat([schedule.posterior_log_variance_clipped[:1], torch.log(schedule.betas[1:])])
    )
    per_t = torch.zeros(schedule.T, B, dtype=torch.float64, device=x0.device)
    for t in tqdm(range(schedule.T - 1, -1, -1), disable=not progress, desc="elbo", leave=False):
        tt = torch.full((B,), t, dtype=torch.long, device=x0.device)
        eps = torch.randn(x0.shape, generator=generator, device="cpu", dtype=x0.dtype).to(x0.device)
        xt = q_sample(schedule, x0, tt, eps)
        x0_pred, _ = to_x0_eps(schedule, xt, tt, model(xt, tt), prediction)
        if clip_x0:
            x0_pred = x0_pred.clamp(-1.0, 1.0)
        p_mean = q_posterior(schedule, x0_pred, xt, tt).mean
        p_logvar = extract(log_var_p, tt, xt)
        if t == 0:
            nll = -discretized_gaussian_log_likelihood(x0, p_mean, 0.5 * p_logvar)
            per_t[t] = nll.reshape(B, -1).sum(dim=1) * to_bpd
        else:
            q = q_posterior(schedule, x0, xt, tt)
            kl = normal_kl(
                q.mean.double(), q.log_variance.double(), p_mean.double(), p_logvar.double()
            )
            per_t[t] = kl.reshape(B, -1).sum(dim=1) * to_bpd
    mean_T = extract(schedule.sqrt_alpha_bar, schedule.T - 1, x0).double() * x0.double()
    logvar_T = torch.log1p(-schedule.alpha_bar[-1]).to(x0.device)
    prior = normal_kl(mean_T, logvar_T, torch.zeros_like(mean_T), torch.zeros_like(mean_T))
    prior_b = prior.reshape(B, -1).sum(dim=1) * to_bpd
    per_example = prior_b + per_t.sum(dim=0)
    terms = per_t.mean(dim=1)
    return ELBOResult(
        terms=terms,
        prior=prior_b.mean(),
        decoder=terms[0],
        total_bpd=per_example.mean(),
        per_example_bpd=per_example,
    )
