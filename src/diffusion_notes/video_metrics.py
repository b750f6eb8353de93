"""Temporal consistency of moving-digit clips: does the digit stay the same, does it move right?

* **Tracking.** The digit of a frame is located by the centre of mass of its ink (pixel
  brightness mapped from [-1, 1] to [0, 1]); the 8x8 window around it, placed with the mean
  centre of mass of a real digit inside its 8x8 patch, is the *crop* the held-out digit
  classifier (:func:`diffusion_notes.metrics.get_digit_classifier`, trained on 8x8 digits) reads.
* **Class consistency**: the share of frames whose crop gets the clip's reference class (the
  most frequent class of the clip, or a given class such as that of a given first frame).
* **Motion error**: the data's motion model is a constant speed per axis with bounces
  (:mod:`diffusion_notes.data.clips`). A clip's frame-to-frame centre-of-mass displacements
  ``dm_k`` are compared with those of the best trajectory of that model,
  ``dp_k = p_{k+1} - p_k`` with ``p_k = reflect(u_0 + s k)``, fitted per axis over the start
  phase ``u_0`` and the speed ``s`` (in the data's speed range, so a digit standing still is an
  error, not a perfect fit). The error is ``sqrt(mean_k |dm_k - dp_k|^2)`` in pixels per frame
  and per axis. The digit's own centre of mass inside its patch cancels in the differences.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

from diffusion_notes.data.clips import CANVAS, DIGIT, SPEEDS, reflect
from diffusion_notes.models.classifier import DigitClassifier


@dataclass(frozen=True)
class ClipScore:
    """Consistency measures of a set of clips (see the module docstring)."""

    class_consistency: float  # share of frames with the reference class, in [0, 1]
    motion_error: float  # mean over clips of the RMS displacement error, px per frame
    n_clips: int
    frames: int


def ink(frames: torch.Tensor) -> torch.Tensor:
    """Brightness in [0, 1] of images in [-1, 1] (background 0)."""
    return ((frames.to(torch.float64) + 1.0) / 2.0).clamp(0.0, 1.0)


def centre_of_mass(frames: torch.Tensor) -> torch.Tensor:
    """(..., 1, H, W) images -> (..., 2) ink centre of mass (row, col) in pixels (float64).
    An empty frame gets the canvas centre."""
    w = ink(frames)[..., 0, :, :]
    h, wd = w.shape[-2:]
    total = w.sum((-2, -1))
    rows = torch.arange(h, dtype=torch.float64)
    cols = torch.arange(wd, dtype=torch.float64)
    r = (w.sum(-1) * rows).sum(-1)
    c = (w.sum(-2) * cols).sum(-1)
    safe = total.clamp_min(1e-12)
    centre = torch.stack([r / safe, c / safe], dim=-1)
    empty = (total <= 1e-12)[..., None]
    return torch.where(empty, torch.tensor([(h - 1) / 2, (wd - 1) / 2], dtype=torch.float64), centre)


@lru_cache(maxsize=1)
def digit_offset() -> tuple[float, float]:
    """Mean (row, col) centre of mass of a training digit inside its 8x8 patch."""
    from diffusion_notes.data.digits import digits_split

    com = centre_of_mass(digits_split()[0].images).mean(0)
    return float(com[0]), float(com[1])


def crops(frames: torch.Tensor) -> torch.Tensor:
    """(N, F, 1, H, W) frames -> (N, F, 1, 8, 8): the window the tracked digit is read from."""
    n, f, _, h, w = frames.shape
    corner = (centre_of_mass(frames) - torch.tensor(digit_offset(), dtype=torch.float64)).round()
    corner = torch.stack([corner[..., 0].clamp(0, h - DIGIT), corner[..., 1].clamp(0, w - DIGIT)],
                         dim=-1).long()
    ar = torch.arange(DIGIT)
    rows = corner[..., 0, None] + ar
    cols = corner[..., 1, None] + ar
    ni = torch.arange(n)[:, None, None, None]
    fi = torch.arange(f)[None, :, None, None]
    return frames[ni, fi, 0, rows[..., :, None], cols[..., None, :]][:, :, None]


@torch.no_grad()
def frame_classes(classifier: DigitClassifier, frames: torch.Tensor) -> torch.Tensor:
    """(N, F) class of the tracked digit in every frame."""
    c = crops(frames)
    dev = next(classifier.parameters()).device
    logits = classifier(c.flatten(0, 1).to(dev, torch.float32))
    return logits.argmax(1).cpu().reshape(c.shape[:2])


def class_consistency(
    classes: torch.Tensor, reference: torch.Tensor | None = None, *, skip: int = 0
) -> float:
    """Share of frames ``skip ..`` whose class is the clip's reference (default: its mode)."""
    ref = classes.mode(dim=1).values if reference is None else reference
    return float((classes[:, skip:] == ref[:, None]).double().mean())


def motion_errors(
    com: torch.Tensor,
    *,
    span: int = CANVAS - DIGIT,
    speeds: tuple[float, float] = (min(SPEEDS), max(SPEEDS)),
    phase_step: float = 0.25,
    n_speeds: int = 9,
) -> torch.Tensor:
    """(N, F, 2) centres of mass -> (N,) RMS displacement error against the best-fitting
    constant-speed bouncing trajectory (px per frame, per axis)."""
    n, f, _ = com.shape
    if f < 2:
        raise ValueError(f"motion needs clips of >= 2 frames, got {f}")
    dm = (com[:, 1:] - com[:, :-1]).to(torch.float64)  # (N, F-1, 2)
    u0 = torch.arange(0.0, 2 * span, phase_step, dtype=torch.float64)
    s = torch.linspace(speeds[0], speeds[1], n_speeds, dtype=torch.float64)
    k = torch.arange(f, dtype=torch.float64)
    p = reflect(u0[:, None, None] + s[None, :, None] * k, span)  # (U, S, F)
    dp = (p[..., 1:] - p[..., :-1]).reshape(-1, f - 1)  # (U*S, F-1) candidate displacements
    sq = ((dm[:, None, :, :] - dp[None, :, :, None]) ** 2).sum(2)  # (N, U*S, 2)
    best = sq.min(1).values.sum(-1)  # best fit per axis, summed over the two axes
    return (best / (2 * (f - 1))).sqrt()


def score_clips(
    classifier: DigitClassifier,
    frames: torch.Tensor,
    *,
    reference: torch.Tensor | None = None,
    skip: int = 0,
) -> ClipScore:
    """Class consistency and motion error of (N, F, 1, H, W) clips."""
    classes = frame_classes(classifier, frames)
    err = motion_errors(centre_of_mass(frames.cpu()))
    return ClipScore(class_consistency(classes, reference, skip=skip), float(err.mean()),
                     frames.shape[0], frames.shape[1])
