"""Shapes, conditioning and input checks of the tiny networks."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion_notes.models import DigitClassifier, MLPDenoiser, UNet, timestep_embedding


def _perturb(net: torch.nn.Module) -> torch.nn.Module:
    """Add noise to every weight: the zero-initialised output layers (which make an untrained
    denoiser output 0 and each residual block the identity) would hide the t and y paths."""
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return net


def test_timestep_embedding_is_sin_cos_of_scaled_t() -> None:
    t = torch.tensor([0, 1, 500])
    emb = timestep_embedding(t, 8)
    assert emb.shape == (3, 8)
    # t = 0: sin(0) = 0 in the first half, cos(0) = 1 in the second
    assert torch.equal(emb[0], torch.tensor([0.0] * 4 + [1.0] * 4))
    # the first frequency is 1: sin(t), cos(t); the k-th is 10000^(-k/4)
    assert emb[2, 0].item() == pytest.approx(math.sin(500.0), abs=1e-4)
    assert emb[1, 1].item() == pytest.approx(math.sin(10000 ** (-1 / 4)), abs=1e-6)
    # distinct steps get distinct codes
    assert not torch.allclose(emb[1], emb[2])
    with pytest.raises(ValueError, match="even"):
        timestep_embedding(t, 7)


@pytest.mark.parametrize("size, mult", [(8, (1, 2)), (16, (1, 2, 2))])
def test_unet_shapes_and_time_dependence(size: int, mult: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    net = _perturb(UNet(base_channels=8, channel_mult=mult))
    x = torch.randn(3, 1, size, size)
    out1 = net(x, torch.tensor([1, 1, 1]))
    out2 = net(x, torch.tensor([900, 900, 900]))
    assert out1.shape == x.shape
    assert not torch.allclose(out1, out2), "output ignores t"
    assert torch.equal(net(x, torch.tensor(1)), out1), "a 0-dim t broadcasts over the batch"


def test_unet_output_starts_at_zero() -> None:
    net = UNet(base_channels=8)
    assert torch.count_nonzero(net(torch.randn(2, 1, 8, 8), torch.tensor([3, 4]))) == 0


def test_unet_class_conditioning_and_null_label() -> None:
    torch.manual_seed(0)
    net = _perturb(UNet(base_channels=8, num_classes=10))
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([10, 10])
    a = net(x, t, torch.tensor([3, 3]))
    b = net(x, t, torch.tensor([7, 7]))
    null = net(x, t, torch.tensor([10, 10]))
    assert not torch.allclose(a, b), "output ignores the label"
    assert torch.equal(net(x, t), null), "y=None means the 'no label' token (index 10)"
    with pytest.raises(ValueError, match=r"0\.\.10"):
        net(x, t, torch.tensor([11, 0]))
    with pytest.raises(ValueError, match="without num_classes"):
        UNet(base_channels=8)(x, t, torch.tensor([1, 1]))


def test_unet_rejects_bad_shapes() -> None:
    net = UNet(base_channels=8, channel_mult=(1, 2, 2))
    with pytest.raises(ValueError, match="divisible by 4"):
        net(torch.randn(1, 1, 6, 6), torch.tensor([0]))
    with pytest.raises(ValueError, match=r"\(batch, 1, H, W\)"):
        net(torch.randn(1, 3, 8, 8), torch.tensor([0]))


def test_mlp_shapes_and_time_dependence() -> None:
    torch.manual_seed(0)
    net = _perturb(MLPDenoiser(width=32, depth=2))
    x = torch.randn(5, 2)
    out = net(x, torch.full((5,), 3))
    assert out.shape == (5, 2)
    assert not torch.allclose(out, net(x, torch.full((5,), 700)))
    with pytest.raises(ValueError, match=r"\(batch, 2\)"):
        net(torch.randn(5, 3), torch.zeros(5, dtype=torch.long))


def test_classifier_shapes() -> None:
    clf = DigitClassifier(feature_dim=32).eval()
    x8 = torch.rand(4, 1, 8, 8) * 2 - 1
    assert clf(x8).shape == (4, 10)
    assert clf.features(x8).shape == (4, 32)
    # a 16x16 image made by pixel repetition is pooled back to the same 8x8 image
    x16 = x8.repeat_interleave(2, 2).repeat_interleave(2, 3)
    assert torch.allclose(clf.features(x16), clf.features(x8), atol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        clf(torch.rand(4, 1, 12, 12))
