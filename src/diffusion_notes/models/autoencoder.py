"""A small VAE for the 8x8 digits: the latent space of the latent-diffusion lab.

Latent diffusion [@rombach2022high] trains the diffusion model on ``z = E(x)`` of a frozen,
pretrained autoencoder instead of on pixels and decodes its samples with ``D``. Here the
encoder maps a (1, 8, 8) digit to a (``latent_channels``, 4, 4) latent (32 numbers for 64 pixels
with the default 2 channels) and the decoder maps it back.

The autoencoder is a VAE with a small KL weight, Rombach et al.'s "KL-reg" variant: the
posterior ``q(z | x) = N(mu(x), diag(exp(logvar(x))))`` is pulled weakly towards ``N(0, I)``,
which keeps the latent's scale bounded without forcing it to be a good prior. Its scale still
drifts, so the latent the diffusion model sees is ``scale * mu(x)`` with ``scale`` one over the
standard deviation of the training latents (their sec. 4.3.2 and appendix G), so that the
latent has unit variance, as the noise schedule expects of its data.

Training runs once per :class:`AutoencoderConfig` and is cached in the model cache like every
trained model (``<cache>/models/autoencoder-<hash>.pt``).
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

_KIND = "autoencoder"


@dataclass(frozen=True)
class AutoencoderConfig:
    """Everything that determines a trained autoencoder (and so its cache key)."""

    latent_channels: int = 2
    width: int = 32
    kl_weight: float = 1e-4  # weight of KL(q(z|x) || N(0, I)) per latent element
    steps: int = 2000
    batch_size: int = 128
    lr: float = 2e-3
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("latent_channels", "width", "steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.kl_weight < 0 or self.lr <= 0:
            raise ValueError(f"need kl_weight >= 0 and lr > 0, got {self.kl_weight}, {self.lr}")


@dataclass(frozen=True)
class AutoencoderInfo:
    """Where a cached autoencoder lives and what it measured when trained."""

    path: Path
    from_cache: bool
    seconds: float  # training time (measured when it was trained)
    scale: float  # the latent scaling factor, 1 / std of the training latents
    losses: tuple[float, ...]  # per-step reconstruction MSE (pixels in [-1, 1])


class DigitsVAE(nn.Module):
    """conv encoder 8x8 -> 4x4 (mean and log-variance), conv decoder 4x4 -> 8x8.

    ``scale`` (a buffer, 1 until :func:`get_autoencoder` sets it) maps posterior means to the
    unit-variance latent: :meth:`encode` returns ``scale * mu(x)``, :meth:`decode` divides it
    back out. :meth:`forward` is the VAE's training pass on unscaled latents.
    """

    def __init__(self, latent_channels: int = 2, width: int = 32) -> None:
        super().__init__()
        self.latent_channels = latent_channels
        self.enc = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.SiLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.SiLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.SiLU(),  # 8x8 -> 4x4
            nn.Conv2d(2 * width, 2 * latent_channels, 1),  # mean and log-variance
        )
        self.dec = nn.Sequential(
            nn.Conv2d(latent_channels, 2 * width, 3, padding=1), nn.SiLU(),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.SiLU(),
            nn.Upsample(scale_factor=2, mode="nearest"),  # 4x4 -> 8x8
            nn.Conv2d(2 * width, width, 3, padding=1), nn.SiLU(),
            nn.Conv2d(width, 1, 3, padding=1),
        )
        self.register_buffer("scale", torch.ones(()))

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)`` of ``q(z | x)``, each (B, latent_channels, 4, 4), unscaled."""
        if x.ndim != 4 or x.shape[1:] != (1, 8, 8):
            raise ValueError(f"expected digits of shape (B, 1, 8, 8), got {tuple(x.shape)}")
        mu, logvar = self.enc(x).chunk(2, dim=1)
        return mu, logvar.clamp(-20.0, 10.0)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The diffusion model's latent of ``x``: ``scale * mu(x)``."""
        return self.scale * self.posterior(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Digits (B, 1, 8, 8) from latents in the diffusion model's (scaled) units."""
        if z.ndim != 4 or z.shape[1:] != (self.latent_channels, 4, 4):
            raise ValueError(
                f"expected latents of shape (B, {self.latent_channels}, 4, 4), got {tuple(z.shape)}"
            )
        return self.dec(z / self.scale)

    def forward(
        self, x: torch.Tensor, noise: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One VAE pass with the reparametrisation ``z = mu + exp(logvar / 2) noise``; returns the
        reconstruction and the KL to ``N(0, I)`` per latent element (batch mean)."""
        mu, logvar = self.posterior(x)
        z = mu + (0.5 * logvar).exp() * noise
        # KL(N(mu, e^lv) || N(0, 1)) = (mu^2 + e^lv - 1 - lv) / 2 per element
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).mean()
        return self.dec(z), kl


def train_autoencoder(
    config: AutoencoderConfig, data: torch.Tensor, *, progress: bool = True
) -> tuple[DigitsVAE, tuple[float, ...]]:
    """Fit the VAE to ``data`` (B, 1, 8, 8) in [-1, 1]: AdamW on MSE + ``kl_weight`` KL; then set
    ``scale`` to one over the standard deviation of the posterior means of ``data``.

    Deterministic for a config on CPU (own generator; the global RNG is restored)."""
    g = torch.Generator().manual_seed(config.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        vae = DigitsVAE(config.latent_channels, config.width)
    opt = torch.optim.AdamW(vae.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.steps)
    latent_shape = (config.latent_channels, 4, 4)
    losses: list[float] = []
    vae.train()
    for _ in tqdm(range(config.steps), desc="train autoencoder", disable=not progress,
                  leave=False):
        idx = torch.randint(0, len(data), (config.batch_size,), generator=g)
        noise = torch.randn((config.batch_size, *latent_shape), generator=g)
        recon, kl = vae(data[idx], noise)
        mse = F.mse_loss(recon, data[idx])
        loss = mse + config.kl_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(mse.detach()))
    vae.eval()
    with torch.no_grad():
        vae.scale.fill_(1.0 / float(vae.posterior(data)[0].std()))
    return vae, tuple(losses)


def autoencoder_path(
    config: AutoencoderConfig, root: str | os.PathLike[str] | None = None
) -> Path:
    """The cache file that holds (or will hold) the autoencoder trained with ``config``."""
    root = Path(root) if root is not None else cache_root()
    return root / "models" / f"autoencoder-{config_hash(config)}.pt"


def get_autoencoder(
    config: AutoencoderConfig | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> tuple[DigitsVAE, AutoencoderInfo]:
    """The autoencoder trained on ``digits_train`` with ``config``, from the model cache (trained
    once, on CPU, when missing or unreadable); eval mode, on CPU."""
    from diffusion_notes.data.digits import digits_split

    config = config or AutoencoderConfig()
    path = autoencoder_path(config, root)

    def load(p: Path) -> tuple[DigitsVAE, dict]:
        ckpt = load_checkpoint(p, kind=_KIND)
        vae = DigitsVAE(config.latent_channels, config.width)
        vae.load_state_dict(ckpt["model"])
        return vae, ckpt

    def build(folder: Path) -> Path:
        start = time.perf_counter()
        vae, losses = train_autoencoder(config, digits_split()[0].images, progress=progress)
        return save_checkpoint(_KIND, {"config": asdict(config), "model": vae.state_dict(),
                                       "seconds": time.perf_counter() - start,
                                       "losses": list(losses)}, folder / path.name)

    (vae, ckpt), from_cache = load_or_build(path, load, build)
    return vae.eval(), AutoencoderInfo(path, from_cache, float(ckpt["seconds"]),
                                       float(vae.scale), tuple(ckpt["losses"]))
