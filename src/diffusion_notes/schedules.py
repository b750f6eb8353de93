"""Noise schedules of the discrete-time (variance-preserving) diffusion process.

A schedule is the list of betas ``beta_t`` for ``t = 0 .. T-1`` (code indices; the papers count
``1 .. T``). Everything else is derived from it, always in float64, and cast to the data's dtype
only at the point of use through :func:`extract`:

* ``alphas[t] = 1 - betas[t]``
* ``alpha_bar[t] = prod_{s <= t} alphas[s]``      so ``q(x_t | x_0) = N(sqrt(alpha_bar) x_0, (1 - alpha_bar) I)``
* ``sigma[t] = sqrt(1 - alpha_bar[t])``, ``snr[t] = alpha_bar / (1 - alpha_bar)``
* ``posterior_variance[t] = beta_t (1 - alpha_bar[t-1]) / (1 - alpha_bar[t])``  (beta tilde,
  Ho et al. 2020, eq. 7)

Two scalar formulas live here once, for tensors and for the Python floats that samplers
precompute alike: :func:`posterior_coefficients` (the mean weights and variance of
``q(x_{t_prev} | x_t, x_0)``) and :func:`final_alpha_bar` (what ``alpha_bar`` means at
``t_prev = -1``, diffusers' ``set_alpha_to_one``), read through :func:`alpha_bar_at`.

Names follow diffusers' ``beta_schedule`` values where they exist ("cosine" is diffusers'
"squaredcos_cap_v2").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Literal, NamedTuple, TypeVar, get_args

import torch

ScheduleName = Literal["linear", "scaled_linear", "cosine", "sigmoid"]
SCHEDULE_NAMES: tuple[str, ...] = get_args(ScheduleName)

_F64 = torch.float64
Num = TypeVar("Num", float, torch.Tensor)


class PosteriorCoefficients(NamedTuple):
    """``q(x_{t_prev} | x_t, x_0) = N(c0 x0 + ct x_t, variance)``; ``beta`` is the one-step beta
    between the two levels (the ``fixed_large`` variance)."""

    c0: float | torch.Tensor
    ct: float | torch.Tensor
    variance: float | torch.Tensor
    beta: float | torch.Tensor


def posterior_coefficients(ab: Num, ab_prev: Num) -> PosteriorCoefficients:
    """The forward-process posterior from ``alpha_bar_t`` and ``alpha_bar_{t_prev}`` (Ho et al.
    2020, eq. 7), for Python floats or tensors.

    ``c0 = sqrt(abar_prev) beta / (1 - abar_t)``, ``ct = sqrt(alpha)(1 - abar_prev)/(1 - abar_t)``,
    ``variance = beta (1 - abar_prev) / (1 - abar_t)`` (beta tilde), where ``alpha = abar_t /
    abar_prev`` and ``beta = 1 - alpha``: for ``t_prev = t - 1`` these are the paper's one-step
    alpha_t and beta_t; for a skip they describe the process between the two noise levels.
    """
    alpha = ab / ab_prev  # one-step alpha between the two levels
    beta = 1.0 - alpha
    c0 = _sqrt(ab_prev) * beta / (1.0 - ab)
    ct = _sqrt(alpha) * (1.0 - ab_prev) / (1.0 - ab)
    return PosteriorCoefficients(c0, ct, beta * (1.0 - ab_prev) / (1.0 - ab), beta)


def _sqrt(v: Num) -> Num:
    return v.sqrt() if isinstance(v, torch.Tensor) else math.sqrt(v)


@dataclass(frozen=True, eq=False)
class Schedule:
    """A beta schedule and its derived views (all float64 tensors of shape ``(T,)``).

    Build one with :func:`make_schedule`, from explicit betas (``Schedule(betas)``) or from a
    cumulative product (:meth:`from_alpha_bar`). Views are computed once and cached.
    """

    betas: torch.Tensor

    def __post_init__(self) -> None:
        betas = torch.as_tensor(self.betas).detach().to(dtype=_F64, device="cpu").clone()
        if betas.ndim != 1 or betas.numel() == 0:
            raise ValueError(
                f"betas must be a non-empty 1-D tensor, got shape {tuple(betas.shape)}"
            )
        if not bool(torch.isfinite(betas).all()):
            raise ValueError("betas contain NaN or inf")
        if bool((betas <= 0).any()) or bool((betas > 1).any()):
            raise ValueError(
                "every beta must lie in (0, 1]; got min "
                f"{betas.min().item():.3g}, max {betas.max().item():.3g}"
            )
        object.__setattr__(self, "betas", betas)

    @classmethod
    def from_alpha_bar(cls, alpha_bar: torch.Tensor) -> Schedule:
        """Schedule whose cumulative product is ``alpha_bar`` (beta_t = 1 - abar_t / abar_{t-1})."""
        ab = torch.as_tensor(alpha_bar).detach().to(dtype=_F64, device="cpu")
        prev = torch.cat([ab.new_ones(1), ab[:-1]])
        return cls(1.0 - ab / prev)

    # -- sizes and basic views -------------------------------------------------------------
    @property
    def T(self) -> int:
        """Number of training timesteps."""
        return int(self.betas.shape[0])

    @cached_property
    def alphas(self) -> torch.Tensor:
        return 1.0 - self.betas

    @cached_property
    def alpha_bar(self) -> torch.Tensor:
        # products of float64 terms; exact 0 when a beta equals 1 (zero terminal SNR)
        return torch.cumprod(self.alphas, dim=0)

    @cached_property
    def alpha_bar_prev(self) -> torch.Tensor:
        """``alpha_bar[t-1]``, with :func:`final_alpha_bar` (= 1) at ``t = 0``."""
        return self.alpha_bar_padded()[:-1]

    def alpha_bar_padded(self, set_alpha_to_one: bool = True) -> torch.Tensor:
        """``alpha_bar`` at ``t = -1, 0, ..., T-1`` (index ``t + 1``), shape ``(T + 1,)``."""
        first = torch.tensor([final_alpha_bar(self, set_alpha_to_one)], dtype=_F64)
        return torch.cat([first, self.alpha_bar])

    @cached_property
    def sqrt_alpha_bar(self) -> torch.Tensor:
        return self.alpha_bar.sqrt()

    @cached_property
    def sigma(self) -> torch.Tensor:
        """Noise standard deviation of ``q(x_t | x_0)``: ``sqrt(1 - alpha_bar)``."""
        return (1.0 - self.alpha_bar).sqrt()

    @cached_property
    def snr(self) -> torch.Tensor:
        """Signal-to-noise ratio ``alpha_bar / (1 - alpha_bar)`` (Kingma et al. 2021)."""
        return self.alpha_bar / (1.0 - self.alpha_bar)

    @cached_property
    def log_snr(self) -> torch.Tensor:
        """``log snr = 2 lambda`` where DPM-Solver's ``lambda = log(alpha / sigma)``; -inf at zero SNR."""
        return torch.log(self.alpha_bar) - torch.log1p(-self.alpha_bar)

    @cached_property
    def posterior_variance(self) -> torch.Tensor:
        """beta tilde_t = beta_t (1 - abar_{t-1}) / (1 - abar_t) (Ho et al. 2020, eq. 7); 0 at t=0."""
        return posterior_coefficients(self.alpha_bar, self.alpha_bar_prev).variance

    @cached_property
    def posterior_log_variance_clipped(self) -> torch.Tensor:
        """log beta tilde, with the t=0 entry (log 0) replaced by the t=1 value, as in
        improved-diffusion (Nichol & Dhariwal 2021); used for the t=0 decoder scale."""
        pv = self.posterior_variance
        if self.T == 1:
            return torch.log(self.betas.clone())
        return torch.log(torch.cat([pv[1:2], pv[1:]]))

    @cached_property
    def alpha_bar_list(self) -> list[float]:
        """``alpha_bar`` as Python floats, for samplers that precompute per-step scalars."""
        return self.alpha_bar.tolist()

    def __repr__(self) -> str:
        return (
            f"Schedule(T={self.T}, beta[0]={self.betas[0].item():.3g}, "
            f"beta[-1]={self.betas[-1].item():.3g}, alpha_bar[-1]={self.alpha_bar[-1].item():.3g})"
        )


