"""The trained-model cache: one load-or-train path for every cached model.

* :func:`load_or_build` returns what ``load(path)`` reads from a cache file; when the file is
  missing or unreadable (a :class:`~diffusion_notes.checkpoints.CheckpointError`, stale model
  code) it calls ``build(tmp)`` to write a fresh file beside the target and renames it into
  place, so a reader never sees a half-written entry.
* :func:`get_or_train` is that path for the diffusion models of
  :class:`~diffusion_notes.train.TrainConfig`, stored under ``<cache>/models/<data>-<model>-<hash>.pt``;
  the digit classifier of :mod:`diffusion_notes.metrics` goes through the same function.

The cache folder is ``$DIFFUSION_NOTES_CACHE`` if set, else ``.cache`` at the repository root
(or ``~/.cache/diffusion-notes`` for an installed, non-editable package). The checkpoint format
itself lives in :mod:`diffusion_notes.checkpoints`; the folder, the key hash and
:func:`load_or_build` live in :mod:`diffusion_notes.cache_store` (free of the training code, so
that models cached outside ``train``, such as the autoencoder, do not import it) and are
re-exported here.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from diffusion_notes.cache_store import cache_root, config_hash, load_or_build
from diffusion_notes.runtime import get_device
from diffusion_notes.train import TrainConfig, load_trained, train

__all__ = [
    "CacheInfo", "cache_root", "config_hash", "get_or_train", "load_or_build", "model_path",
]


@dataclass(frozen=True)
class CacheInfo:
    """Where a cached model lives and how it got there."""

    path: Path
    key: str  # hash of the training config
    from_cache: bool  # False when this call trained it
    seconds: float  # training time (measured when it was trained)
    steps: int
    losses: tuple[float, ...]  # per-step training loss, for the loss curve


def model_path(config: TrainConfig, root: str | os.PathLike[str] | None = None) -> Path:
    """The file that holds (or will hold) the model trained with ``config``."""
    root = Path(root) if root is not None else cache_root()
    return root / "models" / f"{config.data}-{config.model}-{config_hash(config)}.pt"


def get_or_train(
    config: TrainConfig,
    *,
    device: str | torch.device = "auto",
    root: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> tuple[nn.Module, CacheInfo]:
    """The EMA model trained with ``config``: loaded from the cache, or trained once and stored.

    A cache file that cannot be read (truncated, stale model code) is retrained over.
    The model comes back in eval mode on ``device``.
    """
    dev = get_device(device) if isinstance(device, str) else device
    start = time.perf_counter()

    def build(folder: Path) -> Path:
        return train(config, out_dir=folder, device=dev, progress=progress).checkpoint

    (model, ckpt), from_cache = load_or_build(
        model_path(config, root), lambda p: load_trained(p, device=dev), build
    )
    return model, CacheInfo(
        path=model_path(config, root),
        key=config_hash(config),
        from_cache=from_cache,
        # the training time stored with the model, or this call's when it trained it
        seconds=float(ckpt.get("train_seconds", float("nan")))
        if from_cache
        else time.perf_counter() - start,
        steps=int(ckpt["step"]),
        losses=tuple(ckpt.get("losses", ())),
    )
