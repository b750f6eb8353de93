# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lab: text-to-image in miniature
#
# A text-to-image model is a conditional diffusion model whose condition is a sentence. The
# recipe of latent diffusion [@rombach2022high], GLIDE [@nichol2021glide], Imagen
# [@Saharia2022PhotorealisticTD] and unCLIP [@ramesh2022hierarchical], shrunk to the 8x8
# digits:
#
# 1. captions synthesised from each digit's label and its measured strokes ("a thick seven",
#    "a small zero, tilted left"), with a vocabulary of 19 words (plus the comma,
#    a padding token and the null caption: 22 tokens);
# 2. a tiny text encoder (one transformer layer) and cross-attention from the image features
#    to the caption's tokens;
# 3. a latent diffusion model on the 2x4x4 latents of the small VAE, trained jointly with the
#    text encoder, the caption dropped 10 % of the time;
# 4. sampling with classifier-free guidance on the caption [@ho2022classifier] at a few scales;
# 5. **changing one word** of a caption with the same starting noise, and measuring whether the
#    image changes the way the word says.
#
# Set `DIFFUSION_NOTES_SMOKE=1` for a seconds-long dry run with tiny settings.

# %%
import time
from dataclasses import replace

import matplotlib.pyplot as plt
import torch

import diffusion_notes.data.latent as latent
from diffusion_notes import get_device, is_smoke, pick
from diffusion_notes.data.captions import (
    MAX_TOKENS,
    VOCAB,
    caption_digits,
    fit_terciles,
    make_caption,
    tokenize,
    words,
)
from diffusion_notes.data.digits import digits_split
from diffusion_notes.metrics import get_digit_classifier
from diffusion_notes.models.autoencoder import get_autoencoder
from diffusion_notes.plots import describe, plot_loss_curve, show_grid
from diffusion_notes.text2image import TextToImageConfig, generate, get_text_model, schedule_for
from diffusion_notes.text2image_eval import caption_accuracy, digit_swap, word_effect

device = get_device()
lab_start = time.perf_counter()
if is_smoke():  # tiny stand-ins; the same code paths
    latent.LATENT_AUTOENCODER = replace(latent.LATENT_AUTOENCODER, steps=20, width=8)
config = pick(TextToImageConfig(),
              TextToImageConfig(steps=20, batch_size=32, width=8, text_dim=16))
SCALE, N_STEPS = 3.0, 20  # CFG scale (diffusers' guidance_scale; 1 = no guidance), DDIM steps
N_SEEDS = pick(16, 1)  # same-seed pairs per digit and property word
train, held = digits_split()
print(f"device: {device}; smoke mode: {is_smoke()}; {config}")

# %% [markdown]
# ## 1. Captions from measured strokes
#
# Nobody captioned scikit-learn's digits, so the captions are made from what can be measured
# (`diffusion_notes.data.strokes`): **thickness** (mean ink), **size** (radius of gyration of
# the ink, in pixels) and **slant** (the shear of the ink; positive = the top leans right).
# Each property is cut at its terciles on the training split: the lowest third gets "thin",
# "small" or "tilted left", the highest third "thick", "large" or "tilted right", and the
# middle third **no word**. So captions vary in length, and a missing word means "ordinary".
# The label gives the digit word. The empty caption is the null condition for guidance: it is
# the single token `<null>`, as the class model's "no label".

# %%
terc = fit_terciles(train.images)
captions = caption_digits(train.images, train.labels, terc)
for name, (lo, hi) in (("thickness", terc.thickness), ("size", terc.size), ("slant", terc.slant)):
    print(f"{name:>9} terciles on the training split: {lo:+.3f} | {hi:+.3f}")
print(f"vocabulary ({len(VOCAB)} tokens): {' '.join(VOCAB)}")
lengths = torch.tensor([len(words(c)) for c in captions])
print("caption lengths (tokens):",
      {int(k): int((lengths == k).sum()) for k in lengths.unique()}, f"(padded to {MAX_TOKENS})")
print(f"distinct captions: {len(set(captions))} for {len(captions)} training digits")
print("ids of", repr(captions[0]), "->", tokenize([captions[0]])[0].tolist())

fig, axes = plt.subplots(2, 6, figsize=(11, 4.4))
for ax, i in zip(axes.flat, range(12), strict=False):
    ax.imshow(train.images[i, 0], cmap="gray_r", vmin=-1, vmax=1)
    ax.set_title(captions[i].replace(", ", ",\n"), fontsize=8)
    ax.axis("off")
describe(fig, "Twelve training digits, each with its synthesised caption above it, e.g. "
         f"'{captions[0]}'.")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 2. Text encoder and cross-attention
