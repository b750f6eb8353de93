"""Guidance as denoisers: classifier-free guidance, classifier guidance, intervals, rescale.

Each method here is a :class:`~diffusion_notes.denoiser.Denoiser` that overrides
:meth:`~diffusion_notes.denoiser.Denoiser.raw`, so any sampler accepts it unchanged and the
x0 clipping or thresholding of the base denoiser acts on the *guided* prediction.

* :class:`ClassifierFreeGuidance` [@ho2022classifier]: one network, evaluated with the
  condition and with a null condition in one batched call, and extrapolated from the second
  towards (and past) the first.
* :class:`ClassifierGuidance` [@dhariwal2021diffusion]: an unconditional (or conditional)
  denoiser plus the gradient of a noise-aware classifier's ``log p_phi(y | x_t)``.
* Both take ``interval=(sigma_lo, sigma_hi)``: guide only while the noise level
  ``sigma_t = sqrt((1 - abar_t) / abar_t)`` lies in ``(sigma_lo, sigma_hi]`` and use the
  plain conditional prediction elsewhere [@kynkaanniemi2024applying].
* :class:`ClassifierFreeGuidance` takes ``rescale=phi``: the guidance rescale of
  [@lin2024common, sec. 3.4], as diffusers' ``rescale_noise_cfg`` applies it.

Build them from a base denoiser with :func:`classifier_free` and :func:`classifier_guided`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from diffusion_notes.denoiser import Denoised, Denoiser
from diffusion_notes.diffusion import x0_eps_from_output

Classifier = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t, t) -> logits (B, C)


def sigma_of_alpha_bar(alpha_bar: float) -> float:
    """The noise level ``sigma = sqrt((1 - abar) / abar)`` of ``x_t / sqrt(abar) = x0 + sigma eps``
    (the variance-exploding scale of Karras et al. 2022, in which guidance intervals are given)."""
    return math.inf if alpha_bar <= 0.0 else math.sqrt((1.0 - alpha_bar) / alpha_bar)


def _check_scale(name: str, value: float, allowed: str) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0.0:
        raise ValueError(f"{name} must be a finite number >= 0 ({allowed}); got {value}")
    return value


def _check_interval(interval: tuple[float, float] | None) -> tuple[float, float] | None:
    if interval is None:
        return None
    try:
        lo, hi = (float(v) for v in interval)
    except (TypeError, ValueError):
        raise ValueError(
            f"interval must be a pair (sigma_lo, sigma_hi) of noise levels; got {interval!r}"
        ) from None
    if math.isnan(lo) or math.isnan(hi) or not 0.0 <= lo < hi:
        raise ValueError(
            f"interval (sigma_lo, sigma_hi) needs 0 <= sigma_lo < sigma_hi (hi may be inf); "
            f"got ({lo}, {hi})"
        )
    return lo, hi


def _labels(cond: Any, n: int, device: torch.device, what: str) -> torch.Tensor:
    """A condition as (n,) labels: an int is repeated, a (n,) or (1,) tensor is expanded.

    A condition with two or more axes is a sequence per example (caption token ids (n, L)):
    its first axis is the batch, and a batch of one is expanded to n."""
    y = torch.as_tensor(cond, device=device)
    if y.is_floating_point() or y.is_complex():
        raise ValueError(f"{what} must be integer class labels or token ids, got dtype {y.dtype}")
    if y.ndim >= 2:
        if y.shape[0] not in (1, n):
            raise ValueError(f"{what} has {y.shape[0]} token sequences for a batch of {n}")
        return y.long().expand(n, *y.shape[1:])
    y = y.reshape(-1).long()
    if y.numel() == 1:
        return y.expand(n)
    if y.numel() != n:
        raise ValueError(f"{what} has {y.numel()} labels for a batch of {n}")
    return y


class _Guided(Denoiser):
    """Shared parts: the interval test and a plain (unguided) branch evaluation."""

    interval: tuple[float, float] | None

    def guiding_at(self, t: int, alpha_bar: float | None = None) -> bool:
        """Whether guidance is on at this step: always without an interval, else when
        ``sigma_lo < sigma_t <= sigma_hi``."""
        if self.interval is None:
            return True
        ab = self.schedule.alpha_bar_list[t] if alpha_bar is None else float(alpha_bar)
        lo, hi = self.interval
        return lo < sigma_of_alpha_bar(ab) <= hi

    def _output(self, x: torch.Tensor, t: int, cond: Any) -> torch.Tensor:
        """The network output at ``(x, t)`` with this condition (``None``: no third argument)."""
        return _plain(self, cond).output(x, t)


def _plain(den: Denoiser, cond: Any) -> Denoiser:
    """A plain Denoiser with the same network and parametrisation (no guidance, no clipping)."""
    return Denoiser(den.net, den.schedule, prediction=den.prediction, cond=cond)


@dataclass(frozen=True, eq=False)
class ClassifierFreeGuidance(_Guided):
    """Classifier-free guidance [@ho2022classifier]: ``out = out_null + scale (out_cond - out_null)``.

    ``out`` is the network output in its own parametrisation (eps, x0 or v); the combination is
    affine, so the guided ``(x0, eps)`` are the same combination of the two branches'.

    **Conventions.** ``scale`` here is diffusers' ``guidance_scale`` (and Imagen's ``w``),
    call it gamma: ``eps = eps_u + gamma (eps_c - eps_u)``. gamma = 1 is the conditional model
    (no guidance) and gamma = 0 the unconditional one. Ho & Salimans write
    ``eps = (1 + w) eps_c - w eps_u``, so their ``w`` is ``gamma - 1``: their "no guidance" is
    w = 0 and their w = 1 is gamma = 2 (:func:`classifier_free` accepts either). diffusers'
    ``ClassifierFreeGuidance`` guider uses gamma by default and Ho & Salimans' w with
    ``use_original_formulation=True``, both under the name ``guidance_scale``. In score terms
    gamma is the exponent of the sharpened classifier: the guided score is
    ``grad log p(x_t) + gamma grad log p(y | x_t)``.

    The two branches are one batched network call on ``cat(x, x)`` with labels
    ``cat(cond, null_cond)``; ``null_cond`` may be the "no label" token or another condition
    (a negative prompt is the same formula with the negative condition as the null branch).
    The combination uses :func:`torch.lerp`, which is exact at both ends: gamma = 1 returns the
    conditional branch and gamma = 0 the null branch bit for bit.

    ``rescale = phi`` in [0, 1] applies guidance rescale [@lin2024common, sec. 3.4] to the
    guided output: ``out <- phi * out * std(out_cond) / std(out) + (1 - phi) * out``, standard
    deviations over each example (as diffusers' ``rescale_noise_cfg``).
    """

    scale: float = 1.0
    null_cond: Any = None
    interval: tuple[float, float] | None = None
    rescale: float = 0.0
    num_classes: int | None = None  # labels 0 .. num_classes - 1; num_classes = "no label"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "scale", _check_scale(
            "scale", self.scale, "diffusers' guidance_scale: 1 = conditional, 0 = unconditional; "
            "to push away from a condition, pass it as null_cond"))
        object.__setattr__(self, "interval", _check_interval(self.interval))
        r = float(self.rescale)
        if not 0.0 <= r <= 1.0:
            raise ValueError(f"rescale (phi of Lin et al. 2023) must lie in [0, 1]; got {r}")
        if self.null_cond is None:
            raise ValueError("classifier-free guidance needs null_cond, the 'no condition' "
                             "token (10 for the digits UNet) or a negative condition")
        n = self.num_classes
        if n is None:
            n = getattr(self.net, "num_classes", None)
            object.__setattr__(self, "num_classes", n)
        if n is not None:
            for what, c, top in (("class", self.cond, n - 1), ("null_cond", self.null_cond, n)):
                if c is None:
                    continue
                y = torch.as_tensor(c).reshape(-1)
                if y.is_floating_point() or bool(((y < 0) | (y > top)).any()):
                    raise ValueError(f"unknown {what} {y.tolist()}: the model has classes "
                                     f"0 .. {n - 1} (and {n} = no label)")

    @property
    def w(self) -> float:
        """The guidance weight in Ho & Salimans' convention, ``w = scale - 1``."""
        return self.scale - 1.0

    def raw(self, x: torch.Tensor, t: int, *, alpha_bar: float | None = None) -> Denoised:
        if self.cond is None:
            raise ValueError("classifier-free guidance has no condition: call .with_cond(y)")
        a, s = self.coefficients(t, alpha_bar)
        if not self.guiding_at(t, alpha_bar) or (self.scale == 1.0 and self.rescale == 0.0):
            out = self._output(x, t, self.cond)  # conditional only: one evaluation
        else:
            n = x.shape[0]
            yc = _labels(self.cond, n, x.device, "cond")
            yu = _labels(self.null_cond, n, x.device, "null_cond")
            both = self._output(torch.cat([x, x]), t, torch.cat([yc, yu]))
            out_c, out_u = both[:n], both[n:]
            out = torch.lerp(out_u, out_c, self.scale)  # out_u + scale (out_c - out_u)
            if self.rescale > 0.0:
                out = rescale_guided(out, out_c, self.rescale)
        return Denoised(*x0_eps_from_output(out, x, a, s, self.prediction))


def rescale_guided(guided: torch.Tensor, cond: torch.Tensor, phi: float) -> torch.Tensor:
    """Guidance rescale [@lin2024common, sec. 3.4]: match the per-example standard deviation of
    the guided output to the conditional one's, then blend with weight ``phi``."""
    dims = list(range(1, guided.ndim))
    ratio = cond.std(dim=dims, keepdim=True) / guided.std(dim=dims, keepdim=True)
    return phi * (guided * ratio) + (1.0 - phi) * guided


@dataclass(frozen=True, eq=False)
class ClassifierGuidance(_Guided):
    """Classifier guidance [@dhariwal2021diffusion, Algorithm 2]:
    ``eps_hat = eps - scale * sqrt(1 - abar_t) * grad_x log p_phi(y | x_t)``.

    ``classifier(x_t, t)`` returns logits ``(B, C)`` of a classifier trained on noisy inputs;
    ``y`` is the target class (an int or ``(B,)`` labels). The gradient is taken with autograd
    (one backward pass through the classifier per step, also inside a sampler's ``no_grad``).
    ``x0`` moves with eps: ``x0_hat = x0 + scale * (s / a) * s * grad`` keeps ``x_t = a x0 + s eps``.
    With ``scale = 1`` and an exact classifier this is the score of ``p(x_t | y)``; larger
    scales sharpen the classifier to ``p(y | x_t)^scale``. The base network sees ``cond`` as
    usual (``None`` for an unconditional model).
    """

    classifier: Classifier | None = None
    y: Any = None
    scale: float = 1.0
    interval: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.classifier is None:
            raise ValueError("classifier guidance needs classifier(x_t, t) -> logits (B, C)")
        object.__setattr__(self, "scale", _check_scale(
            "scale", self.scale, "0 = no guidance, 1 = the exact conditional score"))
        object.__setattr__(self, "interval", _check_interval(self.interval))
        n = getattr(self.classifier, "num_classes", None)
        if self.y is not None and n is not None:
            y = torch.as_tensor(self.y).reshape(-1)
            if y.is_floating_point() or bool(((y < 0) | (y >= n)).any()):
                raise ValueError(f"unknown class {y.tolist()}: the classifier has classes "
                                 f"0 .. {n - 1}")

    def with_class(self, y: Any) -> ClassifierGuidance:
        """The same guidance towards class ``y``."""
        return dataclasses.replace(self, y=y)

    def log_prob_grad(self, x: torch.Tensor, t: int) -> torch.Tensor:
        """``grad_x log p_phi(y | x_t)`` (shaped like ``x``), by autograd, in x's dtype."""
        if self.y is None:
            raise ValueError("classifier guidance has no target class: call .with_class(y)")
        n = x.shape[0]
        tt = torch.full((n,), int(t), dtype=torch.long, device=x.device)
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            logits = self.classifier(xg, tt)
            if logits.ndim != 2 or logits.shape[0] != n:
                raise ValueError(f"classifier returned shape {tuple(logits.shape)}; expected "
                                 f"logits of shape ({n}, num_classes)")
            y = _labels(self.y, n, x.device, "y")
            c = logits.shape[1]
            if bool(((y < 0) | (y >= c)).any()):
                raise ValueError(f"unknown class {y.unique().tolist()}: the classifier has "
                                 f"{c} classes (0 .. {c - 1})")
            logp = torch.log_softmax(logits, dim=1).gather(1, y[:, None]).sum()
            grad = None
            if logp.requires_grad:  # a classifier that ignores x has a zero gradient
                (grad,) = torch.autograd.grad(logp, xg, allow_unused=True)
        return torch.zeros_like(x) if grad is None else grad.to(x.dtype)

    def raw(self, x: torch.Tensor, t: int, *, alpha_bar: float | None = None) -> Denoised:
        d = _plain(self, self.cond).raw(x, t, alpha_bar=alpha_bar)
        if self.scale == 0.0 or not self.guiding_at(t, alpha_bar):
            return d
        a, s = self.coefficients(t, alpha_bar)
        delta = (self.scale * s) * self.log_prob_grad(x, t)  # scale * sqrt(1 - abar) * grad
        return Denoised(d.x0 + (s / a) * delta, d.eps - delta)


# ----------------------------------------------------------------------------- builders


def classifier_free(
    den: Denoiser,
    *,
    null_cond: Any,
    scale: float | None = None,
    w: float | None = None,
    interval: tuple[float, float] | None = None,
    rescale: float = 0.0,
    num_classes: int | None = None,
) -> ClassifierFreeGuidance:
    """CFG around a conditional denoiser ``den`` (its ``cond`` is the positive condition).

    Give the strength as ``scale`` (diffusers' ``guidance_scale``, 1 = no guidance) or as
    ``w`` (Ho & Salimans, 0 = no guidance; ``scale = 1 + w``), not both.
    """
    if (scale is None) == (w is None):
        raise ValueError("give exactly one of scale= (diffusers' guidance_scale, 1 = no "
                         "guidance) and w= (Ho & Salimans, 0 = no guidance)")
    if w is not None:
        if not math.isfinite(float(w)) or w < -1.0:
            raise ValueError(f"w must be a finite number >= -1 (w = -1 is the unconditional "
                             f"model); got {w}")
        scale = 1.0 + float(w)
    fields = {f.name: getattr(den, f.name) for f in dataclasses.fields(Denoiser)}
    return ClassifierFreeGuidance(**fields, scale=scale, null_cond=null_cond, interval=interval,
                                  rescale=rescale, num_classes=num_classes)


def classifier_guided(
    den: Denoiser,
    classifier: Classifier,
    *,
    y: Any = None,
    scale: float = 1.0,
    interval: tuple[float, float] | None = None,
) -> ClassifierGuidance:
    """Classifier guidance of ``den`` towards class ``y`` with a noise-aware ``classifier``."""
    fields = {f.name: getattr(den, f.name) for f in dataclasses.fields(Denoiser)}
    return ClassifierGuidance(**fields, classifier=classifier, y=y, scale=scale,
                              interval=interval)
