"""The dataset registry: the built-in entries, and a new dataset added as one entry trains and
samples end to end (shape, classes and null label all read from the entry)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from diffusion_notes.data.registry import (
    DATASETS,
    Dataset,
    get_dataset,
    register_dataset,
    unregister_dataset,
)
from diffusion_notes.sample import draw_samples
from diffusion_notes.train import PRESETS, TrainConfig, load_data, load_trained, make_batch, train


def test_builtin_entries() -> None:
    assert get_dataset("digits").shape == (1, 8, 8)
    assert get_dataset("digits_train").shape == (1, 8, 8)
    assert get_dataset("digits16").shape == (1, 16, 16)
    assert get_dataset("digits").null_label == 10  # the shared digits_cond model's null token
    assert get_dataset("moons").shape == (2,) and get_dataset("moons").num_classes is None
    for name in PRESETS.values():
        assert name.data in DATASETS


def test_latent_and_frames_entries_match_their_sources() -> None:
    """digits_latent's shape is written out in the registry (importing the autoencoder there
    would close an import cycle through the cache), so it is checked against the autoencoder
    that defines it; digits_frames against one real clip frame."""
    from diffusion_notes.data.clips import make_clips
    from diffusion_notes.data.latent import LATENT_AUTOENCODER

    assert get_dataset("digits_latent").shape == (LATENT_AUTOENCODER.latent_channels, 4, 4)
    assert get_dataset("digits_latent").num_classes == 10
    clip = make_clips(1, seed=0)
    assert get_dataset("digits_frames").shape == tuple(clip.frames.shape[2:])
    assert get_dataset("digits_frames").num_classes == 10
    data, labels = load_data(PRESETS["digits_cond"])
    assert tuple(data.shape) == (1438, 1, 8, 8) and labels is not None  # the 80 % split
    with pytest.raises(ValueError, match="data 'mnist': choose one of digits, digits16"):
        get_dataset("mnist")
    with pytest.raises(ValueError, match="no labels"):
        _ = get_dataset("moons").null_label


def _three_blobs(n_points: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n_points) % 3
    centres = torch.eye(3) * 2.0
    return centres[labels] + 0.1 * torch.randn(n_points, 3, generator=g), labels


@pytest.fixture
def blobs() -> Iterator[Dataset]:
    ds = register_dataset(Dataset("blobs3d", (3,), 3, _three_blobs, "mlp"))
    yield ds
    unregister_dataset("blobs3d")


def test_a_new_dataset_is_one_entry(blobs: Dataset, tmp_path: Path) -> None:
    config = TrainConfig(data="blobs3d", model="mlp", steps=3, batch_size=16, warmup_steps=0,
                         timesteps=20, width=8, depth=1, n_points=64, class_conditional=True,
                         label_dropout=0.5)
    assert config.num_classes == 3
    batch = make_batch(config, *load_data(config), step=0)
    assert batch.y is not None and set(batch.y.tolist()) <= {0, 1, 2, 3}
    assert (batch.y == 3).any()  # dropped labels get the entry's null label (p = 1 - 0.5^16)
    result = train(config, out_dir=tmp_path, device="cpu", progress=False)
    model, _ = load_trained(result.checkpoint)
    assert model.dim == 3 and model.num_classes == 3
    for sampler in ("ddpm", "ddim", "dpm"):
        out = draw_samples(model, config, sampler=sampler, steps=4, n=5, seed=0,
                           device=torch.device("cpu"), progress=False)
        assert out.shape == (5, 3) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="label must be a class 0..2 of 'blobs3d'"):
        draw_samples(model, config, sampler="ddim", steps=2, n=2, seed=0,
                     device=torch.device("cpu"), label=3, progress=False)
    with pytest.raises(ValueError, match="already registered"):
        register_dataset(blobs)


def test_model_must_fit_the_entry(blobs: Dataset) -> None:
    with pytest.raises(ValueError, match="model 'unet' does not fit data 'blobs3d'.*use 'mlp'"):
        TrainConfig(data="blobs3d", model="unet")
    with pytest.raises(ValueError, match="class_conditional needs labelled data"):
        TrainConfig(data="moons", model="mlp", class_conditional=True)
