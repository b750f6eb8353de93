"""Measurements for the image-to-image lab and bench: SDEdit guides and its strength sweep,
super-resolution samples and their comparison with bicubic and nearest upsampling.

* **Guides** (:func:`flip_pixels`, :func:`blocky_sketch`): a held-out digit with a share of its
  pixels turned from ink to paper and back, and a coarse binary sketch of 2x2 blocks.
* **Sweep** (:func:`sdedit_sweep`): per strength, *faithfulness* is the mean squared distance of
  the output to its guide (per pixel, pixels in [-1, 1]); *realism* is the held-out digit
  classifier's mean confidence (largest softmax probability) and the digits FD of the batch
  against the held-out digits (:func:`diffusion_notes.metrics.score_digits_held_out`).
* **Super-resolution** (:func:`sample_sr`, :func:`sr_rows`): per method, the per-pixel MSE and
  PSNR against the true 8x8 digit, the consistency error ``MSE(downsample(out), low)``, the
  classifier's accuracy on the outputs (true labels) and the digits FD.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from diffusion_notes.denoiser import Denoiser
from diffusion_notes.guidance import classifier_free
from diffusion_notes.img2img import sdedit
from diffusion_notes.metrics import class_accuracy, score_digits_held_out
from diffusion_notes.models.classifier import DigitClassifier
from diffusion_notes.models.sr import downsample, upsample_bicubic, upsample_nearest
from diffusion_notes.samplers import sample_ddim
from diffusion_notes.schedules import Schedule
from diffusion_notes.timesteps import timestep_pairs


def flip_pixels(x: torch.Tensor, fraction: float, generator: torch.Generator) -> torch.Tensor:
    """``x`` with a random ``fraction`` of its pixels negated (ink <-> paper in [-1, 1])."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
    mask = torch.rand(x.shape, generator=generator) < fraction
    return torch.where(mask.to(x.device), -x, x)


def blocky_sketch(x: torch.Tensor) -> torch.Tensor:
    """A coarse binary sketch: 2x2 block means, thresholded to ink (1) or paper (-1)."""
    low = upsample_nearest(downsample(x))
    return torch.where(low > 0, 1.0, -1.0).to(x.dtype)


Guide = tuple[torch.Tensor, Denoiser, torch.Tensor | None]  # (guides, denoiser, target labels)


def digits_guides(
    base: Denoiser,
    clean: torch.Tensor,
    labels: torch.Tensor,
    *,
    null: int,
    flip_fraction: float = 0.2,
    cfg_scale: float = 2.0,
    seed: int = 1,
) -> dict[str, Guide]:
    """The lab's three SDEdit tasks on clean digits ``clean`` with classes ``labels``:
    ``flipped`` (:func:`flip_pixels`) and ``sketch`` (:func:`blocky_sketch`) with the model's
    unconditional branch (label ``null``), and ``relabel``: the clean digit with the model
    conditioned on the next class, ``(y + 1) mod 10``, under classifier-free guidance at
    ``cfg_scale`` [@ho2022classifier]."""
    n, device = len(clean), clean.device
    uncond = base.with_cond(torch.full((n,), null, device=device))
    targets = (labels.cpu() + 1) % 10
    relabel = classifier_free(base.with_cond(targets.to(device)), null_cond=null,
                              scale=cfg_scale)
    g = torch.Generator().manual_seed(seed)
    return {
        "flipped": (flip_pixels(clean, flip_fraction, g), uncond, None),
        "sketch": (blocky_sketch(clean), uncond, None),
        "relabel": (clean, relabel, targets),
    }


@torch.no_grad()
def confidence(images: torch.Tensor, classifier: DigitClassifier) -> torch.Tensor:
    """Per image, the classifier's largest softmax probability (a per-sample realism score)."""
    device = next(classifier.parameters()).device
    return classifier(images.clamp(-1, 1).to(device, torch.float32)).softmax(1).amax(1).cpu()


@dataclass(frozen=True)
class StrengthPoint:
    """SDEdit at one strength, averaged over a batch of guides."""

    strength: float
    mse_to_guide: float  # faithfulness (lower = more faithful)
    confidence: float  # realism: mean largest softmax probability of the held-out classifier
    fd: float  # realism: digits FD of the batch against the held-out digits (lower = better)
    fd_floor: float  # the FD of as many real training digits (the best a sampler can do)
    target_accuracy: float  # share classified as the target labels (nan without labels)


