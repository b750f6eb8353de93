"""Image editing with a pretrained diffusion model: mask inpainting and the DDIM-inversion edit.

**Inpainting** needs no retraining. The known pixels ``x_known`` (``mask == 1``) are noised by
the forward process to the level the sampler has reached, and pasted over the sample after
every reverse step; the network fills in the rest (the "replacement" method, which RePaint
[@Lugmayr2022RePaintIU, Algorithm 1] builds on). Pasting alone harmonises badly: the unknown
region at level ``t_prev`` was drawn without seeing the known pixels' noise at that level.
RePaint's **resampling** goes back up after a step, ``x_t ~ q(x_t | x_{t_prev})``, and does the
step again, ``U`` times in all (``resample``), optionally by ``jump`` levels at once, so that the
two regions have more steps in which to agree. The known pixels of the output are the input's,
bit for bit: the last step lands on the clean level (``t_prev = -1``) and they are pasted there.

**The inversion edit** runs deterministic DDIM [@song2020denoising] backwards from an image
under its own label (:func:`~diffusion_notes.samplers.ddim.ddim_invert`), then forwards from
that latent under another label. The latent carries the image's layout and stroke style, the
new label decides the class: the class-label analogue of prompt-to-prompt editing
[@hertz2022prompt], and of the inversion that null-text inversion [@mokady2022null] makes exact
under guidance. Starting at a partial level ``t_edit < T`` keeps more of the original (SDEdit-
like; DiffEdit [@couairon2023diffedit] combines such a partial inversion with a mask).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import torch

from diffusion_notes.denoiser import Denoiser
from diffusion_notes.diffusion import q_sample
from diffusion_notes.guidance import classifier_free
from diffusion_notes.samplers._common import abar_pairs, draw_noise, validate
from diffusion_notes.samplers.ddim import ddim_invert, ddim_sigma_from_alpha_bar, sample_ddim
from diffusion_notes.schedules import Schedule, alpha_bar_at, posterior_coefficients

Step = Literal["ddpm", "ddim"]
STEPS: tuple[str, ...] = get_args(Step)


# ----------------------------------------------------------------------------- inpainting


def check_mask(mask: torch.Tensor, x_known: torch.Tensor) -> torch.Tensor:
    """The mask as a boolean "known" tensor broadcastable to ``x_known`` (1 = known, 0 = fill).

    It must have ``x_known``'s number of dimensions, broadcast to its shape (e.g. ``(1, 1, H, W)``
    for one mask over a batch) and hold only 0 and 1.
    """
    mask = torch.as_tensor(mask)
    try:
        ok = torch.broadcast_shapes(mask.shape, x_known.shape) == x_known.shape
    except RuntimeError:
        ok = False
    if mask.ndim != x_known.ndim or not ok:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to the image "
                         f"shape {tuple(x_known.shape)}; allowed: that shape, or it with "
                         "some dimensions 1 (same number of dimensions)")
    if mask.dtype != torch.bool:
        bad = mask[(mask != 0) & (mask != 1)]
        if bad.numel():
            raise ValueError(f"mask must be binary (1 = known, 0 = to fill); found value "
                             f"{float(bad.reshape(-1)[0])}; allowed: 0, 1 (or a bool tensor)")
        mask = mask != 0
    return mask.to(x_known.device)


def repaint_moves(n_steps: int, resample: int = 1, jump: int = 1) -> list[tuple[str, int]]:
    """RePaint's walk over the levels ``0 .. n_steps`` (level ``k`` = after ``k`` steps).

    ``("down", k)``: one reverse step from level ``k`` to ``k + 1`` (pair ``k``); ``("up", k)``:
    back up ``jump`` levels from level ``k`` in one forward draw. After every ``jump`` steps (never
    at the clean last level), go up and redo those steps, ``resample - 1`` more times: ``U = 1``
    is plain replacement, ``jump = 1`` Algorithm 1 of Lugmayr et al. 2022.
    """
    if not (isinstance(resample, int) and resample >= 1):
        raise ValueError(f"resample (U) must be an integer >= 1 (1 = no resampling); got {resample}")
    if not (isinstance(jump, int) and 1 <= jump <= max(n_steps - 1, 1)):
        raise ValueError(f"jump must be an integer in 1 .. {max(n_steps - 1, 1)} "
                         f"(n_steps - 1); got {jump}")
    moves: list[tuple[str, int]] = []
    for k in range(n_steps):
        moves.append(("down", k))
        level = k + 1
        if level < n_steps and level % jump == 0:
            for _ in range(resample - 1):
                moves.append(("up", level))
                moves.extend(("down", kk) for kk in range(level - jump, level))
    return moves


def q_jump(
    schedule: Schedule, x_prev: torch.Tensor, t_prev: int, t: int, eps: torch.Tensor
) -> torch.Tensor:
    """Forward from level ``t_prev`` up to ``t > t_prev`` in one draw: ``q(x_t | x_{t_prev}) =
    N(sqrt(abar_t / abar_prev) x_prev, (1 - abar_t / abar_prev) I)``, the product of the single
    forward steps in between (Ho et al. 2020, eq. 2 composed; ``q_step`` when ``t = t_prev + 1``)."""
    ratio = alpha_bar_at(schedule, t) / alpha_bar_at(schedule, t_prev)
    return math.sqrt(ratio) * x_prev + math.sqrt(1.0 - ratio) * eps


def n_evaluations(n_steps: int, resample: int = 1, jump: int = 1) -> int:
    """Network evaluations of :func:`inpaint` (one per down move)."""
    return sum(m == "down" for m, _ in repaint_moves(n_steps, resample, jump))


@torch.no_grad()
def inpaint(
    den: Denoiser,
    x_known: torch.Tensor,
    mask: torch.Tensor,
    x: torch.Tensor,
    pairs: Sequence[tuple[int, int]],
    *,
    resample: int = 1,
    jump: int = 1,
    step: Step = "ddpm",
    eta: float = 1.0,
    generator: torch.Generator | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """Fill the pixels where ``mask == 0``, keep those where ``mask == 1``.

    ``x`` is the starting noise at ``pairs[0][0]`` (as for the samplers). Each reverse step is
    DDPM's ancestral step (``step="ddpm"``, posterior variance, as :func:`sample_ddpm`) or DDIM's
    with ``eta`` (``"ddim"``, as :func:`sample_ddim`); after it the known region becomes
    ``q_sample(x_known, t_prev)`` (the clean ``x_known`` at ``t_prev = -1``). ``resample = U``
    and ``jump`` add RePaint's resampling (:func:`repaint_moves`): the forward draw from level
    ``t_prev`` up to ``t`` is ``x_t = sqrt(abar_t / abar_prev) x_prev + sqrt(1 - abar_t /
    abar_prev) z``. Noise is drawn from ``generator`` in the order: step noise, then the
    known region's noise (skipped when no pixel is known), so an all-unknown mask reproduces
    the plain sampler draw for draw.
    """
    pairs = validate(den, pairs, "inpaint")
    if pairs[-1][1] != -1:
        raise ValueError(f"inpaint: the pairs must end at t_prev = -1 (clean data), got "
                         f"{pairs[-1]}")
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}; allowed: {', '.join(STEPS)}")
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must lie in [0, 1]; got {eta}")
    if x.shape != x_known.shape:
        raise ValueError(f"noise of shape {tuple(x.shape)} for an image of shape "
                         f"{tuple(x_known.shape)}; they must match")
    known = check_mask(mask, x_known)
    any_known = bool(known.any())
    x_known = x_known.to(x.device, x.dtype)
    moves = repaint_moves(len(pairs), resample, jump)

    coefs = []  # per pair: (c0, ct, std) for DDPM, or (a_prev, direction, sigma) for DDIM
    for (_, tp), (ab, ab_p) in zip(pairs, abar_pairs(den, pairs, True), strict=True):
        if step == "ddpm":
            post = posterior_coefficients(ab, ab_p)
            coefs.append((post.c0, post.ct, math.sqrt(max(post.variance, 0.0)) if tp >= 0 else 0.0))
        else:
            sig = ddim_sigma_from_alpha_bar(ab, ab_p, eta) if tp >= 0 else 0.0
            coefs.append((math.sqrt(ab_p), math.sqrt(max(1.0 - ab_p - sig * sig, 0.0)), sig))
    levels = [pairs[0][0]] + [tp for _, tp in pairs]  # level k is the timestep after k steps

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=sum(m == "down" for m, _ in moves), desc="inpainting", leave=False)
    for move, k in moves:
        if move == "up":  # x_t ~ q(x_t | x_{t_prev}) across `jump` levels at once
            x = q_jump(den.schedule, x, levels[k], levels[k - jump], draw_noise(x, generator))
            continue
        t, tp = pairs[k]
        c = coefs[k]
        d = den(x, t)
        if step == "ddpm":
            x = c[0] * d.x0 + c[1] * x  # posterior mean at the predicted x0
        else:
            x = c[0] * d.x0 + c[1] * d.eps  # DDIM, eq. 12 of Song et al. 2021
        if c[2] > 0.0:
            x = x + c[2] * draw_noise(x, generator)
        if any_known:
            if tp >= 0:
                noised = q_sample(den.schedule, x_known, tp, draw_noise(x, generator))
            else:
                noised = x_known
            x = torch.where(known, noised, x)
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    return torch.where(known, x_known, x)  # the clean known pixels, exactly


# ----------------------------------------------------------------------------- inversion edit


@dataclass(frozen=True)
class InversionEdit:
    """One inversion edit of a batch: the latent at ``t_edit``, the same-label reconstruction and
    the edit under the target label (all shaped like the input)."""

    latent: torch.Tensor
    reconstruction: torch.Tensor
    edit: torch.Tensor
    t_edit: int
    n_steps: int


def edit_pairs(pairs: Sequence[tuple[int, int]], t_edit: int | None) -> list[tuple[int, int]]:
    """The tail of a chain of pairs that starts at or below ``t_edit`` (``None``: all of it)."""
    pairs = [(int(t), int(tp)) for t, tp in pairs]
    if t_edit is None:
        return pairs
    tail = [(t, tp) for t, tp in pairs if t <= t_edit]
    if not tail:
        raise ValueError(f"t_edit={t_edit} lies below every step of the chain (lowest t = "
                         f"{pairs[-1][0]}); allowed: {pairs[-1][0]} .. {pairs[0][0]}")
    return tail


def _batch_labels(cond: Any, x: torch.Tensor) -> Any:
    """An int label as a ``(B,)`` LongTensor on ``x``'s device (what the networks take)."""
    if isinstance(cond, int):
        return torch.full((x.shape[0],), cond, dtype=torch.long, device=x.device)
    return cond


