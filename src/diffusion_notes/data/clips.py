"""Moving digits: short clips of one 8x8 digit bouncing around a 16x16 canvas.

Each clip shows one digit of the ``digits_train`` split (:func:`diffusion_notes.data.digits.digits_split`)
on a black (-1) canvas. Along each axis the digit's top-left corner moves with a constant integer
speed and bounces off the walls: with ``L = canvas - 8`` free pixels, the corner travels around a
cycle of length ``2L`` (out along ``0 .. L``, back along ``L .. 0``) and its position is the
reflection of the unfolded coordinate ``u_k = u_0 + s k``,

    ``p_k = u_k mod 2L``  if that is ``<= L``, else ``2L - (u_k mod 2L)``,

so between bounces ``p_{k+1} - p_k = +-s`` and at a wall the sign flips (an overshoot of ``d``
pixels past the wall comes back as ``d`` pixels inside it). The start phase ``u_0`` is uniform on
``0 .. 2L-1``, which makes the distribution of one frame's position the same at every frame.

:func:`make_clips` returns the frames with their true trajectories; :func:`frames_dataset` is the
matching single-frame image set (frames of clips) that the image model is trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from diffusion_notes.data.digits import digits_split

DIGIT = 8  # side of a digit patch
CANVAS = 16
SPEEDS: tuple[int, ...] = (1, 2)  # pixels per frame, per axis
FRAMES = 8


@dataclass(frozen=True)
class Clips:
    """Clips and their ground truth. Positions are (row, col) of the digit's top-left pixel."""

    frames: torch.Tensor  # (N, F, 1, canvas, canvas), float32 in [-1, 1]
    positions: torch.Tensor  # (N, F, 2) int64, in 0 .. canvas - 8
    phase: torch.Tensor  # (N, 2) int64: unfolded start coordinate u_0 in 0 .. 2L - 1
    speed: torch.Tensor  # (N, 2) int64: |velocity| per axis, pixels per frame
    labels: torch.Tensor  # (N,) int64 digit class
    digit_index: torch.Tensor  # (N,) int64 row of the source digit set

    @property
    def velocities(self) -> torch.Tensor:
        """(N, F-1, 2) frame-to-frame displacement of the digit's corner."""
        return self.positions[:, 1:] - self.positions[:, :-1]


def reflect(u: torch.Tensor, span: int) -> torch.Tensor:
    """Fold the unfolded coordinate ``u`` into ``0 .. span`` (a bounce off walls at 0 and span)."""
    if span < 1:
        raise ValueError(f"span must be >= 1, got {span}")
    r = torch.remainder(u, 2 * span)
    return torch.where(r <= span, r, 2 * span - r)


def place(digits: torch.Tensor, positions: torch.Tensor, canvas: int = CANVAS) -> torch.Tensor:
    """Paste (N, 1, 8, 8) digits at (N, F, 2) corner positions: (N, F, 1, canvas, canvas)."""
    n, f, _ = positions.shape
    out = torch.full((n, f, 1, canvas, canvas), -1.0, dtype=digits.dtype)
    ar = torch.arange(DIGIT)
    rows = positions[..., 0, None] + ar  # (N, F, 8)
    cols = positions[..., 1, None] + ar
    ni = torch.arange(n)[:, None, None, None]
    fi = torch.arange(f)[None, :, None, None]
    out[ni, fi, 0, rows[..., :, None], cols[..., None, :]] = digits[:, None, 0]
    return out


def make_clips(
    n: int,
    frames: int = FRAMES,
    *,
    seed: int = 0,
    canvas: int = CANVAS,
    speeds: tuple[int, ...] = SPEEDS,
    split: str = "train",
) -> Clips:
    """``n`` clips of ``frames`` frames, deterministic given ``seed``.

    The digit, the start phase and the speed of each axis are drawn independently and
    uniformly; ``split`` is ``"train"`` (the 80 % the models learn from) or ``"held_out"``.
    """
    if n < 1 or frames < 1:
        raise ValueError(f"need n >= 1 clips of frames >= 1, got n={n}, frames={frames}")
    if canvas <= DIGIT:
        raise ValueError(f"canvas must be larger than the {DIGIT}x{DIGIT} digit, got {canvas}")
    if not speeds or any(s < 1 for s in speeds):
        raise ValueError(f"speeds must be positive integers, got {speeds}")
    if split not in ("train", "held_out"):
        raise ValueError(f"split {split!r}: choose 'train' or 'held_out'")
    source = digits_split()[0 if split == "train" else 1]
    span = canvas - DIGIT
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, len(source.labels), (n,), generator=g)
    phase = torch.randint(0, 2 * span, (n, 2), generator=g)
    speed = torch.tensor(speeds)[torch.randint(0, len(speeds), (n, 2), generator=g)]
    k = torch.arange(frames)[None, :, None]
    positions = reflect(phase[:, None, :] + speed[:, None, :] * k, span)  # (N, F, 2)
    return Clips(
        frames=place(source.images[idx], positions, canvas),
        positions=positions,
        phase=phase,
        speed=speed,
        labels=source.labels[idx],
        digit_index=idx,
    )


def frames_dataset(
    n_clips: int = 4000, frames: int = FRAMES, *, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every frame of ``make_clips(n_clips, frames, seed=seed)`` as an image set with labels:
    ``(N * F, 1, 16, 16)`` and ``(N * F,)``; what a frame-by-frame image model learns from."""
    c = make_clips(n_clips, frames, seed=seed)
    return c.frames.flatten(0, 1), c.labels.repeat_interleave(frames)
