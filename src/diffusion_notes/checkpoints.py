"""The checkpoint format: one dict saved with ``torch.save`` and read back weights-only.

A checkpoint is ``{"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "kind": ...,
**payload}``; ``kind`` says what it holds (``"ddpm"`` for a training run of
:mod:`diffusion_notes.train`, ``"digit-classifier"`` for :mod:`diffusion_notes.metrics`).

* :func:`save_checkpoint` adds the marker and writes atomically
  (:func:`diffusion_notes.atomic.atomic_write`), so a reader never sees half a file.
* :func:`load_checkpoint` loads with ``torch.load(..., weights_only=True)`` and turns every
  failure (missing, truncated, not ours, wrong kind) into one :class:`CheckpointError` naming
  the file and the fix.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from diffusion_notes.atomic import atomic_write

CHECKPOINT_FORMAT = "diffusion-notes-checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file that is missing, truncated, or not written by this package."""


def atomic_save(obj: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """``torch.save(dict(obj))`` to ``path`` through the atomic writer."""
    return atomic_write(path, lambda fh: torch.save(dict(obj), fh))


def wrap_checkpoint(kind: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Add the format marker that :func:`load_checkpoint` checks."""
    return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "kind": kind, **payload}


def save_checkpoint(kind: str, payload: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a checkpoint of the given kind atomically."""
    return atomic_save(wrap_checkpoint(kind, payload), path)


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
