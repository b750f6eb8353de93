"""Text-to-image in miniature: latent diffusion on the digits, conditioned on captions.

The recipe of latent diffusion [@rombach2022high] at toy scale:

* data: the 1438 training digits, encoded by the cached small VAE
  (:data:`diffusion_notes.data.latent.LATENT_AUTOENCODER`) into scaled 2x4x4 latents, each with
  the caption of :mod:`diffusion_notes.data.captions` made from its label and measured strokes;
* network: :class:`~diffusion_notes.models.text_unet.TextUNet`, a UNet reading the caption
  through cross-attention, its text encoder trained jointly with it, as GLIDE trains its text
  transformer [@nichol2021glide];
* training: the eps-prediction loss (Ho et al. 2020, eq. 14), AdamW with a linear warm-up,
  gradient clipping and an EMA of the weights, exactly the hyperparameter meaning of
  :class:`diffusion_notes.train.TrainConfig`; the caption is replaced by the empty caption
  with probability ``caption_dropout`` so that one network is also the unconditional model
  that classifier-free guidance needs [@ho2022classifier];
* sampling: :func:`generate` wraps the network in a
  :class:`~diffusion_notes.denoiser.Denoiser` with the caption tokens as ``cond``, guides it
  with :func:`diffusion_notes.guidance.classifier_free` (the empty caption as the null
  condition) and runs DDIM (:func:`diffusion_notes.samplers.ddim.sample_ddim`), then decodes.

The model is trained once per :class:`TextToImageConfig` (and autoencoder) and cached in the
model cache (``<cache>/models/text2image-<hash>.pt``) through
:func:`diffusion_notes.cache_store.load_or_build`.
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from diffusion_notes.cache_store import cache_root, config_hash, load_or_build
from diffusion_notes.checkpoints import load_checkpoint, save_checkpoint
from diffusion_notes.data.captions import (
    NULL_ID,
    PAD_ID,
    Terciles,
    caption_digits,
    fit_terciles,
    null_tokens,
    tokenize,
)
from diffusion_notes.denoiser import Denoiser
from diffusion_notes.diffusion import training_loss
from diffusion_notes.guidance import classifier_free
from diffusion_notes.models.text_unet import TextUNet
from diffusion_notes.samplers.ddim import sample_ddim
from diffusion_notes.schedules import Schedule, make_schedule
from diffusion_notes.timesteps import timestep_pairs
from diffusion_notes.train import ema_decay_at, lr_at

_KIND = "text2image"


@dataclass(frozen=True)
class TextToImageConfig:
    """Everything that determines the trained text-to-image model (and so its cache key).

    The defaults (width 16, 1500 steps of 128) trained in 100 s on the shared 2-core box
    (load average about 6, one torch thread), 0.073 CPU-s a step; width 32 measured 0.111."""

    steps: int = 1500
    batch_size: int = 128
    lr: float = 2e-3
    warmup_steps: int = 100
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    width: int = 16  # the UNet's base channels
    text_dim: int = 64
    text_layers: int = 1
    caption_dropout: float = 0.1  # probability of training on the empty caption (for CFG)
    schedule: str = "linear"
    timesteps: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "width", "text_dim", "text_layers", "timesteps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.caption_dropout < 1.0:
            raise ValueError(f"caption_dropout must be in [0, 1), got {self.caption_dropout}")
        if not 0.0 <= self.ema_decay < 1.0 or self.lr <= 0:
            raise ValueError(f"need 0 <= ema_decay < 1 and lr > 0, got {self.ema_decay}, {self.lr}")


@dataclass(frozen=True)
class TextToImageInfo:
    """Where the cached model lives and what it measured when trained."""

    path: Path
    from_cache: bool
    seconds: float  # training time, measured when it was trained
    losses: tuple[float, ...]  # per-step training loss
    terciles: Terciles  # the caption cuts of its training data


@dataclass(frozen=True)
class CaptionedLatents:
    """The training set: scaled latents (N, C, 4, 4), caption strings, their token ids."""

    latents: torch.Tensor
    captions: tuple[str, ...]
    tokens: torch.Tensor
    labels: torch.Tensor
    terciles: Terciles


def captioned_latents() -> CaptionedLatents:
    """The 1438 training digits as latents with their captions (terciles fit on them)."""
    from diffusion_notes.data.digits import digits_split
    from diffusion_notes.data.latent import encode_digits, latent_autoencoder

    train = digits_split()[0]
    terciles = fit_terciles(train.images)
    captions = caption_digits(train.images, train.labels, terciles)
    latents = encode_digits(latent_autoencoder(progress=False), train.images)
    return CaptionedLatents(latents, tuple(captions), tokenize(captions), train.labels, terciles)


def make_model(config: TextToImageConfig, in_channels: int = 2) -> TextUNet:
    """A fresh network for ``config`` (initialised from ``config.seed``)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return TextUNet(in_channels, config.width, text_dim=config.text_dim,
                        text_layers=config.text_layers)


def schedule_for(config: TextToImageConfig) -> Schedule:
    """The noise schedule of a config (float64, on CPU)."""
    return make_schedule(config.schedule, config.timesteps)


