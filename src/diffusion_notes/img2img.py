"""Image-to-image by SDEdit [@meng2022sdedit]: noise a guide part of the way, then denoise it.

Given a guide image ``y`` (a corrupted digit, a blocky sketch, a digit of another class) and a
strength ``s`` in ``[0, 1]``, SDEdit

1. picks the start ``t0 = round(s T)`` forward steps (timestep index ``t0 - 1``);
2. noises the guide with the forward process, ``x = sqrt(abar) y + sqrt(1 - abar) eps``
   (:func:`~diffusion_notes.diffusion.q_sample`, Ho et al. 2020, eq. 4);
3. runs a reverse sampler from there on the part of the ``(t, t_prev)`` chain below ``t0``.

``s = 0`` returns the guide itself (no step runs); ``s = 1`` starts from pure noise ``N(0, I)``,
exactly as unconditional sampling does, so the guide is ignored. In between, the guide's
coarse structure survives the noise (its low frequencies sit well above the noise level, its
details drown) and the model fills in the rest: the larger ``s``, the more realistic and the
less faithful: the realism-faithfulness trade-off that Meng et al. measure.

Conditioning (a class label) travels in the denoiser (``den.with_cond(y)``), guidance by handing
in a guided denoiser (:func:`diffusion_notes.guidance.classifier_free`): this module never
sees either.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, get_args

import torch

from diffusion_notes.denoiser import Denoiser
from diffusion_notes.diffusion import q_sample
from diffusion_notes.samplers import sample_ddim, sample_ddpm
from diffusion_notes.samplers._common import draw_noise
from diffusion_notes.timesteps import check_pairs

SamplerName = Literal["ddim", "ddpm"]
SAMPLER_NAMES: tuple[str, ...] = get_args(SamplerName)


def check_strength(strength: float) -> float:
    """``strength`` as a float in ``[0, 1]``, or a ValueError naming it and the allowed range."""
    try:
        s = float(strength)
    except (TypeError, ValueError):
        raise ValueError(
            f"strength must be a number in [0, 1] (0: keep the guide, 1: ignore it); "
            f"got {strength!r}"
        ) from None
    if math.isnan(s) or not 0.0 <= s <= 1.0:
        raise ValueError(
            f"strength must lie in [0, 1] (0: keep the guide, 1: ignore it); got {strength!r}"
        )
    return s


def start_step(strength: float, T: int) -> int:
    """``t0 = round(s T)``: the number of forward steps the guide is noised by (0 .. T)."""
    return int(round(check_strength(strength) * T))


def sdedit_pairs(
    pairs: Sequence[tuple[int, int]], strength: float, T: int
) -> list[tuple[int, int]]:
    """The part of a ``(t, t_prev)`` chain that SDEdit runs at this strength.

    The chain starts exactly at timestep ``t0 - 1`` (the noise level of ``t0 = round(s T)``
    forward steps) and continues with the pairs of ``pairs`` below it. When ``t0 - 1`` is a
    timestep of ``pairs`` this is a plain sub-range; otherwise one step ``(t0 - 1, t')`` to the
    next timestep ``t'`` of the chain is put in front, so that the start matches the strength
    whatever the step count. ``s = 0`` gives ``[]``.
    """
    pairs = check_pairs(pairs, T)
    t0 = start_step(strength, T)
    if t0 == 0:
        return []
    start = t0 - 1
    rest = [(t, tp) for t, tp in pairs if t < start]
    return [(start, rest[0][0] if rest else -1), *rest]


@torch.no_grad()
def sdedit(
    den: Denoiser,
    guide: torch.Tensor,
    strength: float,
    pairs: Sequence[tuple[int, int]],
    *,
    sampler: SamplerName = "ddim",
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """SDEdit [@meng2022sdedit] of ``guide`` at ``strength`` along the chain ``pairs``.

    ``sampler="ddim"`` (with ``eta``; 0 is deterministic given the start noise) or ``"ddpm"``
    (ancestral, the SDE sampler of the paper). The start noise is drawn from ``generator`` first,
    then the sampler's own noise, so a seeded run is reproducible. Returns a new tensor shaped
    like ``guide``; at ``strength = 0`` it is a copy of ``guide``.
    """
    if sampler not in SAMPLER_NAMES:
        raise ValueError(f"unknown sampler {sampler!r}; allowed: {', '.join(SAMPLER_NAMES)}")
    T = den.schedule.T
    sub = sdedit_pairs(pairs, strength, T)
    if not sub:
        return guide.clone()
    eps = draw_noise(guide, generator)
    t_start = sub[0][0]
    if t_start == T - 1:
        x = eps  # s = 1: pure noise, as unconditional sampling starts (the guide is ignored)
    else:
        x = q_sample(den.schedule, guide, t_start, eps)  # sqrt(abar) y + sqrt(1 - abar) eps
    if sampler == "ddpm":
        return sample_ddpm(den, x, sub, generator=generator, progress=progress)
    return sample_ddim(den, x, sub, eta=eta, generator=generator, progress=progress)