def final_alpha_bar(schedule: Schedule, set_alpha_to_one: bool = True) -> float:
    """alpha_bar at ``t_prev = -1``: 1 (``set_alpha_to_one=True``, the sampler ends on clean
    data) or ``alpha_bar[0]`` (diffusers' ``final_alpha_cumprod`` with set_alpha_to_one=False)."""
    return 1.0 if set_alpha_to_one else schedule.alpha_bar_list[0]


def alpha_bar_at(schedule: Schedule, t: int, *, set_alpha_to_one: bool = True) -> float:
    """``alpha_bar[t]`` as a float for ``t >= 0`` and :func:`final_alpha_bar` for ``t = -1``."""
    if t < 0:
        return final_alpha_bar(schedule, set_alpha_to_one)
    return schedule.alpha_bar_list[t]


def _cosine_betas(T: int, *, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol & Dhariwal 2021, eq. 17: f(t) = cos^2((t/T + s)/(1 + s) * pi/2),
    beta_t = min(1 - f((t+1)/T) / f(t/T), max_beta)."""

    def f(u: float) -> float:
        return math.cos((u + s) / (1 + s) * math.pi / 2) ** 2

    return torch.tensor(
        [min(1 - f((i + 1) / T) / f(i / T), max_beta) for i in range(T)], dtype=_F64
    )


def rescale_zero_terminal_snr(betas: torch.Tensor) -> torch.Tensor:
    """Lin et al. 2023 ("Common Diffusion Noise Schedules and Sample Steps are Flawed"), Alg. 1.

    Shift and scale ``sqrt(alpha_bar)`` linearly so that its last value is 0 and its first value
    is unchanged, then recover betas: ``sqrt_abar' = (sqrt_abar - sqrt_abar_T) * sqrt_abar_0 /
    (sqrt_abar_0 - sqrt_abar_T)``. The last beta becomes exactly 1. Computed in float64.
    """
    betas = torch.as_tensor(betas, dtype=_F64)
    sqrt_ab = torch.cumprod(1.0 - betas, dim=0).sqrt()
    first, last = sqrt_ab[0].clone(), sqrt_ab[-1].clone()
    sqrt_ab = (sqrt_ab - last) * first / (first - last)  # first kept, last -> 0
    ab = sqrt_ab**2
    alphas = torch.cat([ab[:1], ab[1:] / ab[:-1]])  # undo the cumulative product
    return 1.0 - alphas


_rescale_zero_terminal_snr = rescale_zero_terminal_snr  # make_schedule's flag shadows the name


def make_schedule(
    name: ScheduleName = "linear",
    T: int = 1000,
    *,
    beta_start: float = 1e-4,
    beta_end: float = 0.02,
    rescale_zero_terminal_snr: bool = False,
) -> Schedule:
    """Build a named schedule in float64.

    * ``linear``: betas evenly spaced from ``beta_start`` to ``beta_end`` (Ho et al. 2020).
    * ``scaled_linear``: sqrt(beta) evenly spaced, then squared (latent diffusion; diffusers'
      default for Stable Diffusion uses beta_start=0.00085, beta_end=0.012).
    * ``cosine``: Nichol & Dhariwal 2021 eq. 17 with s=0.008 and beta capped at 0.999
      (diffusers' ``squaredcos_cap_v2``); ``beta_start``/``beta_end`` are ignored.
    * ``sigmoid``: ``beta_start + (beta_end - beta_start) * sigmoid(linspace(-6, 6, T))``.

    ``rescale_zero_terminal_snr`` applies Lin et al. 2023, Alg. 1 (alpha_bar[T-1] becomes 0).
    """
    if name not in SCHEDULE_NAMES:
        raise ValueError(f"unknown schedule name {name!r}; allowed: {', '.join(SCHEDULE_NAMES)}")
    if not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be a positive integer, got {T!r}")
    if name == "linear":
        betas = torch.linspace(beta_start, beta_end, T, dtype=_F64)
    elif name == "scaled_linear":
        betas = torch.linspace(beta_start**0.5, beta_end**0.5, T, dtype=_F64) ** 2
    elif name == "cosine":
        betas = _cosine_betas(T)
    else:  # sigmoid
        betas = torch.sigmoid(torch.linspace(-6.0, 6.0, T, dtype=_F64)) * (beta_end - beta_start)
        betas = betas + beta_start
    if rescale_zero_terminal_snr:
        betas = _rescale_zero_terminal_snr(betas)
    return Schedule(betas)


def extract(values: torch.Tensor, t: torch.Tensor | int, like: torch.Tensor) -> torch.Tensor:
    """Gather ``values[t]`` and shape it to broadcast against ``like``.

    ``t`` is an int or a LongTensor of shape ``(B,)`` (or a 0-dim tensor); the result has
    ``like``'s dtype and device and shape ``(B, 1, ..., 1)`` (``(1, ..., 1)`` for a scalar t),
    so the same code serves 2-D points ``(B, d)``, images ``(B, C, H, W)`` and videos.
    """
    if isinstance(t, int):
        out = values[t].reshape(1)
    else:
        t = torch.as_tensor(t)
        if t.dtype.is_floating_point:
            raise ValueError(f"t must be an integer index, got dtype {t.dtype}")
        out = values.to(t.device)[t.long()].reshape(-1)
    out = out.to(device=like.device, dtype=like.dtype)
    return out.reshape(out.shape[0], *([1] * (like.ndim - 1)))
