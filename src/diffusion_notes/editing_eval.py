"""Measurements for the editing lab and bench: digit masks, inpainting scores, edit scores.

The editing code itself is :mod:`diffusion_notes.editing`; this module measures it on the
8x8 digits with the held-out digit classifier and the stroke properties of
:mod:`diffusion_notes.data.strokes`, so that the lab and ``bench/map_edit.py`` report the
same numbers from the same code.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import torch

from diffusion_notes.data.strokes import measure
from diffusion_notes.denoiser import Denoiser
from diffusion_notes.editing import inpaint, invert_and_edit, n_evaluations
from diffusion_notes.metrics import class_accuracy, digit_features, features_fd
from diffusion_notes.models.classifier import DigitClassifier

MaskName = Literal["bottom_half", "left_half", "centre_square"]
MASK_NAMES: tuple[str, ...] = get_args(MaskName)
PROPERTIES: tuple[str, ...] = ("thickness", "slant", "size")


def digit_mask(name: MaskName, size: int = 8) -> torch.Tensor:
    """A ``(1, 1, size, size)`` mask, 1 = known, 0 = hidden: the bottom half, the left half or
    the centre square (side ``size // 2``) hidden."""
    m = torch.ones(1, 1, size, size)
    h, q = size // 2, size // 4
    if name == "bottom_half":
        m[..., h:, :] = 0.0
    elif name == "left_half":
        m[..., :, :h] = 0.0
    elif name == "centre_square":
        m[..., q:q + h, q:q + h] = 0.0
    else:
        raise ValueError(f"unknown mask {name!r}; allowed: {', '.join(MASK_NAMES)}")
    return m


def boundary_gap(images: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean ``|x_i - x_j|`` over neighbouring pixel pairs (4-neighbours) with ``i`` known and
    ``j`` hidden: the jump across the mask's edge. A fill that does not continue the strokes
    shows a gap unlike that of real digits under the same mask."""
    known = mask.bool().expand_as(images)
    gaps = []
    for dim in (-1, -2):  # horizontal and vertical neighbours
        a = images.narrow(dim, 0, images.shape[dim] - 1)
        b = images.narrow(dim, 1, images.shape[dim] - 1)
        ka = known.narrow(dim, 0, images.shape[dim] - 1)
        kb = known.narrow(dim, 1, images.shape[dim] - 1)
        cross = ka != kb
        gaps.append((a - b).abs()[cross])
    return float(torch.cat(gaps).double().mean())


@dataclass(frozen=True)
class InpaintScore:
    """One method on one mask: ``known_change`` is the largest change of a known pixel (0 means
    bit for bit), ``accuracy`` the share the classifier reads as the original label,
    ``boundary_gap`` against the originals' ``boundary_gap_real``, ``fd`` the digits FD between
    inpainted and original digits, and the wall time."""

    method: str
    mask: str
    resample: int
    jump: int
    evaluations: int
    known_change: float
    accuracy: float
    boundary_gap: float
    boundary_gap_real: float
    fd: float
    seconds: float


def method_name(resample: int, jump: int = 1) -> str:
    if resample == 1:
        return "replacement"
    return f"RePaint U={resample}" + (f", j={jump}" if jump > 1 else "")


def score_inpainting(
    den: Denoiser,
    classifier: DigitClassifier,
    images: torch.Tensor,
    labels: torch.Tensor,
    mask_name: MaskName,
    pairs: Sequence[tuple[int, int]],
    *,
    resample: int = 1,
    jump: int = 1,
    seed: int = 0,
) -> tuple[InpaintScore, torch.Tensor]:
    """Inpaint ``images`` under one mask and score the result (and return it)."""
    device = next(classifier.parameters()).device
    x0 = images.to(device)
    mask = digit_mask(mask_name, images.shape[-1]).to(device)
    g = torch.Generator(device="cpu").manual_seed(seed)
    noise = torch.randn(x0.shape, generator=g).to(device)
    start = time.perf_counter()
    out = inpaint(den, x0, mask, noise, pairs, resample=resample, jump=jump, generator=g,
                  progress=False)
    seconds = time.perf_counter() - start
    known = mask.bool().expand_as(x0)
    score = InpaintScore(
        method=method_name(resample, jump), mask=mask_name, resample=resample, jump=jump,
        evaluations=n_evaluations(len(pairs), resample, jump),
        known_change=float((out[known] - x0[known]).abs().max()),
        accuracy=class_accuracy(out, labels, classifier),
        boundary_gap=boundary_gap(out.clamp(-1, 1), mask),
        boundary_gap_real=boundary_gap(x0, mask),
        fd=features_fd(digit_features(classifier, out.clamp(-1, 1)),
                       digit_features(classifier, x0)),
        seconds=seconds,
    )
    return score, out.cpu()


def style_gap(a: torch.Tensor, b: torch.Tensor) -> dict[str, float]:
    """Mean ``|property(a_i) - property(b_i)|`` per stroke property, pairing ``a_i`` with ``b_i``."""
    pa, pb = measure(a.clamp(-1, 1).cpu()), measure(b.clamp(-1, 1).cpu())
    return {p: float((getattr(pa, p) - getattr(pb, p)).abs().mean()) for p in PROPERTIES}


@dataclass(frozen=True)
class EditScore:
    """The inversion edit at one level: ``class_change`` = share of edits read as the target,
    ``recon_rms`` the per-image RMS error of the same-label round trip (pixels in [-1, 1]),
    ``recon_accuracy`` the share of reconstructions still read as the source, ``style`` the
    mean stroke-property gaps edit vs original, ``baseline`` the same gaps for unrelated
    target-class digits paired with the originals."""

    t_edit: int
    n_steps: int
    guidance_scale: float
    class_change: float
    recon_rms: float
    recon_accuracy: float
    style: dict[str, float]
    baseline: dict[str, float]

    def ratio(self, prop: str) -> float:
        """Style gap of the edit over the baseline's (1 = no better than an unrelated digit)."""
        return self.style[prop] / self.baseline[prop]


def score_edit(
    den: Denoiser,
    classifier: DigitClassifier,
    originals: torch.Tensor,
    source: int,
    target: int,
    pairs: Sequence[tuple[int, int]],
    baseline_digits: torch.Tensor,
    *,
    t_edit: int | None = None,
    guidance_scale: float = 1.0,
    null_cond: int | None = None,
) -> tuple[EditScore, object]:
    """Invert ``originals`` (all of class ``source``), edit them to ``target``, and score."""
    device = next(classifier.parameters()).device
    x0 = originals.to(device)
    n = len(x0)
    r = invert_and_edit(den, x0, source, target, pairs, t_edit=t_edit,
                        guidance_scale=guidance_scale, null_cond=null_cond)
    src = torch.full((n,), source, dtype=torch.long)
    tgt = torch.full((n,), target, dtype=torch.long)
    rms = (r.reconstruction - x0).pow(2).flatten(1).mean(1).sqrt().mean()
    base = baseline_digits[torch.arange(n) % len(baseline_digits)]
    score = EditScore(
        t_edit=r.t_edit, n_steps=r.n_steps, guidance_scale=guidance_scale,
        class_change=class_accuracy(r.edit, tgt, classifier),
        recon_rms=float(rms),
        recon_accuracy=class_accuracy(r.reconstruction, src, classifier),
        style=style_gap(r.edit, x0), baseline=style_gap(base, x0),
    )
    return score, r