#
# The text encoder embeds each token, adds a learned position vector and runs one pre-norm
# transformer layer (self-attention that ignores padding, then an MLP). Its output, one
# 64-dimensional vector per token, is read by a cross-attention layer after every ResBlock of
# the package's UNet: each pixel's feature vector is a query, the caption's tokens give keys
# and values, $h \leftarrow h + W_o\,\mathrm{softmax}(QK^\top/\sqrt{d})\,V$, padding keys
# masked out [@rombach2022high, sec. 3.3]. With a one-token caption the softmax has one entry,
# weight 1 at every pixel, so the layer adds the same vector $W_o W_v e$ everywhere: exactly
# how a class label enters the class-conditional UNet (the tests check this). With several
# tokens each pixel chooses which words to read.
#
# The denoiser runs on the scaled 2x4x4 latents of the cached VAE (as in the latent-diffusion
# lab), so its feature maps are 4x4 and 2x2.

# %%
vae, ae_info = get_autoencoder(latent.LATENT_AUTOENCODER)
classifier, cinfo = get_digit_classifier(device=device)
t0 = time.perf_counter()
model, info = get_text_model(config, device=device)
load_seconds = time.perf_counter() - t0
schedule = schedule_for(config)
n_text = sum(p.numel() for p in model.text.parameters())
n_cross = sum(p.numel() for p in model.cross.parameters())
n_unet = sum(p.numel() for p in model.unet.parameters())
print(f"autoencoder {'from cache' if ae_info.from_cache else 'trained'} ({ae_info.seconds:.0f} s "
      f"when trained); digit classifier held-out accuracy {cinfo.accuracy:.3f}")
print(f"parameters: text encoder {n_text / 1e3:.1f}k, cross-attention {n_cross / 1e3:.1f}k "
      f"({len(model.cross)} layers), UNet {n_unet / 1e3:.1f}k")

# %% [markdown]
# ## 3. Training
#
# The text encoder and the UNet are trained together on the eps-prediction loss, the caption
# replaced by the empty caption 10 % of the time; the weights kept are an EMA, as for every
# model in the package. Trained once, then cached.

# %%
print(f"text-to-image model {'from cache' if info.from_cache else 'trained'}: "
      f"{info.seconds:.0f} s of training ({config.steps} steps of {config.batch_size}); "
      f"loaded or built in {load_seconds:.0f} s")
last = info.losses[-100:]
print(f"mean loss over the last {len(last)} steps: {sum(last) / len(last):.4f}")
plot_loss_curve(info.losses, "text-to-image model: training loss (captions dropped 10 %)");

# %% [markdown]
# An attention map: noise a sample of "a thick seven, tilted left" to $t = 500$, run the model
# once and show, for every token, the weight each of the 16 pixels of the first 4x4 block gives
# it (each pixel's weights sum to 1 over the tokens).

# %%
cap = "a thick seven, tilted left"
z = latent.encode_digits(vae, generate(model, schedule, [cap], vae=vae, scale=SCALE,
                                       n_steps=N_STEPS, seed=1))
zt = schedule.alpha_bar[500].sqrt().float() * z + (1 - schedule.alpha_bar[500]).sqrt().float() \
    * torch.randn(z.shape, generator=torch.Generator().manual_seed(0))
model.keep_attention(True)
with torch.no_grad():
    model(zt.to(device), torch.tensor([500], device=device), tokenize([cap]).to(device))
att = model.cross[0].last_weights[0].mean(0).cpu()  # (16 pixels, L tokens), heads averaged
model.keep_attention(False)
toks = words(cap)
fig, axes = plt.subplots(1, len(toks) + 1, figsize=(1.6 * (len(toks) + 1), 2.0))
axes[0].imshow(latent.decode_latents(vae, z)[0, 0], cmap="gray_r", vmin=-1, vmax=1)
axes[0].set_title("sample", fontsize=8)
for ax, j, w in zip(axes[1:], range(len(toks)), toks, strict=True):
    ax.imshow(att[:, j].reshape(4, 4), cmap="viridis", vmin=0, vmax=float(att.max()))
    ax.set_title(f"'{w}'", fontsize=8)
for ax in axes:
    ax.axis("off")
describe(fig, f"A sample of '{cap}' and, for each of its {len(toks)} tokens, a 4x4 map of the "
         "cross-attention weight the first block's pixels give that token.")
fig.tight_layout()
plt.show()
print("share of attention per token (mean over pixels):",
      {w: round(float(att[:, j].mean()), 3) for j, w in enumerate(toks)})

# %% [markdown]
# ## 4. Sampling with classifier-free guidance
#
# $\hat\epsilon = \epsilon(z_t, \varnothing) + \gamma\,(\epsilon(z_t, c) - \epsilon(z_t,
# \varnothing))$ with the empty caption as $\varnothing$, through the package's one CFG
# implementation (`guidance.classifier_free`), then 20 DDIM steps and the VAE's decoder. The
# captions are those of the 359 held-out digits (their own tercile words); the digit
# classifier, trained on other digits, reads each sample, and we count how often it reads the
# caption's digit (chance: 10 %).

