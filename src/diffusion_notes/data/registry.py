"""The datasets a model can be trained on, by name: one :class:`Dataset` entry each.

An entry says everything training, sampling, the command line and the labs need to know:
the shape of one sample, the number of classes (and so the "no label" token used for
classifier-free guidance), the loader, and the default network. Adding a dataset is one call
to :func:`register_dataset`; nothing else in the package tests names.

    >>> get_dataset("digits").shape
    (1, 8, 8)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from diffusion_notes.data.toy2d import TOY2D_NAMES, make_toy2d

ModelName = Literal["mlp", "unet"]
# loader(n_points, seed) -> (data, labels or None); n_points and seed matter to generated sets
Loader = Callable[[int, int], tuple[torch.Tensor, torch.Tensor | None]]


@dataclass(frozen=True)
class Dataset:
    """One training set: ``shape`` of a sample (``(C, H, W)`` images, ``(d,)`` points),
    ``num_classes`` (None when unlabelled), the loader and the default model."""

    name: str
    shape: tuple[int, ...]
    num_classes: int | None
    load: Loader
    model: ModelName

    @property
    def null_label(self) -> int:
        """The "no label" token of a class-conditional model: the index after the last class."""
        if self.num_classes is None:
            raise ValueError(f"dataset {self.name!r} has no labels, so no null label")
        return self.num_classes

    def fits(self, model: str) -> bool:
        """Whether a network type can take this data: a UNet images, an MLP flat vectors."""
        return (len(self.shape) == 3) if model == "unet" else (len(self.shape) == 1)


DATASETS: dict[str, Dataset] = {}


def register_dataset(dataset: Dataset, *, replace: bool = False) -> Dataset:
    """Add a dataset to the registry (``replace=True`` to overwrite an entry of that name)."""
    if dataset.name in DATASETS and not replace:
        raise ValueError(f"dataset {dataset.name!r} is already registered; pass replace=True")
    if not dataset.fits(dataset.model):
        raise ValueError(f"dataset {dataset.name!r}: default model {dataset.model!r} cannot "
                         f"take samples of shape {dataset.shape}")
    DATASETS[dataset.name] = dataset
    return dataset


def unregister_dataset(name: str) -> None:
    """Remove a dataset (tests register throwaway ones)."""
    DATASETS.pop(name, None)


def get_dataset(name: str) -> Dataset:
    """The registry entry of ``name``, or a ValueError naming the registered datasets."""
    if name not in DATASETS:
        raise ValueError(f"data {name!r}: choose one of {', '.join(DATASETS)}")
    return DATASETS[name]


# -- the built-in sets ------------------------------------------------------------------------
def _digits(upscale: int) -> Loader:
    def load(n_points: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        from diffusion_notes.data.digits import load_digits_tensor

        d = load_digits_tensor(upscale=upscale)
        return d.images, d.labels

    return load


def _digits_train(n_points: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    from diffusion_notes.data.digits import digits_split

    d = digits_split()[0]  # the 80 % the held-out metrics never see
    return d.images, d.labels


def _digits_latent(n_points: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    from diffusion_notes.data.latent import latent_digits

    return latent_digits()  # digits_train encoded by the cached small VAE


def _digits_frames(n_points: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    from diffusion_notes.data.clips import frames_dataset

    return frames_dataset(seed=seed)  # every frame of the moving-digit clips (16x16 canvas)


def _toy2d(name: str) -> Loader:
    def load(n_points: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        return make_toy2d(name, n_points, seed=seed), None  # type: ignore[arg-type]

    return load


register_dataset(Dataset("digits", (1, 8, 8), 10, _digits(1), "unet"))
register_dataset(Dataset("digits16", (1, 16, 16), 10, _digits(2), "unet"))
register_dataset(Dataset("digits_train", (1, 8, 8), 10, _digits_train, "unet"))
# (latent_channels, 4, 4) of data.latent.LATENT_AUTOENCODER; load_data checks the shape
register_dataset(Dataset("digits_latent", (2, 4, 4), 10, _digits_latent, "unet"))
register_dataset(Dataset("digits_frames", (1, 16, 16), 10, _digits_frames, "unet"))
for _name in TOY2D_NAMES:
    register_dataset(Dataset(_name, (2,), None, _toy2d(_name), "mlp"))
