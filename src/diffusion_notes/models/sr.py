"""Super-resolution 4x4 -> 8x8 by a conditional diffusion model (the SR3 / Palette recipe).

SR3 (Saharia et al., "Image super-resolution via iterative refinement") and Palette
[@saharia2022palette] condition a diffusion model on the low-resolution image by upsampling it
to the target size and concatenating it to ``x_t`` as extra input channels; the network is
otherwise an ordinary image denoiser, trained with the usual noise-prediction loss on pairs
(low-res, high-res). Here at the smallest size that still means something:

* the high-resolution image is an 8x8 digit in [-1, 1]; the low-resolution one is its 2x2
  average pooling, 4x4 (:func:`downsample`), upsampled back to 8x8 by pixel repetition
  (:func:`upsample_nearest`) before it is concatenated (``downsample(upsample_nearest(low))``
  is ``low`` exactly);
* :class:`SRUNet` is the package's :class:`~diffusion_notes.models.unet.UNet` with two input
  channels (``x_t`` and the upsampled low-res image) and one output channel, composed rather
  than changed, so the existing UNet and its presets are untouched;
* :func:`get_sr_model` trains it once on ``digits_train`` and keeps it in the model cache
  (the checkpoint format of :mod:`diffusion_notes.checkpoints`, as the autoencoder does).

A ``Denoiser(net, schedule, cond=low)`` then calls ``net(x_t, t, low)``: every sampler runs it.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from diffusion_notes.cache_store import cache_root, config_hash, load_or_build
from diffusion_notes.checkpoints import load_checkpoint, save_checkpoint
from diffusion_notes.diffusion import training_loss
from diffusion_notes.models.unet import UNet
from diffusion_notes.schedules import Schedule, make_schedule
from diffusion_notes.train import ema_decay_at, lr_at

_KIND = "sr-unet"


def downsample(x: torch.Tensor) -> torch.Tensor:
    """The low-resolution image: 2x2 average pooling, (B, 1, 8, 8) -> (B, 1, 4, 4)."""
    if x.ndim != 4 or x.shape[-1] % 2 or x.shape[-2] % 2:
        raise ValueError(f"need images (B, C, H, W) with even H and W, got {tuple(x.shape)}")
    return F.avg_pool2d(x, 2)


def upsample_nearest(low: torch.Tensor) -> torch.Tensor:
    """Each low-res pixel repeated 2x2 (the conditioning channel; a right inverse of
    :func:`downsample`)."""
    return low.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)


def upsample_bicubic(low: torch.Tensor) -> torch.Tensor:
    """Bicubic 2x upsampling, the classical baseline (clamped to the data range [-1, 1])."""
    return F.interpolate(low, scale_factor=2, mode="bicubic", align_corners=False).clamp(-1, 1)


class SRUNet(nn.Module):
    """``net(x_t, t, low)``: the UNet on ``cat([x_t, upsample_nearest(low)])``, one output channel.

    ``low`` is (B, 1, 4, 4) (or already (B, 1, 8, 8): then it is used as it is).
    """

    def __init__(self, width: int = 16, depth: int = 1) -> None:
        super().__init__()
        self.unet = UNet(in_channels=2, base_channels=width, num_res_blocks=depth)
        c = self.unet.out.in_channels
        self.unet.out = nn.Conv2d(c, 1, 3, padding=1)  # predict eps for x_t only
        nn.init.zeros_(self.unet.out.weight)
        nn.init.zeros_(self.unet.out.bias)

    def forward(self, xt: torch.Tensor, t: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        cond = low if low.shape[-1] == xt.shape[-1] else upsample_nearest(low)
        if cond.shape != xt.shape:
            raise ValueError(
                f"low-res image {tuple(low.shape)} does not fit x_t {tuple(xt.shape)}: "
                "expected (B, 1, H/2, W/2)"
            )
        return self.unet(torch.cat([xt, cond.to(xt.dtype)], dim=1), t)


@dataclass(frozen=True)
class SRConfig:
    """Everything that determines a trained super-resolution model (and so its cache key)."""

    steps: int = 800
    batch_size: int = 128
    lr: float = 2e-3
    warmup_steps: int = 100
    ema_decay: float = 0.995
    width: int = 16
    depth: int = 1
    schedule: str = "linear"
    timesteps: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "width", "depth", "timesteps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0 or not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"need lr > 0 and ema_decay in [0, 1), got {self.lr}, "
                             f"{self.ema_decay}")


@dataclass(frozen=True)
class SRInfo:
    """Where a cached SR model lives and what it measured when trained."""

    path: Path
    from_cache: bool
    seconds: float  # training wall time (measured when it was trained)
    losses: tuple[float, ...]  # per-step noise-prediction MSE
    cpu_seconds: float = float("nan")  # CPU time of the training process (nan: not recorded)


def sr_schedule(config: SRConfig) -> Schedule:
    """The model's noise schedule (float64, CPU)."""
    return make_schedule(config.schedule, config.timesteps)


