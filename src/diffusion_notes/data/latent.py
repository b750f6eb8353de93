"""The digits in the latent space of the small VAE: the data of the latent diffusion model.

``latent_digits()`` encodes the 80 % training split (``digits_train``) with the cached
autoencoder of :data:`LATENT_AUTOENCODER` into scaled latents (unit variance; see
:mod:`diffusion_notes.models.autoencoder`), with their labels. The dataset name
``digits_latent`` of :class:`~diffusion_notes.train.TrainConfig` means exactly this
autoencoder: change :data:`LATENT_AUTOENCODER` and the cached latent models must be
retrained (bump ``cache_store.CACHE_VERSION``).
"""

from __future__ import annotations

import torch

from diffusion_notes.models.autoencoder import AutoencoderConfig, DigitsVAE, get_autoencoder

LATENT_AUTOENCODER = AutoencoderConfig()


def latent_autoencoder(*, progress: bool = True) -> DigitsVAE:
    """The autoencoder that defines the ``digits_latent`` dataset (from the model cache)."""
    return get_autoencoder(LATENT_AUTOENCODER, progress=progress)[0]


@torch.no_grad()
def encode_digits(vae: DigitsVAE, images: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Scaled latents ``scale * mu(x)`` of digits (N, 1, 8, 8), on CPU."""
    dev = vae.scale.device
    return torch.cat([vae.encode(images[i : i + batch_size].to(dev)).cpu()
                      for i in range(0, len(images), batch_size)])


@torch.no_grad()
def decode_latents(vae: DigitsVAE, z: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Digits (N, 1, 8, 8) decoded from scaled latents, on CPU."""
    dev = vae.scale.device
    return torch.cat([vae.decode(z[i : i + batch_size].to(dev)).cpu()
                      for i in range(0, len(z), batch_size)])


def latent_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """``(latents, labels)`` of the 1438 training digits: (N, C, 4, 4) float32 and (N,) int64."""
    from diffusion_notes.data.digits import digits_split

    train = digits_split()[0]
    return encode_digits(latent_autoencoder(), train.images), train.labels
