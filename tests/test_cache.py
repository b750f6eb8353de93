"""The trained-model cache: keyed by the config hash, trains once, survives a bad file."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from diffusion_notes import cache_store
from diffusion_notes.cache import cache_root, config_hash, get_or_train, model_path
from diffusion_notes.train import TrainConfig

TINY = TrainConfig(data="moons", model="mlp", steps=30, batch_size=64, width=16, depth=1,
                   n_points=500)


def test_hash_is_stable_and_sensitive() -> None:
    assert config_hash(TINY) == config_hash(replace(TINY))
    assert len(config_hash(TINY)) == 16
    for change in ({"steps": 31}, {"seed": 1}, {"lr": 1e-3}, {"data": "rings"}):
        assert config_hash(replace(TINY, **change)) != config_hash(TINY), change
    assert model_path(TINY, "/x").name == f"moons-mlp-{config_hash(TINY)}.pt"


def test_cache_root_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DIFFUSION_NOTES_CACHE", str(tmp_path))
    assert cache_root() == tmp_path
    monkeypatch.delenv("DIFFUSION_NOTES_CACHE")
    root = cache_root()
    assert root.name == ".cache" and (root.parent / "pyproject.toml").is_file()


def test_get_or_train_trains_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DIFFUSION_NOTES_CACHE", str(tmp_path))
    calls = []
    real_train = __import__("diffusion_notes.train", fromlist=["train"]).train

    def counting_train(*args, **kwargs):
        calls.append(1)
        return real_train(*args, **kwargs)

    monkeypatch.setattr("diffusion_notes.cache.train", counting_train)  # cache imports train
    model, info = get_or_train(TINY, device="cpu", progress=False)
    assert not info.from_cache and info.steps == 30 and len(info.losses) == 30
    assert info.path == model_path(TINY) and info.path.is_file()
    again, info2 = get_or_train(TINY, device="cpu", progress=False)
    assert info2.from_cache and len(calls) == 1
    assert info2.losses == info.losses
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert not again.training
    # only the model file (and its empty build lock) is left: no temporary training folders
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [
        info.path.name, info.path.name + ".lock"]
    # another config is another entry
    _, info3 = get_or_train(replace(TINY, seed=1), device="cpu", progress=False)
    assert not info3.from_cache and info3.path != info.path and len(calls) == 2


def test_a_corrupt_cache_entry_is_retrained(tmp_path: Path) -> None:
    _, info = get_or_train(TINY, device="cpu", root=tmp_path, progress=False)
    info.path.write_bytes(info.path.read_bytes()[:100])
    _, info2 = get_or_train(TINY, device="cpu", root=tmp_path, progress=False)
    assert not info2.from_cache
    _, info3 = get_or_train(TINY, device="cpu", root=tmp_path, progress=False)
    assert info3.from_cache


def test_cache_version_is_part_of_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    key = config_hash(TINY)
    monkeypatch.setattr(cache_store, "CACHE_VERSION", cache_store.CACHE_VERSION + 1)
    assert config_hash(TINY) != key


def test_a_second_builder_waits_for_the_first_and_loads_its_entry(tmp_path, monkeypatch) -> None:
    """Two callers that miss the same entry at once (two labs of a parallel site build): the
    second blocks on the entry's lock while the first builds, then loads the first one's file
    instead of training the same model again."""
    import threading

    from diffusion_notes import cache_store

    path = tmp_path / "models" / "entry.pt"
    builds: list[str] = []
    a_building, b_at_lock, go = threading.Event(), threading.Event(), threading.Event()
    real_lock = cache_store.build_lock

    def lock(p):
        if threading.current_thread().name == "B":
            b_at_lock.set()  # B has found no file and is about to wait for the lock
        return real_lock(p)

    monkeypatch.setattr(cache_store, "build_lock", lock)

    def builder(name: str):
        def build(folder):
            builds.append(name)
            if name == "A":
                a_building.set()
                assert go.wait(120), "the test never released builder A"
            out = folder / "x.txt"
            out.write_text(name)
            return out
        return build

    results: dict[str, tuple[str, bool]] = {}

    def call(name: str) -> None:
        results[name] = cache_store.load_or_build(path, lambda p: p.read_text(), builder(name))

    a = threading.Thread(target=call, args=("A",), name="A")
    a.start()
    assert a_building.wait(120)
    b = threading.Thread(target=call, args=("B",), name="B")
    b.start()
    assert b_at_lock.wait(120)
    go.set()
    a.join(120)
    b.join(120)
    assert builds == ["A"]
    assert results == {"A": ("A", False), "B": ("A", True)}