def train_sr(
    config: SRConfig, data: torch.Tensor, *, progress: bool = True
) -> tuple[SRUNet, tuple[float, ...]]:
    """Fit :class:`SRUNet` on 8x8 images ``data`` (B, 1, 8, 8) in [-1, 1]: the noise-prediction
    loss (Ho et al. 2020, eq. 14) with the low-res image of each batch element as condition;
    AdamW with a linear warm-up; returns the EMA network (eval mode, CPU) and the losses.
    Deterministic for a config on CPU (own generator; the global RNG is restored)."""
    g = torch.Generator().manual_seed(config.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        net = SRUNet(config.width, config.depth)
        ema = SRUNet(config.width, config.depth)
    ema.load_state_dict(net.state_dict())
    ema.requires_grad_(False)
    schedule = sr_schedule(config)
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr)
    low_all = downsample(data)
    losses: list[float] = []
    net.train()
    for step in tqdm(range(config.steps), desc="train SR model", disable=not progress,
                     leave=False):
        idx = torch.randint(0, len(data), (config.batch_size,), generator=g)
        t = torch.randint(0, schedule.T, (config.batch_size,), generator=g)
        eps = torch.randn(data[idx].shape, generator=g)
        low = low_all[idx]
        loss = training_loss(lambda x, tt, _low=low: net(x, tt, _low), data[idx], schedule,
                             t=t, eps=eps)
        for group in opt.param_groups:
            group["lr"] = lr_at(config, step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        decay = ema_decay_at(config, step)
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), net.parameters(), strict=True):
                pe.lerp_(p, 1.0 - decay)
        losses.append(float(loss.detach()))
    return ema.eval(), tuple(losses)


def sr_path(config: SRConfig, root: str | os.PathLike[str] | None = None) -> Path:
    """The cache file that holds (or will hold) the SR model trained with ``config``."""
    root = Path(root) if root is not None else cache_root()
    return root / "models" / f"sr-{config_hash(config)}.pt"


def get_sr_model(
    config: SRConfig | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> tuple[SRUNet, SRInfo]:
    """The SR model trained on ``digits_train`` with ``config``, from the model cache (trained
    once, on CPU, when missing or unreadable); eval mode, on CPU."""
    from diffusion_notes.data.digits import digits_split

    config = config or SRConfig()
    path = sr_path(config, root)

    def load(p: Path) -> tuple[SRUNet, dict]:
        ckpt = load_checkpoint(p, kind=_KIND)
        net = SRUNet(config.width, config.depth)
        net.load_state_dict(ckpt["model"])
        return net, ckpt

    def build(folder: Path) -> Path:
        start, cpu_start = time.perf_counter(), time.process_time()
        with torch.enable_grad():
            net, losses = train_sr(config, digits_split()[0].images, progress=progress)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        return save_checkpoint(_KIND, {"config": asdict(config), "model": net.state_dict(),
                                       "seconds": seconds, "cpu_seconds": cpu,
                                       "losses": list(losses)}, folder / path.name)

    (net, ckpt), from_cache = load_or_build(path, load, build)
    return net.eval(), SRInfo(path, from_cache, float(ckpt["seconds"]), tuple(ckpt["losses"]),
                              float(ckpt.get("cpu_seconds", float("nan"))))
