"""The cache folder, the cache key of a config and the one load-or-build path.

Kept apart from :mod:`diffusion_notes.cache` (which adds the diffusion models of
:mod:`diffusion_notes.train`) so that a model cached without the training code, the autoencoder
of :mod:`diffusion_notes.models.autoencoder` for instance, does not import ``train``: the
dataset registry reaches the autoencoder through ``digits_latent``, and ``train`` reaches the
registry, so that import would be a cycle.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

from diffusion_notes.checkpoints import CheckpointError

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

    Two processes that miss the same entry at once (two labs of a parallel site build) do
    not both build it: the second waits on :func:`build_lock` and then loads what the first
    wrote.
    """
    path = Path(path)
    loaded = _try_load(path, load)
    if loaded is not None:
        return loaded[0], True
    path.parent.mkdir(parents=True, exist_ok=True)
    with build_lock(path):
        loaded = _try_load(path, load)  # built by another process while this one waited
        if loaded is not None:
            return loaded[0], True
        with tempfile.TemporaryDirectory(prefix=".build-", dir=path.parent) as tmp:
            os.replace(build(Path(tmp)), path)
    return load(path), False


def _try_load(path: Path, load: Callable[[Path], Loaded]) -> tuple[Loaded] | None:
    if not path.is_file():
        return None
    try:
        return (load(path),)
    except (CheckpointError, RuntimeError, KeyError):
        return None  # unreadable or stale: build again


@contextlib.contextmanager
def build_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive lock on ``<path>.lock`` (POSIX ``flock``; it is released when the
    holder exits, even by a crash): one builder per cache entry across processes. Where
    ``fcntl`` does not exist (Windows) this does nothing."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no POSIX locks here
        yield
        return
    lock = Path(f"{path}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
