"""Pieces every sampler shares: validation, the x0 post-processing, the model call, progress.

Samplers precompute their per-step coefficients as Python floats (from the float64 schedule) so
that a step is a handful of tensor operations in the sample's own dtype.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import torch
from tqdm import tqdm  # text bars: no ipywidgets needed in notebooks

from diffusion_notes.diffusion import Prediction, check_prediction
from diffusion_notes.schedules import Schedule
from diffusion_notes.timesteps import alpha_bar_at, check_pairs

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Callback = Callable[[int, int, torch.Tensor, torch.Tensor], None]


def validate(
    schedule: Schedule,
    pairs: Sequence[tuple[int, int]],
    prediction: Prediction,
    *,
    clip_x0: bool = False,
    threshold: float | None = None,
    name: str = "sampler",
) -> list[tuple[int, int]]:
    """Check options and pairs; refuse eps-prediction at a timestep where alpha_bar = 0."""
    check_prediction(prediction)
    pairs = check_pairs(pairs, schedule.T)
    if threshold is not None:
        if clip_x0:
            raise ValueError(
                "choose one of clip_x0=True (static clipping) and threshold=p (dynamic thresholding)"
            )
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold is a quantile in (0, 1], e.g. 0.995; got {threshold}")
    if prediction == "eps":
        ab = schedule.alpha_bar_list
        bad = [t for t, _ in pairs if ab[t] == 0.0]
        if bad:
            raise ValueError(
                f"{name}: eps-prediction is undefined at t={bad[0]}, where alpha_bar = 0 (zero "
                "terminal SNR): x0 = (x_t - sqrt(1 - alpha_bar) eps) / sqrt(alpha_bar) divides by 0. "
                "This happens whenever the pairs visit t = T-1 of a zero-terminal-SNR schedule, i.e. "
                "'trailing' or 'linspace' spacing (or 'leading' with n_steps = T). Use a v-prediction "
                "(or x0-prediction) model, as Lin et al. 2023 do with trailing spacing; 'leading' "
                "spacing avoids t = T-1 but then never starts from pure noise."
            )
    return pairs


def abar_pairs(
    schedule: Schedule, pairs: Sequence[tuple[int, int]], set_alpha_to_one: bool
) -> list[tuple[float, float]]:
    """``(alpha_bar[t], alpha_bar[t_prev])`` per pair, with the set_alpha_to_one choice at -1."""
    return [
        (alpha_bar_at(schedule, t), alpha_bar_at(schedule, tp, set_alpha_to_one=set_alpha_to_one))
        for t, tp in pairs
    ]


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


def process_x0(
    x0: torch.Tensor,
    clip_x0: bool,
    clip_range: float,
    threshold: float | None,
    threshold_max: float,
) -> tuple[torch.Tensor, bool]:
    """Apply clipping or dynamic thresholding; report whether x0 may have changed."""
    if threshold is not None:
        return dynamic_threshold(x0, threshold, threshold_max), True
    if clip_x0:
        return x0.clamp(-clip_range, clip_range), True
    return x0, False


def split_output(
    out: torch.Tensor, x: torch.Tensor, a: float, s: float, prediction: Prediction
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x0, eps)`` from a network output, with ``a = sqrt(abar_t)``, ``s = sqrt(1 - abar_t)``."""
    if prediction == "eps":
        return (x - s * out) / a, out
    if prediction == "x0":
        return out, (x - a * out) / s
    return a * x - s * out, s * x + a * out  # v-prediction (Salimans & Ho 2022)


def call_model(model: Model, x: torch.Tensor, t: int) -> torch.Tensor:
    """model(x, t) with t as a LongTensor of shape (B,), checking the output shape."""
    out = model(x, torch.full((x.shape[0],), t, dtype=torch.long, device=x.device))
    if out.shape != x.shape:
        raise ValueError(f"model output has shape {tuple(out.shape)}, expected {tuple(x.shape)}")
    return out


def draw_noise(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise shaped like ``x``, drawn as diffusers' randn_tensor draws it (so a
    seeded generator gives both libraries the same values); a CPU generator is moved over."""
    if generator is not None and generator.device.type != x.device.type:
        return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=generator.device).to(
            x.device
        )
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)


def steps(
    pairs: list[tuple[int, int]], progress: bool, desc: str
) -> Iterable[tuple[int, tuple[int, int]]]:
    """Enumerate the pairs behind a tqdm bar (off with progress=False)."""
    if not progress:
        return enumerate(pairs)
    return enumerate(tqdm(pairs, desc=desc, leave=False))
