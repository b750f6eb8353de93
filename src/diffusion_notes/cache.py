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
itself lives in :mod:`diffusion_notes.checkpoints`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from diffusion_notes.checkpoints import CheckpointError
from diffusion_notes.runtime import get_device
from diffusion_notes.train import TrainConfig, load_trained, train

# Bump when a model class changes shape, so that old cache entries are ignored, not loaded.
CACHE_VERSION = 1
Loaded = TypeVar("Loaded")


def cache_root() -> Path:
    """``$DIFFUSION_NOTES_CACHE``, else ``<repo>/.cache``, else ``~/.cache/diffusion-notes``."""
    env = os.environ.get("DIFFUSION_NOTES_CACHE", "").strip()
    if env:
        return Path(env).expanduser()
    repo = Path(__file__).resolve().parents[2]
    if (repo / "pyproject.toml").is_file():
        return repo / ".cache"
    return Path.home() / ".cache" / "diffusion-notes"


def config_hash(config: Any, *, length: int = 16) -> str:
    """A stable hex digest of a config (dataclass or mapping of JSON-able values)."""
    data = asdict(config) if is_dataclass(config) else dict(config)
    text = json.dumps({"cache_version": CACHE_VERSION, "config": data}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def load_or_build(
    path: str | os.PathLike[str],
    load: Callable[[Path], Loaded],
    build: Callable[[Path], Path],
) -> tuple[Loaded, bool]:
    """``(load(path), True)`` when the cache file reads; else build it and ``(load(path), False)``.

    ``build(folder)`` writes the entry somewhere inside ``folder`` (a private temporary folder
    beside ``path``, same file system) and returns the file it wrote; it is renamed onto
    ``path`` with :func:`os.replace`. An unreadable or stale file is rebuilt over.
    """
    path = Path(path)
    if path.is_file():
        try:
            return load(path), True
        except (CheckpointError, RuntimeError, KeyError):
            pass  # unreadable or stale: build again below
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".build-", dir=path.parent) as tmp:
        os.replace(build(Path(tmp)), path)
    return load(path), False


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
