"""The training loop: AdamW, EMA weights, gradient clipping, atomic resumable checkpoints, DDP.

One step minimises the simple loss of DDPM (Ho et al. 2020, eq. 14),
``E_{x0, t, eps} |eps - eps_theta(sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, t)|^2``
(or its x0 / v variants, via :func:`diffusion_notes.diffusion.training_loss`), and then moves
an exponential moving average of the weights, ``ema <- d * ema + (1 - d) * theta``, which is
the model one samples from.

Reproducibility: the batch of step ``s`` (which examples, which ``t``, which ``eps``, which
labels are dropped) is a function of ``(seed, s)`` only, drawn from generators seeded from
that pair. A run interrupted at step ``k`` and resumed from its checkpoint therefore replays
exactly the batches an uninterrupted run sees, and on CPU the weights agree bit for bit.

Data parallel: under ``torchrun --nproc_per_node N`` (``WORLD_SIZE > 1``) the loop joins the
process group (gloo on CPU, nccl on CUDA), wraps the model in DistributedDataParallel, and
rank ``r`` takes rows ``[r*B/N, (r+1)*B/N)`` of the global batch. DDP averages the gradients
of the N shard means, which is the gradient of the global batch mean.
"""

from __future__ import annotations

import copy
import hashlib
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm  # text bars: no ipywidgets needed in notebooks

from diffusion_notes.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from diffusion_notes.data.registry import DATASETS, Dataset, get_dataset
from diffusion_notes.diffusion import PREDICTIONS, training_loss
from diffusion_notes.models import MLPDenoiser, UNet
from diffusion_notes.runtime import get_device
from diffusion_notes.schedules import Schedule, make_schedule

