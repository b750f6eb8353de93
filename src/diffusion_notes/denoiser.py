"""The network wrapped once: parametrisation, x0 post-processing and conditioning.

A :class:`Denoiser` turns a network into the pair ``(x0_hat, eps_hat)`` at ``(x_t, t)``. It owns

* the **parametrisation**: the network predicts ``eps``, ``x0`` or ``v`` (Salimans & Ho 2022,
  sec. 4); with ``x_t = a x0 + s eps`` (``a = sqrt(abar_t)``, ``s = sqrt(1 - abar_t)``) any one
  of them determines the other two (:func:`diffusion_notes.diffusion.x0_eps_from_output`);
* the **x0 post-processing**: static clipping to ``[-clip_range, clip_range]`` or dynamic
  thresholding (Saharia et al. 2022, sec. 2.3), with ``eps`` recomputed from the processed
  ``x0`` (``recompute_eps``) so that both describe the same ``x_t``;
* the **conditioning**: ``cond`` (class labels today, text tokens later) is handed to the network
  as a third argument, ``net(x, t, cond)``; samplers never see it.

Samplers take a denoiser and a list of ``(t, t_prev)`` pairs and nothing about the network.
Guidance methods build new denoisers from old ones by overriding :meth:`Denoiser.raw` (the
prediction before post-processing), so clipping acts on the guided prediction, as in
improved-diffusion's ``p_mean_variance(..., denoised_fn=...)`` and k-diffusion's wrappers.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from diffusion_notes.diffusion import (
    Model,
    Prediction,
    check_prediction,
    eps_from_x0_at,
    x0_eps_from_output,
)
from diffusion_notes.schedules import Schedule


class Denoised(NamedTuple):
    """The denoiser's estimate at one ``(x_t, t)``: clean data and the noise, same shape as x_t."""

    x0: torch.Tensor
    eps: torch.Tensor


def dynamic_threshold(
    x0: torch.Tensor, quantile: float, max_value: float = math.inf
) -> torch.Tensor:
    """Dynamic thresholding (Saharia et al. 2022, sec. 2.3): per example, ``s`` = the ``quantile``
    of ``|x0|`` over all its elements, clamped to ``[1, max_value]``; x0 -> clamp(x0, -s, s) / s."""
    flat = x0.reshape(x0.shape[0], -1).abs()
    if flat.dtype not in (torch.float32, torch.float64):
        flat = flat.float()  # quantile needs a full-precision float type
    s = torch.quantile(flat, quantile, dim=1).to(x0.dtype)
    s = s.clamp(min=1.0, max=max_value).reshape(-1, *([1] * (x0.ndim - 1)))
    return torch.maximum(torch.minimum(x0, s), -s) / s


@dataclass(frozen=True, eq=False)
class Denoiser:
    """A network with its parametrisation, x0 post-processing and conditioning.

    ``den(x, t)`` returns :class:`Denoised` at the integer timestep ``t`` (``0 .. T-1``).
    ``alpha_bar`` overrides the noise level used to convert the output (DDIM inversion evaluates
    the network at ``t = 0`` for the level ``t_prev = -1``); by default it is ``abar[t]``.
    """

    net: Model  # net(x, t) or net(x, t, cond); t is a LongTensor (B,)
    schedule: Schedule
    prediction: Prediction = "eps"
    clip_x0: bool = False
    clip_range: float = 1.0
    threshold: float | None = None  # dynamic-thresholding quantile, e.g. 0.995
    threshold_max: float = math.inf
    recompute_eps: bool = True  # diffusers' use_clipped_model_output
    cond: Any = None

    def __post_init__(self) -> None:
        check_prediction(self.prediction)
        if self.threshold is not None:
            if self.clip_x0:
                raise ValueError(
                    "choose one of clip_x0=True (static clipping) and threshold=p "
                    "(dynamic thresholding)"
                )
            if not 0.0 < self.threshold <= 1.0:
                raise ValueError(
                    f"threshold is a quantile in (0, 1], e.g. 0.995; got {self.threshold}"
                )
        if not self.clip_range > 0:
            raise ValueError(f"clip_range must be positive, got {self.clip_range}")

    # -- building variants -------------------------------------------------------------------
    def with_cond(self, cond: Any) -> Denoiser:
        """The same denoiser conditioned on ``cond`` (``None``: unconditional call)."""
        return dataclasses.replace(self, cond=cond)

    def replace(self, **changes: Any) -> Denoiser:
        """A copy with some options changed (``den.replace(clip_x0=True)``)."""
        return dataclasses.replace(self, **changes)

    @property
    def post_processes(self) -> bool:
        """Whether x0 is clipped or thresholded."""
        return self.clip_x0 or self.threshold is not None

    # -- the three stages --------------------------------------------------------------------
    def output(self, x: torch.Tensor, t: int) -> torch.Tensor:
        """The raw network output at integer timestep ``t`` (shape checked)."""
        tt = torch.full((x.shape[0],), int(t), dtype=torch.long, device=x.device)
        return self.call_net(x, tt)

    def call_net(self, x: torch.Tensor, tt: torch.Tensor) -> torch.Tensor:
        """``net(x, tt[, cond])`` with its output's shape checked against ``x``."""
        out = self.net(x, tt) if self.cond is None else self.net(x, tt, self.cond)
        if out.shape != x.shape:
            raise ValueError(
                f"model output has shape {tuple(out.shape)}, expected {tuple(x.shape)}"
            )
        return out

    def coefficients(self, t: int, alpha_bar: float | None = None) -> tuple[float, float]:
        """``(a, s) = (sqrt(abar), sqrt(1 - abar))`` at ``t`` or at the given ``alpha_bar``."""
        ab = self.schedule.alpha_bar_list[t] if alpha_bar is None else float(alpha_bar)
        return math.sqrt(ab), math.sqrt(1.0 - ab)

    def raw(self, x: torch.Tensor, t: int, *, alpha_bar: float | None = None) -> Denoised:
        """``(x0, eps)`` from the network output, before any post-processing."""
        a, s = self.coefficients(t, alpha_bar)
        return Denoised(*x0_eps_from_output(self.output(x, t), x, a, s, self.prediction))

    def postprocess(
        self, x: torch.Tensor, d: Denoised, t: int, *, alpha_bar: float | None = None
    ) -> Denoised:
        """Clip or threshold ``x0``; recompute ``eps = (x_t - a x0) / s`` when asked."""
        if not self.post_processes:
            return d
        if self.threshold is not None:
            x0 = dynamic_threshold(d.x0, self.threshold, self.threshold_max)
        else:
            x0 = d.x0.clamp(-self.clip_range, self.clip_range)
        if not self.recompute_eps:
            return Denoised(x0, d.eps)
        return Denoised(x0, eps_from_x0_at(x, x0, *self.coefficients(t, alpha_bar)))

    def __call__(self, x: torch.Tensor, t: int, *, alpha_bar: float | None = None) -> Denoised:
        return self.postprocess(x, self.raw(x, t, alpha_bar=alpha_bar), t, alpha_bar=alpha_bar)