# %%
held_caps = caption_digits(held.images, held.labels, terc)
n_held = pick(len(held_caps), 10)
scales = pick([1.0, 2.0, 3.0, 5.0], [1.0, 3.0])
acc, grids = {}, {}
t0 = time.perf_counter()
for s in scales:
    acc[s], x = caption_accuracy(model, schedule, vae, held_caps[:n_held], held.labels[:n_held],
                                 classifier, scale=s, n_steps=N_STEPS)
    grids[s] = x
    print(f"guidance scale {s:.0f}: caption's digit read in {acc[s]:.3f} of {n_held} samples")
sample_seconds = (time.perf_counter() - t0) / len(scales)
print(f"{sample_seconds:.1f} s per {n_held} samples (DDIM-{N_STEPS}, two branches per step)")
fig, axes = plt.subplots(1, len(scales), figsize=(3 * len(scales), 2.6))
for ax, s in zip(axes, scales, strict=True):
    show_grid(grids[s][:20], ax, f"scale {s:.0f}: accuracy {acc[s]:.2f}", cols=5)
describe(fig, "Samples for the first 20 held-out captions at each guidance scale, the same "
         "starting noise in every panel.")
fig.tight_layout()
plt.show()
print("the first captions:", held_caps[:5])

# %% [markdown]
# Guidance trades variety for fidelity here as with class labels: compare the accuracy at
# scale 1 (the plain conditional model) with the guided scales above. The lab samples with
# scale 3 from here on (`SCALE`).

# %% [markdown]
# ## 5. Change one word
#
# Same starting noise, captions differing in exactly one word: the two ends of one property
# ("thin" against "thick"), and the digit word. For each property, every digit gets
# `N_SEEDS` noises; we measure the property of each sample with the code that made the
# captions, report the mean per word (with "no word", the middle third, between them) against
# the training terciles, and the share of same-seed pairs in which the second word's sample
# measures higher (50 % would mean the word does nothing).

# %%
bounds = {"thickness": terc.thickness, "size": terc.size, "slant": terc.slant}
effects, pair_images = {}, {}
for prop in ("thickness", "size", "slant"):
    eff, imgs = word_effect(model, schedule, vae, prop, boundaries=bounds[prop],
                            n_seeds=N_SEEDS, scale=SCALE, n_steps=N_STEPS)
    effects[prop], pair_images[prop] = eff, imgs
    lo, hi = eff.boundaries
    print(f"{prop:>9}: mean '{eff.low}' {eff.means[eff.low]:+.3f}, no word "
          f"{eff.means['']:+.3f}, '{eff.high}' {eff.means[eff.high]:+.3f}  (training terciles "
          f"{lo:+.3f} | {hi:+.3f}); '{eff.high}' above '{eff.low}' in "
          f"{eff.agreement:.3f} of {eff.n_pairs} same-seed pairs")
swap, xb, xa = digit_swap(model, schedule, vae, classifier, n_seeds=N_SEEDS, scale=SCALE,
                          n_steps=N_STEPS)
print(f"digit word swapped (d -> d+5 mod 10): classifier reads the caption's digit in "
      f"{swap.accuracy_before:.3f} before and {swap.accuracy_after:.3f} after, "
      f"{swap.n_pairs} pairs")

# %% [markdown]
# How to read these lines: a word works when its mean lies beyond the training tercile it
# names (below the first cut for "thin", "small", "tilted left"; above the second for
# "thick", "large", "tilted right"), the caption without the word lands between the two, and
# the share of same-seed pairs is near 1. The noise is the same in both samples of a pair,
# so the difference is the word's doing. The classifier's reading of the swapped digit shows
# that one word also decides the digit while the noise stays fixed.
#
# The same eight noises for the digit three (columns), one row per caption:

# %%
three = [3 * N_SEEDS + k for k in range(min(8, N_SEEDS))]
rows = []
for prop in ("thickness", "size", "slant"):
    e = effects[prop]
    rows += [(make_caption(3, **{prop: e.low}), pair_images[prop][e.low][three]),
             (make_caption(3, **{prop: e.high}), pair_images[prop][e.high][three])]
rows += [("a three", xb[three]), ("an eight", xa[three])]
fig, axes = plt.subplots(len(rows), 1, figsize=(1.1 * len(three) + 2.2, 1.15 * len(rows)))
for ax, (c, imgs) in zip(axes, rows, strict=True):
    show_grid(imgs, ax, "", cols=len(three))
    ax.set_title(c, fontsize=8, loc="left")
describe(fig, "Rows of eight samples with the same starting noises: 'a thin three' vs 'a thick "
         "three', 'a small three' vs 'a large three', tilted left vs tilted right, and 'a three' "
         "vs 'an eight'.")
fig.tight_layout()
plt.show()
print(f"lab run time: {time.perf_counter() - lab_start:.0f} s")
