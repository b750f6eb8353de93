"""The digits VAE: shapes, the latent scaling factor, the cache, and the latent dataset."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

import diffusion_notes.data.latent as latent
from diffusion_notes.data.digits import digits_split
from diffusion_notes.models.autoencoder import (
    AutoencoderConfig,
    DigitsVAE,
    get_autoencoder,
    train_autoencoder,
)
from diffusion_notes.train import TrainConfig, build_model, load_data

TINY = AutoencoderConfig(width=8, steps=15, batch_size=32)


def test_encode_decode_shapes_and_errors() -> None:
    vae = DigitsVAE(latent_channels=3, width=8).eval()
    x = torch.rand(5, 1, 8, 8) * 2 - 1
    z = vae.encode(x)
    assert z.shape == (5, 3, 4, 4)
    assert vae.decode(z).shape == (5, 1, 8, 8)
    with pytest.raises(ValueError, match=r"\(B, 1, 8, 8\)"):
        vae.encode(torch.zeros(5, 1, 16, 16))
    with pytest.raises(ValueError, match=r"\(B, 3, 4, 4\)"):
        vae.decode(torch.zeros(5, 2, 4, 4))


def test_scaling_gives_unit_variance_latents_and_cancels_in_the_round_trip() -> None:
    data = digits_split()[0].images[:200]
    vae, losses = train_autoencoder(TINY, data, progress=False)
    assert len(losses) == TINY.steps
    with torch.no_grad():
        z = vae.encode(data)
        mu = vae.posterior(data)[0]
        # scale = 1 / std(mu) exactly, so std(scale * mu) = 1 up to float32 rounding
        assert float(z.std()) == pytest.approx(1.0, abs=1e-5)
        assert float(vae.scale) == pytest.approx(1.0 / float(mu.std()), rel=1e-6)
        assert abs(float(vae.scale) - 1.0) > 1e-3  # the factor is not trivially 1
        # decode divides the factor back out: D(scale * mu) = dec(mu)
        torch.testing.assert_close(vae.decode(z), vae.dec(mu), rtol=1e-5, atol=1e-5)


def test_cache_returns_the_same_autoencoder(tmp_path) -> None:
    vae, info = get_autoencoder(TINY, root=tmp_path, progress=False)
    again, info2 = get_autoencoder(TINY, root=tmp_path, progress=False)
    assert not info.from_cache and info2.from_cache and info2.path == info.path
    assert info2.scale == info.scale
    for a, b in zip(vae.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_latent_dataset_round_trip(tmp_path, monkeypatch) -> None:
    """digits_latent = the training split encoded by the cached VAE: same labels, unit-variance
    latents that decode to what the VAE reconstructs, and a UNet that takes them."""
    monkeypatch.setenv("DIFFUSION_NOTES_CACHE", str(tmp_path))
    monkeypatch.setattr(latent, "LATENT_AUTOENCODER", replace(TINY, latent_channels=2))
    train = digits_split()[0]
    z, y = load_data(TrainConfig(data="digits_latent", class_conditional=True))
    assert z.shape == (len(train.images), 2, 4, 4) and torch.equal(y, train.labels)
    assert float(z.std()) == pytest.approx(1.0, abs=1e-5)
    vae = latent.latent_autoencoder(progress=False)
    # batching does not change the encoding; decoding the dataset = reconstructing the digits
    torch.testing.assert_close(latent.encode_digits(vae, train.images, batch_size=97), z)
    with torch.no_grad():
        recon = vae.dec(vae.posterior(train.images)[0])
    torch.testing.assert_close(latent.decode_latents(vae, z), recon, rtol=1e-5, atol=1e-5)
    net = build_model(TrainConfig(data="digits_latent", class_conditional=True, width=8))
    out = net(z[:4], torch.tensor([0, 10, 500, 999]), y[:4])
    assert out.shape == (4, 2, 4, 4)
