"""The text-conditioned latent model: cross-attention, padding, the null caption, the cache."""

from __future__ import annotations

import pytest
import torch

import diffusion_notes.text2image as t2i
from diffusion_notes.data.captions import (
    DIGIT_WORDS,
    PAD_ID,
    WORD_ID,
    fit_terciles,
    null_tokens,
    tokenize,
)
from diffusion_notes.denoiser import Denoiser
from diffusion_notes.guidance import classifier_free
from diffusion_notes.models.text_encoder import CrossAttention, TextEncoder
from diffusion_notes.models.text_unet import TextUNet
from diffusion_notes.schedules import make_schedule


def _randomise(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights everywhere (the zero-initialised output layers too), so that every path
    carries signal."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g))
    return model.eval()


def test_cross_attention_with_one_token_adds_a_constant_at_every_pixel() -> None:
    """One key: softmax weight 1 for every query, so the output is h + W_o (W_v c + b_v) + b_o,
    whatever the queries (image features) are."""
    layer = _randomise(CrossAttention(channels=16, context_dim=12, heads=2))
    h = torch.randn(3, 16, 4, 4)
    c = torch.randn(3, 5, 12)
    pad = torch.ones(3, 5, dtype=torch.bool)
    pad[:, 2] = False  # only token 2 is real
    layer.keep_weights = True
    with torch.no_grad():
        out = layer(h, c, pad)
        const = layer.out(layer.v(c[:, 2]))  # W_o (W_v c + b_v) + b_o, (3, 16)
    expected = h + const[:, :, None, None]
    # float32 sums of ~16 terms of size ~1: agreement to 1e-5
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    w = layer.last_weights
    assert torch.equal(w[..., 2], torch.ones_like(w[..., 2]))  # all the weight on the one key
    # with two real tokens the output does depend on the query: not a constant any more
    pad[:, 3] = False
    with torch.no_grad():
        diff = layer(h, c, pad) - h
    assert diff.std(dim=(2, 3)).max() > 1e-3


def test_single_token_captions_make_a_class_conditional_model() -> None:
    """Fed one-word captions ("seven"), the text model is the unconditional UNet plus a learned
    per-class vector added at every position of every block: a class-conditional model."""
    model = _randomise(TextUNet(in_channels=2, base_channels=8, text_dim=16))
    ids = torch.tensor([WORD_ID[w] for w in DIGIT_WORDS])
    with torch.no_grad():
        ctx, _ = model.text(ids[:, None])  # (10, 1, D): each digit word alone
        table = [layer.out(layer.v(ctx[:, 0])) for layer in model.cross]  # per block, (10, C)
        y = torch.tensor([7, 0, 3, 3, 9])
        x, t = torch.randn(5, 2, 4, 4), torch.tensor([10, 500, 999, 0, 250])
        out = model(x, t, ids[y][:, None])
        as_class = model.unet(x, t, mix=lambda k, h: h + table[k][y][:, :, None, None])
    torch.testing.assert_close(out, as_class, atol=1e-5, rtol=0)
    assert (out[2] - out[3]).abs().max() > 1e-3  # same class, different x_t and t: differ


def test_padding_does_not_change_the_output() -> None:
    model = _randomise(TextUNet(in_channels=2, base_channels=8, text_dim=16), seed=1)
    caps = ["a thick seven, tilted left", "a one", ""]
    x, t = torch.randn(3, 2, 4, 4), torch.tensor([100, 400, 800])
    with torch.no_grad():
        long = model(x, t, tokenize(caps, length=8))
        short = model(x, t, tokenize(caps, length=6))
        # (a random change: a constant shift of all components would vanish in the LayerNorms)
        kick = torch.randn(16, generator=torch.Generator().manual_seed(3))
        model.text.token.weight[PAD_ID] += kick  # the padding's embedding is never read
        pad_changed = model(x, t, tokenize(caps, length=8))
        model.text.token.weight[WORD_ID["one"]] += kick  # a word's embedding is
        word_changed = model(x, t, tokenize(caps, length=8))
    torch.testing.assert_close(short, long, atol=1e-5, rtol=0)
    torch.testing.assert_close(pad_changed, long, atol=1e-5, rtol=0)
    assert (word_changed[1] - long[1]).abs().max() > 1e-3
    torch.testing.assert_close(word_changed[[0, 2]], long[[0, 2]], atol=1e-5, rtol=0)


def test_encoder_errors() -> None:
    enc = TextEncoder(vocab_size=21, dim=16)
    with pytest.raises(ValueError, match="at least one non-padding token"):
        enc(torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"0\.\.20"):
        enc(torch.tensor([[21, 0]]))
    with pytest.raises(ValueError, match="at most 8"):
        enc(torch.ones(1, 9, dtype=torch.long))
    model = TextUNet(base_channels=8, text_dim=16)
    with pytest.raises(ValueError, match="batch=2"):
        model(torch.zeros(2, 2, 4, 4), torch.zeros(2, dtype=torch.long), tokenize(["a one"]))


def test_the_empty_caption_is_the_null_condition_of_cfg() -> None:
    """CFG through the package's ClassifierFreeGuidance with token-sequence conditions: scale 0
    is the model on the empty caption, scale 1 the model on the caption, and in between the
    affine combination eps_null + s (eps_cap - eps_null)."""
    model = _randomise(TextUNet(in_channels=2, base_channels=8, text_dim=16), seed=2)
    sched = make_schedule("linear", 1000)
    caps = tokenize(["a thin two", "a large eight, tilted right"])
    x = torch.randn(2, 2, 4, 4)
    with torch.no_grad():
        e_cap = Denoiser(model, sched, cond=caps)(x, 300).eps
        e_null = Denoiser(model, sched, cond=null_tokens(2))(x, 300).eps
        for s in (0.0, 1.0, 3.0):
            guided = classifier_free(Denoiser(model, sched, cond=caps), null_cond=null_tokens(1),
                                     scale=s)(x, 300).eps
            torch.testing.assert_close(guided, e_null + s * (e_cap - e_null), atol=1e-5,
                                       rtol=1e-5)
    assert (e_cap - e_null).abs().max() > 1e-3
    with pytest.raises(ValueError, match="3 token sequences for a batch of 2"):
        classifier_free(Denoiser(model, sched, cond=tokenize(["a one"] * 3)),
                        null_cond=null_tokens(1), scale=2.0)(x, 300)


def test_caption_dropout_rate_and_form() -> None:
    tok = tokenize(["a thick seven, tilted left"] * 4000)
    out = t2i.drop_captions(tok, 0.1, torch.Generator().manual_seed(0))
    dropped = (out != tok).any(1)
    # binomial(4000, 0.1): std 0.0047, so 0.1 +- 0.02 is over 4 std
    assert abs(float(dropped.double().mean()) - 0.1) < 0.02
    assert torch.equal(out[dropped], null_tokens(int(dropped.sum())))
    assert torch.equal(out[~dropped], tok[~dropped])


def test_training_lowers_the_loss_and_the_model_is_cached(tmp_path, monkeypatch) -> None:
    """A tiny run on stand-in data (random 'latents' whose mean is set by the caption's digit):
    the loss falls, and the second call loads the same weights from the cache."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(40) % 4
    images = torch.rand(40, 1, 8, 8, generator=g) * 2 - 1
    terc = fit_terciles(images)
    from diffusion_notes.data.captions import caption_digits
    caps = caption_digits(images, labels, terc)
    z = torch.randn(40, 2, 4, 4, generator=g) * 0.3 + labels.view(-1, 1, 1, 1).float() - 1.5
    data = t2i.CaptionedLatents(z, tuple(caps), tokenize(caps), labels, terc)
    monkeypatch.setattr(t2i, "captioned_latents", lambda: data)
    cfg = t2i.TextToImageConfig(steps=120, batch_size=32, width=8, text_dim=16,
                                warmup_steps=10)
    model, info = t2i.get_text_model(cfg, root=tmp_path, progress=False)
    assert not info.from_cache and len(info.losses) == 120
    first, last = sum(info.losses[:20]) / 20, sum(info.losses[-20:]) / 20
    # eps has unit variance, so the untrained loss is about 1; learning the digit-dependent
    # mean must take a fifth of it off within 120 steps
    assert last < 0.8 * first, (first, last)
    again, info2 = t2i.get_text_model(cfg, root=tmp_path, progress=False)
    assert info2.from_cache and info2.terciles == terc
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with torch.no_grad():
        lat = t2i.generate_latents(again, t2i.schedule_for(cfg), ["a zero", "a three"],
                                   scale=2.0, n_steps=4, generator=torch.Generator().manual_seed(0))
    assert lat.shape == (2, 2, 4, 4) and torch.isfinite(lat).all()
