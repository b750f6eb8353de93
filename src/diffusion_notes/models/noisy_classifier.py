"""A noise-aware digit classifier ``p_phi(y | x_t, t)`` for classifier guidance, and its cache.

Classifier guidance [@dhariwal2021diffusion] needs ``grad_x log p(y | x_t)`` at every noise
level the sampler visits, so the classifier is trained on noised digits
``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps`` with ``t`` drawn uniformly, and told ``t``
through the same sinusoidal embedding the denoisers use. A classifier trained on clean digits
only would be asked about inputs it never saw (its gradients there are arbitrary).

The network: conv -> two time-conditioned residual blocks at 8x8 -> downsample -> one block at
4x4 -> global average pool -> linear. Training uses the 80 % ``digits_train`` split only, so
the held-out digits stay unseen; the model is cached under
``<cache>/models/noisy-classifier-<hash>.pt`` keyed by its settings.
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

from diffusion_notes.models.embeddings import TimeEmbedding
from diffusion_notes.models.unet import ResBlock, _norm

_KIND = "noisy-classifier"


class NoisyDigitClassifier(nn.Module):
    """``model(x_t, t) -> logits (B, num_classes)`` for (B, 1, 8, 8) images at timestep ``t``."""

    def __init__(self, width: int = 16, num_classes: int = 10, freq_dim: int = 64) -> None:
        super().__init__()
        self.num_classes = num_classes
        emb = 4 * width
        self.embed = TimeEmbedding(freq_dim, emb)
        self.inp = nn.Conv2d(1, width, 3, padding=1)
        self.block1 = ResBlock(width, width, emb)
        self.block2 = ResBlock(width, 2 * width, emb)
        self.down = nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1)
        self.block3 = ResBlock(2 * width, 2 * width, emb)
        self.norm = _norm(2 * width)
        self.head = nn.Linear(2 * width, num_classes)

    def forward(self, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if xt.ndim != 4 or xt.shape[1:] != (1, 8, 8):
            raise ValueError(f"expected x_t of shape (B, 1, 8, 8), got {tuple(xt.shape)}")
        if t.ndim == 0:
            t = t.expand(xt.shape[0])
        e = self.embed(t)
        h = self.block2(self.block1(self.inp(xt), e), e)
        h = self.block3(self.down(h), e)
        return self.head(F.silu(self.norm(h)).mean(dim=(2, 3)))


@dataclass(frozen=True)
class NoisyClassifierConfig:
    """Everything that determines the trained classifier (and so its cache key)."""

    width: int = 16
    steps: int = 2000
    batch_size: int = 128
    lr: float = 2e-3
    schedule: str = "linear"
    timesteps: int = 1000
    seed: int = 0


@dataclass(frozen=True)
class NoisyClassifierInfo:
    path: Path | None
    from_cache: bool
    seconds: float  # training time (when it was trained)
    accuracy_by_t: tuple[tuple[int, float], ...]  # held-out accuracy at a few timesteps
    losses: tuple[float, ...]


def train_noisy_classifier(
    config: NoisyClassifierConfig, *, device: str | torch.device = "cpu", progress: bool = True
) -> tuple[NoisyDigitClassifier, tuple[float, ...], float]:
    """Cross-entropy on ``(x_t, t, y)`` with x0 from ``digits_train``; returns (model, losses, s)."""
    from diffusion_notes.data.digits import digits_split
    from diffusion_notes.diffusion import q_sample
    from diffusion_notes.schedules import make_schedule

    sched = make_schedule(config.schedule, config.timesteps)
    train, _ = digits_split()
    x_all, y_all = train.images.to(device), train.labels.to(device)
    g = torch.Generator().manual_seed(config.seed + 1)
    losses: list[float] = []
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = NoisyDigitClassifier(width=config.width).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-4)
    # one-cycle: 5 % warm-up (at least 2 steps, which the scheduler needs), cosine decay
    lr_sched = torch.optim.lr_scheduler.OneCycleLR(opt, config.lr, total_steps=config.steps,
                                                   pct_start=max(0.05, 2.0 / config.steps))
    model.train()
    for _ in tqdm(range(config.steps), desc="train noisy classifier", disable=not progress,
                  unit="step", dynamic_ncols=True):
        idx = torch.randint(0, len(x_all), (config.batch_size,), generator=g)
        t = torch.randint(0, config.timesteps, (config.batch_size,), generator=g)
        eps = torch.randn((config.batch_size, 1, 8, 8), generator=g)
        xt = q_sample(sched, x_all[idx.to(device)], t.to(device), eps.to(device))
        loss = F.cross_entropy(model(xt.float(), t.to(device)), y_all[idx.to(device)])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        lr_sched.step()
        losses.append(float(loss.detach()))
    return model.eval(), tuple(losses), time.perf_counter() - start


@torch.no_grad()
def noisy_accuracy(
    model: NoisyDigitClassifier, config: NoisyClassifierConfig, seed: int = 0
) -> tuple[tuple[int, float], ...]:
    """Accuracy on the 359 held-out digits noised to t = 0, T/4, T/2, 3T/4 and T - 1."""
    from diffusion_notes.data.digits import digits_split
    from diffusion_notes.diffusion import q_sample
    from diffusion_notes.schedules import make_schedule

    sched = make_schedule(config.schedule, config.timesteps)
    T = config.timesteps
    ts = (0, T // 4, T // 2, 3 * T // 4, T - 1)
    _, held = digits_split()
    dev = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    out = []
    for t in ts:
        eps = torch.randn(held.images.shape, generator=g)
        xt = q_sample(sched, held.images, t, eps).float().to(dev)
        pred = model(xt, torch.full((len(xt),), t, device=dev)).argmax(1).cpu()
        out.append((t, float((pred == held.labels).double().mean())))
    return tuple(out)


def get_noisy_classifier(
    config: NoisyClassifierConfig | None = None,
    *,
    device: str | torch.device = "cpu",
    root: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> tuple[NoisyDigitClassifier, NoisyClassifierInfo]:
    """The noise-aware classifier from the model cache, trained once when missing (through
    :func:`~diffusion_notes.cache.load_or_build`, like every cached model)."""
    from diffusion_notes.cache import cache_root, config_hash, load_or_build
    from diffusion_notes.checkpoints import load_checkpoint, save_checkpoint

    config = config or NoisyClassifierConfig()
    root = Path(root) if root is not None else cache_root()
    path = root / "models" / f"{_KIND}-{config_hash(config)}.pt"

    def load(p: Path) -> tuple[NoisyDigitClassifier, dict]:
        ckpt = load_checkpoint(p, kind=_KIND)
        model = NoisyDigitClassifier(width=config.width)
        model.load_state_dict(ckpt["model"])
        return model, ckpt

    def build(folder: Path) -> Path:
        model, losses, seconds = train_noisy_classifier(config, device=device, progress=progress)
        return save_checkpoint(_KIND, {
            "model": model.state_dict(), "config": asdict(config), "seconds": seconds,
            "accuracy_by_t": [list(p) for p in noisy_accuracy(model, config)], "losses": list(losses),
        }, folder / path.name)

    (model, ckpt), from_cache = load_or_build(path, load, build)
    info = NoisyClassifierInfo(
        path, from_cache, float(ckpt["seconds"]),
        tuple((int(t), float(a)) for t, a in ckpt["accuracy_by_t"]),
        tuple(float(v) for v in ckpt["losses"]))
    return model.to(device).eval(), info
