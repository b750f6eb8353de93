"""Checkpoint storage and the trained-model cache.

* :func:`atomic_save` writes a checkpoint to a temporary file in the same folder and renames
  it over the target with :func:`os.replace`, so a reader never sees half a file.
* :func:`load_checkpoint` loads with ``torch.load(..., weights_only=True)`` and turns every
  failure (missing, truncated, not ours) into one :class:`CheckpointError` naming the file.
* :func:`get_or_train` returns the model trained with a :class:`~diffusion_notes.train.TrainConfig`,
  training it once and storing it under ``<cache>/models/<kind>-<hash>.pt`` when missing. The
  cache folder is ``$DIFFUSION_NOTES_CACHE`` if set, else ``.cache`` at the repository root
  (or ``~/.cache/diffusion-notes`` for an installed, non-editable package).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import tempfile
import time
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from torch import nn

    from diffusion_notes.train import TrainConfig

CHECKPOINT_FORMAT = "diffusion-notes-checkpoint"
CHECKPOINT_VERSION = 1
# Bump when a model class changes shape, so that old cache entries are ignored, not loaded.
CACHE_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file that is missing, truncated, or not written by this package."""


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


def atomic_save(obj: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """``torch.save`` to a temporary sibling file, then ``os.replace`` it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(dict(obj), fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def wrap_checkpoint(kind: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Add the format marker that :func:`load_checkpoint` checks."""
    return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "kind": kind, **payload}


def _load_failure_reason(exc: BaseException) -> str:
    """The useful part of torch.load's error: for a weights-only refusal torch writes a long
    paragraph whose real cause follows "WeightsUnpickler error:"; else the first line."""
    text = str(exc).strip()
    found = re.search(r"WeightsUnpickler error:\s*(.+)", text)
    if found:
        return found.group(1).strip().splitlines()[0]
    first = text.splitlines()[0] if text else type(exc).__name__
    return first if len(first) <= 120 else first[:117].rsplit(" ", 1)[0] + "..."


def load_checkpoint(
    path: str | os.PathLike[str], *, kind: str | None = None, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Load a checkpoint written by this package, or raise one clear :class:`CheckpointError`."""
    path = Path(path)
    fix = "delete it or retrain"
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with warnings.catch_warnings():  # a foreign pickle may warn before it fails
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError,
            OSError, KeyError, AttributeError, IndexError, TypeError) as exc:
        reason = _load_failure_reason(exc)
        raise CheckpointError(
            f"{path}: not a diffusion-notes checkpoint / truncated: {fix} ({reason})"
        ) from None
    if not isinstance(obj, dict) or obj.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a diffusion-notes checkpoint / truncated: {fix}")
    if obj.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {obj.get('version')!r}, this code reads "
            f"{CHECKPOINT_VERSION}: {fix}"
        )
    if kind is not None and obj.get("kind") != kind:
        raise CheckpointError(f"{path}: holds a {obj.get('kind')!r}, expected a {kind!r}: {fix}")
    return obj


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
    from diffusion_notes.runtime import get_device
    from diffusion_notes.train import load_trained, train

    dev = get_device(device) if isinstance(device, str) else device
    path = model_path(config, root)
    if path.is_file():
        try:
            model, ckpt = load_trained(path, device=dev)
        except (CheckpointError, RuntimeError):
            pass  # unreadable or stale: train again below
        else:
            return model, CacheInfo(
                path=path,
                key=config_hash(config),
                from_cache=True,
                seconds=float(ckpt.get("train_seconds", float("nan"))),
                steps=int(ckpt["step"]),
                losses=tuple(ckpt.get("losses", ())),
            )
    start = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    # train into a private folder beside the target, then rename: same file system, atomic
    with tempfile.TemporaryDirectory(prefix=".train-", dir=path.parent) as tmp:
        result = train(config, out_dir=tmp, device=dev, progress=progress)
        os.replace(result.checkpoint, path)
    model, ckpt = load_trained(path, device=dev)
    return model, CacheInfo(
        path=path,
        key=config_hash(config),
        from_cache=False,
        seconds=time.perf_counter() - start,
        steps=int(ckpt["step"]),
        losses=tuple(ckpt.get("losses", ())),
    )