@torch.no_grad()
def invert_and_edit(
    den: Denoiser,
    x0: torch.Tensor,
    source: Any,
    target: Any,
    pairs: Sequence[tuple[int, int]],
    *,
    t_edit: int | None = None,
    guidance_scale: float = 1.0,
    null_cond: Any = None,
    progress: bool = False,
) -> InversionEdit:
    """DDIM-invert ``x0`` under label ``source`` to the level ``t_edit`` (the whole chain when
    None), then run deterministic DDIM back down under ``source`` (the reconstruction) and under
    ``target`` (the edit; classifier-free guidance when ``guidance_scale != 1``, which needs
    ``null_cond``). The inversion itself is unguided: guidance would break the round trip, the
    problem null-text inversion [@mokady2022null] solves by optimising the null embedding.
    """
    sub = edit_pairs(pairs, t_edit)
    source, target = (_batch_labels(c, x0) for c in (source, target))
    latent = ddim_invert(den.with_cond(source), x0, sub, progress=progress)
    recon = sample_ddim(den.with_cond(source), latent, sub, progress=progress)
    tgt = den.with_cond(target)
    if guidance_scale != 1.0:
        if null_cond is None:
            raise ValueError("guidance_scale != 1 needs null_cond, the 'no label' token "
                             "(10 for the digits UNet)")
        tgt = classifier_free(tgt, null_cond=null_cond, scale=guidance_scale)
    edit = sample_ddim(tgt, latent, sub, progress=progress)
    return InversionEdit(latent, recon, edit, sub[0][0], len(sub))