def drop_captions(tokens: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Replace each caption by the empty caption (``<null>`` then padding) with probability p."""
    drop = torch.rand(len(tokens), generator=generator) < p
    out = tokens.clone()
    out[drop] = PAD_ID
    out[drop, 0] = NULL_ID
    return out


def train_text_model(
    config: TextToImageConfig, data: CaptionedLatents, *, device: str | torch.device = "cpu",
    progress: bool = True,
) -> tuple[TextUNet, tuple[float, ...]]:
    """Train on ``data``; returns the EMA network (eval mode, on CPU) and the per-step losses.

    Batches, timesteps, noise and dropped captions come from one CPU generator seeded by
    ``config.seed``, so a run is reproducible on CPU."""
    g = torch.Generator().manual_seed(config.seed)
    model = make_model(config, data.latents.shape[1]).to(device)
    ema = copy.deepcopy(model).requires_grad_(False).eval()
    params = [p for p in model.parameters() if p.requires_grad]
    ema_params = list(ema.parameters())
    opt = torch.optim.AdamW(params, lr=config.lr)
    schedule = schedule_for(config)
    z, tok = data.latents.to(device), data.tokens
    losses: list[float] = []
    model.train()
    for step in tqdm(range(config.steps), desc="train text-to-image", disable=not progress,
                     leave=False):
        idx = torch.randint(0, len(z), (config.batch_size,), generator=g)
        t = torch.randint(0, config.timesteps, (config.batch_size,), generator=g)
        eps = torch.randn((config.batch_size, *z.shape[1:]), generator=g)
        y = drop_captions(tok[idx], config.caption_dropout, g).to(device)
        for group in opt.param_groups:  # linear warm-up, then constant
            group["lr"] = lr_at(config, step)
        loss = training_loss(lambda xt, tt, _y=y: model(xt, tt, _y), z[idx.to(device)], schedule,
                             t=t.to(device), eps=eps.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        opt.step()
        with torch.no_grad():  # ema <- d * ema + (1 - d) * theta, with a warm-up of d
            d = ema_decay_at(config, step)
            torch._foreach_lerp_(ema_params, params, 1.0 - d)
        losses.append(float(loss.detach()))
    return ema.cpu().eval(), tuple(losses)


def text_model_path(config: TextToImageConfig, root: str | os.PathLike[str] | None = None) -> Path:
    """The cache file of the model trained with ``config`` (and the current autoencoder)."""
    from diffusion_notes.data.latent import LATENT_AUTOENCODER

    key = config_hash({"t2i": asdict(config), "autoencoder": asdict(LATENT_AUTOENCODER)})
    root = Path(root) if root is not None else cache_root()
    return root / "models" / f"text2image-{key}.pt"


def get_text_model(
    config: TextToImageConfig | None = None, *, device: str | torch.device = "cpu",
    root: str | os.PathLike[str] | None = None, progress: bool = True,
) -> tuple[TextUNet, TextToImageInfo]:
    """The trained text-to-image network (EMA weights, eval mode, on ``device``) from the model
    cache, trained once when missing or unreadable."""
    config = config or TextToImageConfig()
    path = text_model_path(config, root)

    def load(p: Path) -> tuple[TextUNet, dict]:
        ckpt = load_checkpoint(p, kind=_KIND)
        model = make_model(config, int(ckpt["in_channels"]))
        model.load_state_dict(ckpt["model"])
        return model, ckpt

    def build(folder: Path) -> Path:
        data = captioned_latents()
        start = time.perf_counter()
        model, losses = train_text_model(config, data, device=device, progress=progress)
        seconds = time.perf_counter() - start
        return save_checkpoint(_KIND, {
            "config": asdict(config), "model": model.state_dict(), "seconds": seconds,
            "losses": list(losses), "in_channels": int(data.latents.shape[1]),
            "terciles": asdict(data.terciles)}, folder / path.name)

    (model, ckpt), from_cache = load_or_build(path, load, build)
    t = ckpt["terciles"]
    terciles = Terciles(*(tuple(t[k]) for k in ("thickness", "size", "slant")))
    info = TextToImageInfo(path, from_cache, float(ckpt["seconds"]), tuple(ckpt["losses"]),
                           terciles)
    return model.to(device).eval(), info


@torch.no_grad()
def generate_latents(
    model: TextUNet, schedule: Schedule, captions: list[str], *, scale: float = 3.0,
    n_steps: int = 20, generator: torch.Generator | None = None, progress: bool = False,
) -> torch.Tensor:
    """Latents for ``captions`` by DDIM (``n_steps`` trailing steps) with classifier-free
    guidance on the caption: ``eps = eps(null) + scale (eps(caption) - eps(null))``, the empty
    caption as the null condition (``scale = 1``: no guidance). On CPU."""
    dev = next(model.parameters()).device
    den = Denoiser(model, schedule, cond=tokenize(captions).to(dev))
    guided = classifier_free(den, null_cond=null_tokens(1).to(dev), scale=scale)
    x = torch.randn((len(captions), model.in_channels, 4, 4), generator=generator).to(dev)
    pairs = timestep_pairs(schedule.T, n_steps, "trailing")
    return sample_ddim(guided, x, pairs, progress=progress).cpu()


def generate(model: TextUNet, schedule: Schedule, captions: list[str], *, vae: torch.nn.Module,
             scale: float = 3.0, n_steps: int = 20, seed: int = 0,
             progress: bool = False) -> torch.Tensor:
    """Digits (N, 1, 8, 8) for ``captions``: :func:`generate_latents` decoded by ``vae``.
    The same ``seed`` gives every call the same starting noise (for same-seed comparisons)."""
    from diffusion_notes.data.latent import decode_latents

    z = generate_latents(model, schedule, captions, scale=scale, n_steps=n_steps,
                         generator=torch.Generator().manual_seed(seed), progress=progress)
    return decode_latents(vae, z)