MODEL_NAMES: tuple[str, ...] = ("mlp", "unet")
CHECKPOINT_NAME = "checkpoint.pt"
_KIND = "ddpm"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a trained model (and so its cache key).

    ``width`` is the MLP's hidden width or the UNet's base channel count; ``depth`` the
    number of MLP residual blocks or UNet ResNet blocks per resolution.
    """

    data: str = "digits"
    model: str = "unet"
    steps: int = 3000
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.0
    warmup_steps: int = 100
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    seed: int = 0
    schedule: str = "linear"
    timesteps: int = 1000
    prediction: str = "eps"
    min_snr_gamma: float | None = None
    width: int = 16
    depth: int = 1
    class_conditional: bool = False
    label_dropout: float = 0.0  # probability of replacing y by the "no label" token (CFG)
    n_points: int = 20000  # size of a toy 2-D training set
    checkpoint_every: int = 0  # 0: only at the end

    def __post_init__(self) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ValueError(msg)

        need(self.data in DATASETS, f"data {self.data!r}: choose one of {', '.join(DATASETS)}")
        need(self.model in MODEL_NAMES, f"model {self.model!r}: choose one of {', '.join(MODEL_NAMES)}")
        need(self.prediction in PREDICTIONS,
             f"prediction {self.prediction!r}: choose one of {', '.join(PREDICTIONS)}")
        ds = self.dataset
        need(ds.fits(self.model),
             f"model {self.model!r} does not fit data {self.data!r} (samples of shape "
             f"{ds.shape}): use {ds.model!r}")
        for name in ("steps", "batch_size", "timesteps", "width", "depth", "n_points"):
            need(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("warmup_steps", "checkpoint_every", "grad_clip", "weight_decay"):
            need(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")
        need(self.lr > 0, f"lr must be > 0, got {self.lr}")
        need(0.0 <= self.ema_decay < 1.0, f"ema_decay must be in [0, 1), got {self.ema_decay}")
        need(0.0 <= self.label_dropout < 1.0,
             f"label_dropout must be in [0, 1), got {self.label_dropout}")
        need(self.class_conditional or self.label_dropout == 0.0,
             "label_dropout needs class_conditional=True")
        labelled = [name for name, d in DATASETS.items() if d.num_classes is not None]
        need(not (self.class_conditional and ds.num_classes is None),
             f"class_conditional needs labelled data ({', '.join(map(repr, labelled))})")

    @property
    def dataset(self) -> Dataset:
        """The registry entry of ``data`` (shape, classes, loader)."""
        return get_dataset(self.data)

    @property
    def num_classes(self) -> int | None:
        return self.dataset.num_classes if self.class_conditional else None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Rebuild a config stored in a checkpoint; unknown keys are an error."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {unknown}; known: {sorted(names)}")
        return cls(**data)


@dataclass(frozen=True)
class TrainResult:
    checkpoint: Path
    steps: int  # total steps completed (including those before a resume)
    resumed_from: int  # 0 for a fresh run
    losses: tuple[float, ...]  # global-batch loss of every step
    seconds: float  # wall time of this call's steps
    steps_per_second: float


@dataclass(frozen=True)
class Batch:
    x0: torch.Tensor
    t: torch.Tensor
    eps: torch.Tensor
    y: torch.Tensor | None


# ----------------------------------------------------------------------------- building blocks


def build_model(config: TrainConfig) -> nn.Module:
    """The denoiser a config describes (weights drawn from the global RNG)."""
    shape = config.dataset.shape
    if config.model == "mlp":
        return MLPDenoiser(dim=shape[0], width=config.width, depth=config.depth,
                           num_classes=config.num_classes)
    # one 2x downsampling per level, down to 4x4: 8x8 -> (1, 2), 16x16 -> (1, 2, 2)
    levels = max(shape[-1].bit_length() - 3, 1)
    return UNet(in_channels=shape[0], base_channels=config.width, channel_mult=(1,) + (2,) * levels,
                num_res_blocks=config.depth, num_classes=config.num_classes)


def make_schedule_for(config: TrainConfig) -> Schedule:
    """The noise schedule of a config (float64, on CPU)."""
    return make_schedule(config.schedule, config.timesteps)


def load_data(config: TrainConfig) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Training data (and labels, for a labelled set), on CPU, from the dataset registry."""
    data, labels = config.dataset.load(config.n_points, config.seed)
    if tuple(data.shape[1:]) != config.dataset.shape:
        raise ValueError(f"data {config.data!r}: the loader gave samples of shape "
                         f"{tuple(data.shape[1:])}, the registry says {config.dataset.shape}")
    return data, labels