def sdedit_sweep(
    den: Denoiser,
    guides: torch.Tensor,
    strengths: Sequence[float],
    classifier: DigitClassifier,
    *,
    n_steps: int = 50,
    targets: torch.Tensor | None = None,
    seed: int = 0,
    progress: bool = True,
) -> tuple[list[StrengthPoint], dict[float, torch.Tensor]]:
    """SDEdit of the same guides at every strength (DDIM, eta = 0, ``n_steps`` trailing pairs
    on the full range, cut by :func:`diffusion_notes.img2img.sdedit_pairs`), each from the same
    seeded start noise. ``targets``: labels the outputs should be classified as (the class a
    conditional denoiser was given). Returns the points and the outputs (CPU) per strength."""
    pairs = timestep_pairs(den.schedule.T, n_steps, "trailing")
    points, outputs = [], {}
    for s in strengths:
        g = torch.Generator(device="cpu").manual_seed(seed)
        out = sdedit(den, guides, s, pairs, generator=g, progress=progress).cpu()
        outputs[float(s)] = out
        score = score_digits_held_out(out, classifier)
        acc = math.nan if targets is None else class_accuracy(out, targets, classifier)
        points.append(StrengthPoint(
            strength=float(s),
            mse_to_guide=float((out - guides.cpu()).pow(2).mean()),
            confidence=float(confidence(out, classifier).mean()),
            fd=score.fd, fd_floor=score.floor, target_accuracy=acc,
        ))
    return points, outputs


@torch.no_grad()
def sample_sr(
    net: torch.nn.Module,
    schedule: Schedule,
    low: torch.Tensor,
    *,
    n_steps: int = 50,
    eta: float = 1.0,
    seed: int = 0,
    progress: bool = True,
) -> torch.Tensor:
    """8x8 samples given 4x4 low-res images (B, 1, 4, 4): DDIM with ``eta`` (1: DDPM's
    variance) on ``n_steps`` trailing pairs from pure noise, the low-res image as condition."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    x = torch.randn((low.shape[0], 1, 2 * low.shape[-2], 2 * low.shape[-1]), generator=g)
    den = Denoiser(net, schedule, cond=low)
    pairs = timestep_pairs(schedule.T, n_steps, "trailing")
    return sample_ddim(den, x.to(low.device), pairs, eta=eta, generator=g, progress=progress)


def sr_methods(
    net: torch.nn.Module,
    schedule: Schedule,
    truth: torch.Tensor,
    *,
    n_samples: int = 8,
    n_steps: int = 50,
    progress: bool = True,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Upsamplings of ``downsample(truth)``: nearest, bicubic, one SR sample and the mean of
    ``n_samples`` SR samples (seeds 0 .. n - 1; an estimate of the posterior mean). Returns
    the methods' outputs and all samples (n_samples, B, 1, 8, 8)."""
    low = downsample(truth)
    samples = torch.stack([sample_sr(net, schedule, low, n_steps=n_steps, seed=k,
                                     progress=progress) for k in range(n_samples)])
    methods = {
        "nearest": upsample_nearest(low),
        "bicubic": upsample_bicubic(low),
        "SR sample": samples[0],
        f"SR mean of {n_samples}": samples.mean(0),
    }
    return methods, samples


@dataclass(frozen=True)
class SRRow:
    """One upsampling method measured on held-out digits."""

    method: str
    mse: float  # per pixel, against the true 8x8 digit (pixels in [-1, 1])
    psnr: float  # 10 log10(peak^2 / mse), peak-to-peak 2, from the mean MSE
    consistency: float  # MSE(downsample(output), low-res input), per low-res pixel
    accuracy: float  # held-out classifier accuracy on the outputs (true labels)
    fd: float  # digits FD against the held-out digits
    fd_floor: float


def psnr(mse: float, peak_to_peak: float = 2.0) -> float:
    """Peak signal-to-noise ratio in dB: ``10 log10(peak^2 / mse)``."""
    return math.inf if mse <= 0 else 10.0 * math.log10(peak_to_peak**2 / mse)


def sr_rows(
    outputs: dict[str, torch.Tensor],
    truth: torch.Tensor,
    labels: torch.Tensor,
    classifier: DigitClassifier,
) -> list[SRRow]:
    """Measure each method's 8x8 outputs against the truth (see :class:`SRRow`)."""
    low = downsample(truth)
    rows = []
    for name, out in outputs.items():
        out = out.cpu().clamp(-1, 1)
        mse = float((out - truth).pow(2).mean())
        score = score_digits_held_out(out, classifier)
        rows.append(SRRow(
            method=name, mse=mse, psnr=psnr(mse),
            consistency=float((downsample(out) - low).pow(2).mean()),
            accuracy=class_accuracy(out, labels, classifier),
            fd=score.fd, fd_floor=score.floor,
        ))
    return rows
