"""Super-resolution (models/sr.py, img2img_eval.py): the data pipeline's downsampling
consistency, the conditioning's shapes and effect, the cache, the measures."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion_notes.data.digits import digits_split
from diffusion_notes.img2img_eval import blocky_sketch, flip_pixels, psnr, sample_sr
from diffusion_notes.models.sr import (
    SRConfig,
    SRUNet,
    downsample,
    get_sr_model,
    sr_schedule,
    train_sr,
    upsample_bicubic,
    upsample_nearest,
)
from diffusion_notes.models.unet import UNet

pytestmark = pytest.mark.usefixtures("single_thread")
TINY = SRConfig(steps=30, batch_size=16, width=8, warmup_steps=5)


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    return digits_split()[1].images[:64]


@pytest.fixture(scope="module")
def tiny_net(digits):
    net, losses = train_sr(TINY, digits_split()[0].images, progress=False)
    return net, losses


# ----------------------------------------------------------------------------- data pipeline


def test_downsample_is_the_mean_of_each_2x2_block(digits) -> None:
    x = digits
    by_hand = x.reshape(-1, 1, 4, 2, 4, 2).mean(dim=(3, 5))
    torch.testing.assert_close(downsample(x), by_hand, rtol=0, atol=1e-7)
    assert downsample(x).shape == (64, 1, 4, 4)


def test_nearest_upsampling_is_a_right_inverse_of_downsampling(digits) -> None:
    """downsample(upsample(low)) = low exactly: repeating a pixel 2x2 and averaging the block
    gives it back (four equal float32 numbers average exactly)."""
    low = downsample(digits)
    assert torch.equal(downsample(upsample_nearest(low)), low)
    assert upsample_nearest(low).shape == digits.shape


def test_bicubic_baseline_keeps_constant_images_and_the_data_range() -> None:
    c = torch.full((2, 1, 4, 4), 0.3)
    torch.testing.assert_close(upsample_bicubic(c), torch.full((2, 1, 8, 8), 0.3))
    spiky = torch.tensor([-1.0, 1.0]).repeat(8)[:16].reshape(1, 1, 4, 4)
    out = upsample_bicubic(spiky)
    assert out.min() >= -1 and out.max() <= 1  # bicubic overshoots; the baseline clamps


def test_guides_have_the_stated_structure(digits) -> None:
    g = torch.Generator().manual_seed(0)
    flipped = flip_pixels(digits, 0.25, g)
    changed = (flipped != digits).double().mean().item()
    assert abs(changed - 0.25) < 0.03  # 4096 pixels: binomial std 0.007 (zero pixels stay)
    assert torch.equal(flipped.abs(), digits.abs())
    sketch = blocky_sketch(digits)
    assert set(sketch.unique().tolist()) <= {-1.0, 1.0}
    assert torch.equal(sketch, upsample_nearest(downsample(sketch)))  # constant on 2x2 blocks


# ----------------------------------------------------------------------------- conditioning


def test_sr_unet_shapes_and_errors() -> None:
    net = SRUNet(width=8)
    x, t = torch.randn(3, 1, 8, 8), torch.tensor([0, 10, 999])
    assert net(x, t, torch.randn(3, 1, 4, 4)).shape == (3, 1, 8, 8)
    assert net(x, t, torch.randn(3, 1, 8, 8)).shape == (3, 1, 8, 8)  # already upsampled
    assert net.unet.in_channels == 2 and net.unet.out.out_channels == 1
    with pytest.raises(ValueError, match="does not fit x_t"):
        net(x, t, torch.randn(3, 1, 3, 3))
    # the existing UNet is unchanged: one channel in, one out, by default
    assert UNet().out.out_channels == 1 and UNet().in_channels == 1


def test_low_res_conditioning_changes_the_prediction(tiny_net, digits) -> None:
    """Same x_t and t, two different low-res images: different eps predictions, and the same
    low-res image twice: the same prediction (the network is deterministic)."""
    net, losses = tiny_net
    x, t = torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(1)), torch.full(
        (64,), 300)
    low_a, low_b = downsample(digits), downsample(digits.flip(0))
    with torch.no_grad():
        a, a2, b = net(x, t, low_a), net(x, t, low_a), net(x, t, low_b)
    assert torch.equal(a, a2)
    # relative change well above float round-off (measured ~0.1 after 30 tiny steps)
    assert (a - b).norm() > 1e-3 * a.norm()
    assert len(losses) == TINY.steps and all(math.isfinite(v) for v in losses)


def test_sampled_outputs_depend_on_the_low_res_input(tiny_net, digits) -> None:
    net, _ = tiny_net
    s = sr_schedule(TINY)
    low = downsample(digits[:8])
    a = sample_sr(net, s, low, n_steps=5, seed=0, progress=False)
    b = sample_sr(net, s, low.flip(0), n_steps=5, seed=0, progress=False)
    assert a.shape == (8, 1, 8, 8) and not torch.equal(a, b)
    assert torch.equal(a, sample_sr(net, s, low, n_steps=5, seed=0, progress=False))


def test_sr_model_cache_round_trip(tmp_path) -> None:
    cfg = SRConfig(steps=3, batch_size=8, width=8, warmup_steps=1)
    net, info = get_sr_model(cfg, root=tmp_path, progress=False)
    again, info2 = get_sr_model(cfg, root=tmp_path, progress=False)
    assert not info.from_cache and info2.from_cache and info2.losses == info.losses
    for p, q in zip(net.parameters(), again.parameters(), strict=True):
        assert torch.equal(p, q)


def test_psnr_formula() -> None:
    assert psnr(0.04) == pytest.approx(20.0)  # 10 log10(4 / 0.04)
    assert psnr(0.0) == math.inf


def test_config_errors_name_the_value() -> None:
    with pytest.raises(ValueError, match="steps must be >= 1, got 0"):
        SRConfig(steps=0)
    with pytest.raises(ValueError, match="ema_decay"):
        SRConfig(ema_decay=1.0)