def _generator(seed: int, tag: str, index: int) -> torch.Generator:
    """A CPU generator seeded from (seed, tag, index) through a hash: independent streams."""
    digest = hashlib.blake2b(f"{seed}:{tag}:{index}".encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") & (2**63 - 1))


def batch_indices(seed: int, step: int, batch_size: int, n: int) -> torch.Tensor:
    """Rows of the global batch of ``step``: positions ``[step*B, (step+1)*B)`` of an endless
    stream made of one seeded random permutation of ``range(n)`` per epoch."""
    start = step * batch_size
    pos = torch.arange(start, start + batch_size)
    epochs = pos // n
    out = torch.empty(batch_size, dtype=torch.long)
    for e in epochs.unique().tolist():
        perm = torch.randperm(n, generator=_generator(seed, "epoch", e))
        mask = epochs == e
        out[mask] = perm[pos[mask] % n]
    return out


def make_batch(
    config: TrainConfig, data: torch.Tensor, labels: torch.Tensor | None, step: int
) -> Batch:
    """The global batch of ``step``: examples, timesteps, noise and (dropped) labels.

    Random draws happen on the CPU from ``(seed, step)`` generators (so CPU and GPU runs see
    the same batches); the result lives on ``data.device``.
    """
    dev = data.device
    idx = batch_indices(config.seed, step, config.batch_size, len(data))
    g = _generator(config.seed, "noise", step)
    x0 = data[idx.to(dev)]
    t = torch.randint(0, config.timesteps, (config.batch_size,), generator=g)
    eps = torch.randn(x0.shape, generator=g, dtype=x0.dtype)
    y = None
    if config.class_conditional:
        if labels is None:
            raise ValueError("class_conditional training needs labels")
        y = labels[idx.to(labels.device)].clone()
        drop = torch.rand(config.batch_size, generator=g) < config.label_dropout
        y[drop.to(y.device)] = config.dataset.null_label  # the "no label" token
        y = y.to(dev)
    return Batch(x0, t.to(dev), eps.to(dev), y)


def shard(batch: Batch, rank: int, world: int) -> Batch:
    """Rank ``rank``'s contiguous slice of a global batch (equal sizes across ranks)."""
    b = batch.x0.shape[0] // world
    sl = slice(rank * b, (rank + 1) * b)
    return Batch(batch.x0[sl], batch.t[sl], batch.eps[sl], batch.y[sl] if batch.y is not None else None)


class OptimSettings(Protocol):
    """What the warm-ups read: every training config here has these fields (the diffusion
    models' :class:`TrainConfig`, the SR and text-to-image configs)."""

    lr: float
    warmup_steps: int
    ema_decay: float


def ema_decay_at(config: OptimSettings, step: int) -> float:
    """EMA decay with a warm-up, ``min(d, (1 + s) / (10 + s))``, so early averages are not
    dominated by the random initial weights."""
    return min(config.ema_decay, (1.0 + step) / (10.0 + step))


def lr_at(config: OptimSettings, step: int) -> float:
    """Linear warm-up over ``warmup_steps``, then constant."""
    if config.warmup_steps == 0:
        return config.lr
    return config.lr * min(1.0, (step + 1) / config.warmup_steps)


# ----------------------------------------------------------------------------- checkpoints


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        cuda = [s.cpu() for s in state["cuda"]]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


def _config_from_checkpoint(ckpt: dict[str, Any], path: Path) -> TrainConfig:
    try:
        return TrainConfig.from_dict(dict(ckpt["config"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: bad training config in checkpoint ({exc}): "
                              "delete it or retrain") from None


def load_trained(
    path: str | os.PathLike[str], *, device: str | torch.device = "cpu", ema: bool = True
) -> tuple[nn.Module, dict[str, Any]]:
    """The model stored in a training checkpoint (EMA weights by default), in eval mode.

    Returns ``(model, checkpoint_dict)``; ``checkpoint_dict["config"]`` is the config as a dict.
    Raises :class:`~diffusion_notes.checkpoints.CheckpointError` for a missing or corrupt file.
    """
    path = Path(path)
    ckpt = load_checkpoint(path, kind=_KIND)
    config = _config_from_checkpoint(ckpt, path)
    with torch.random.fork_rng(devices=[]):
        model = build_model(config)
    try:
        model.load_state_dict(ckpt["ema" if ema else "model"])
    except (KeyError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0][:120]
        raise CheckpointError(f"{path}: weights do not fit the model ({first}): "
                              "delete it or retrain") from None
    return model.to(device).eval(), ckpt


# ----------------------------------------------------------------------------- the loop


def _init_distributed(device: torch.device) -> tuple[int, int, torch.device, bool]:
    """Join the process group when launched by torchrun; returns (rank, world, device, owned)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, device, False
    owned = False
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
        owned = True
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return dist.get_rank(), dist.get_world_size(), device, owned


def train(
    config: TrainConfig,
    *,
    out_dir: str | os.PathLike[str],
    device: str | torch.device = "auto",
    resume: bool = True,
    progress: bool = True,
    callback: Callable[[int, nn.Module], None] | None = None,
    sample_every: int = 0,
    on_gradients: Callable[[int, dict[str, torch.Tensor]], None] | None = None,
    stop_after: int | None = None,
) -> TrainResult:
    """Train (or resume training) a denoiser; checkpoint to ``out_dir/checkpoint.pt``.

    * ``resume``: continue from ``out_dir/checkpoint.pt`` when it exists (its config must
      equal ``config`` except for ``steps``).
    * ``callback(step, ema_model)`` runs every ``sample_every`` steps on rank 0 (for samples).
    * ``on_gradients(step, grads)`` sees the averaged gradients (before clipping) of every
      step, keyed by parameter name: a diagnostic hook, used by the DDP test.
    * ``stop_after``: stop (with a checkpoint) once this many total steps are done, as a
      pre-empted job would.
    """
    dev = get_device(device) if isinstance(device, str) else torch.device(device)
    rank, world, dev, owned_pg = _init_distributed(dev)
    if config.batch_size % world:
        raise ValueError(f"batch_size {config.batch_size} must be divisible by the "
                         f"{world} processes")
    out = Path(out_dir)
    ckpt_path = out / CHECKPOINT_NAME
    schedule = make_schedule_for(config)
    data, labels = load_data(config)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)  # initial weights depend on the seed only
        model = build_model(config)
    model.to(dev)
    ema = copy.deepcopy(model).requires_grad_(False).eval()
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    losses: list[float] = []
    start = 0
    prior_seconds = 0.0
    if resume and ckpt_path.is_file():
        ckpt = load_checkpoint(ckpt_path, kind=_KIND, map_location=dev)
        old = _config_from_checkpoint(ckpt, ckpt_path)
        if replace(old, steps=config.steps) != config:
            raise ValueError(f"{ckpt_path} was trained with a different config; use another "
                             "output folder, or resume=False to start over")
        model.load_state_dict(ckpt["model"])
        ema.load_state_dict(ckpt["ema"])
        opt.load_state_dict(ckpt["optimizer"])
        _set_rng_state(ckpt["rng"])
        start = int(ckpt["step"])
        losses = [float(v) for v in ckpt["losses"]]
        prior_seconds = float(ckpt.get("train_seconds", 0.0))

    net: nn.Module = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[dev] if dev.type == "cuda" else None)
    data_dev = data.to(dev)
    labels_dev = labels.to(dev) if labels is not None else None
    params = [p for p in model.parameters()]
    ema_params = [p for p in ema.parameters()]
    names = [n for n, _ in model.named_parameters()]
    end = config.steps if stop_after is None else min(config.steps, stop_after)
    if start >= end:  # nothing left to do: leave the checkpoint as it is
        if owned_pg:
            dist.destroy_process_group()
        return TrainResult(ckpt_path, start, start, tuple(losses), 0.0, math.nan)

    def save(step: int, seconds: float, pending: list[torch.Tensor]) -> None:
        losses.extend(_flush(pending, world))
        if rank == 0:
            save_checkpoint(_KIND, {
                "config": asdict(config),
                "model": model.state_dict(),
                "ema": ema.state_dict(),
                "optimizer": opt.state_dict(),
                "step": step,
                "rng": _rng_state(),
                "losses": list(losses),
                "train_seconds": prior_seconds + seconds,
                "world_size": world,
            }, ckpt_path)

    bar = tqdm(total=config.steps, initial=start, disable=not progress or rank != 0,
               desc=f"train {config.data}", unit="step", dynamic_ncols=True)
    pending: list[torch.Tensor] = []
    t0 = time.perf_counter()
    model.train()
    try:
        for step in range(start, end):
            sh = shard(make_batch(config, data_dev, labels_dev, step), rank, world)
            y = sh.y

            def fn(xt: torch.Tensor, t: torch.Tensor, _y: torch.Tensor | None = y) -> torch.Tensor:
                return net(xt, t) if _y is None else net(xt, t, _y)

            for group in opt.param_groups:
                group["lr"] = lr_at(config, step)
            loss = training_loss(fn, sh.x0, schedule, prediction=config.prediction, t=sh.t,
                                 eps=sh.eps, min_snr_gamma=config.min_snr_gamma)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if on_gradients is not None:
                grads = zip(names, params, strict=True)
                on_gradients(step, {n: p.grad.detach().clone() for n, p in grads
                                    if p.grad is not None})
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            opt.step()
            with torch.no_grad():  # ema <- d * ema + (1 - d) * theta
                torch._foreach_lerp_(ema_params, params, 1.0 - ema_decay_at(config, step))
            pending.append(loss.detach())
            done = step + 1
            if len(pending) >= 50 or done == end:
                recent = _flush(pending, world)
                losses.extend(recent)
                pending = []
                bar.set_postfix(loss=f"{sum(recent) / len(recent):.4f}")
            bar.update(1)
            if config.checkpoint_every and done % config.checkpoint_every == 0 and done < end:
                save(done, time.perf_counter() - t0, pending)
                pending = []
            if callback is not None and sample_every and done % sample_every == 0 and rank == 0:
                callback(done, ema)
                model.train()
        seconds = time.perf_counter() - t0
        save(end, seconds, pending)
        if owned_pg:
            dist.barrier()  # rank 0 has written the checkpoint before anyone returns
    finally:
        bar.close()
        if owned_pg:
            dist.destroy_process_group()
    n = end - start
    return TrainResult(
        checkpoint=ckpt_path,
        steps=end,
        resumed_from=start,
        losses=tuple(losses),
        seconds=seconds,
        steps_per_second=n / seconds if seconds > 0 else math.nan,
    )


def _flush(pending: list[torch.Tensor], world: int) -> list[float]:
    """Turn queued per-step losses into floats (one device sync), averaged over ranks."""
    if not pending:
        return []
    vals = torch.stack(pending).float()
    if world > 1:
        dist.all_reduce(vals)
        vals /= world
    return vals.cpu().tolist()


# ----------------------------------------------------------------------------- presets

PRESETS: dict[str, TrainConfig] = {
    # the digits lab's model (8x8 UNet); other labs reuse it through the cache
    "digits": TrainConfig(data="digits", model="unet", steps=2500, batch_size=128, lr=2e-3,
                          width=16, depth=1),
    "digits16": TrainConfig(data="digits16", model="unet", steps=3000, batch_size=64, lr=2e-3,
                            width=16, depth=1),
    # the class-conditional digits model with label dropout, trained on the 80 % split only:
    # the one model that guidance (CFG), fast sampling (the LCM teacher) and the map share
    # (width 16, 2000 steps: 0.084 CPU-s a step on one thread, measured on a loaded 2-core box,
    # so about 170 CPU-s in all; width 32 measured 0.20 CPU-s a step. Not yet timed on a quiet
    # machine.)
    "digits_cond": TrainConfig(data="digits_train", model="unet", steps=2000, batch_size=128,
                               lr=2e-3, width=16, depth=1, class_conditional=True,
                               label_dropout=0.1),
    # its unconditional twin (same network, same data, no labels): the model that classifier
    # guidance steers with a noise-aware classifier
    "digits_uncond": TrainConfig(data="digits_train", model="unet", steps=2000, batch_size=128,
                                 lr=2e-3, width=16, depth=1),
    # digits_cond's twin in the latent space of the small VAE (4x4 latents, 2 channels): twice
    # the width (a 4x4 input leaves the wider net cheaper per call), 1500 steps (the latent lab's
    # share of the site's build budget; 2500 steps measured 181 s on one thread)
    "digits_latent": TrainConfig(data="digits_latent", model="unet", steps=1500, batch_size=128,
                                 lr=2e-3, width=32, depth=1, class_conditional=True,
                                 label_dropout=0.1),
    # the single-frame image model of the video lab (frames of moving-digit clips, 16x16);
    # the video model's spatial layers start from it
    "digits_frames": TrainConfig(data="digits_frames", model="unet", steps=600, batch_size=64,
                                 lr=2e-3, width=16, depth=1),
    # the 2-D lab's model (residual MLP on the swiss roll)
    "toy2d": TrainConfig(data="swiss_roll", model="mlp", steps=4000, batch_size=256, lr=2e-3,
                         width=128, depth=3, ema_decay=0.995),
}


def preset(name: str, **overrides: Any) -> TrainConfig:
    """A named starting config (``digits``, ``digits16``, ``toy2d``) with fields replaced."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)
