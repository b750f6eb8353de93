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
# # Lab: a small latent space for the digits
#
# Latent diffusion [@rombach2022high] runs the diffusion model in the latent space of a frozen
# autoencoder and decodes only its final sample. Here, at toy scale:
#
# 1. a small VAE squeezes each 8x8 digit (64 numbers) into a 2x4x4 latent (32 numbers);
# 2. the latent scaling factor that gives the latents unit variance;
# 3. what the round trip through the autoencoder costs: reconstruction error, and the digits
#    FD of reconstructed digits against the held-out digits, beside the real-data floor;
# 4. a class-conditional diffusion model trained on the latents, with exactly the recipe of the
#    shared pixel-space model, sampled and decoded;
# 5. the cost of one network call in each space, and the quality of both models' samples.
#
# Set `DIFFUSION_NOTES_SMOKE=1` for a seconds-long dry run with tiny settings.

# %%
import time
from dataclasses import replace

import matplotlib.pyplot as plt
import torch

import diffusion_notes.data.latent as latent
from diffusion_notes import get_device, is_smoke, pick
from diffusion_notes.cache import get_or_train
from diffusion_notes.consistency import balanced_labels, sample_guided_ddim
from diffusion_notes.data.digits import digits_split
from diffusion_notes.metrics import class_accuracy, get_digit_classifier, score_digits_held_out
from diffusion_notes.models.autoencoder import get_autoencoder
from diffusion_notes.plots import show_grid
from diffusion_notes.train import PRESETS, make_schedule_for

device = get_device()
lab_start = time.perf_counter()
if is_smoke():  # tiny stand-ins; the same code paths
    latent.LATENT_AUTOENCODER = replace(latent.LATENT_AUTOENCODER, steps=20, width=8)
ae_config = latent.LATENT_AUTOENCODER
latent_config = pick(PRESETS["digits_latent"],
                     replace(PRESETS["digits_latent"], steps=20, batch_size=32))
pixel_config = pick(PRESETS["digits_cond"], replace(PRESETS["digits_cond"], steps=20, batch_size=32))
train, held = digits_split()
W, N_STEPS = 1.0, 20  # guided DDIM: eps_c + W (eps_c - eps_u), 20 trailing steps
labels = balanced_labels(pick(64, 2))
print(f"device: {device}; smoke mode: {is_smoke()}; {ae_config}")

# %% [markdown]
# ## 1. The autoencoder
#
# Encoder: three 3x3 convolutions, the last with stride 2 (8x8 to 4x4), then a 1x1 convolution
# to a mean and a log-variance per latent element. Decoder: the mirror image with a
# nearest-neighbour upsampling. Trained as a VAE, reconstruction error plus a KL term to
# $\mathcal{N}(0, I)$ weighted by $10^{-4}$: Rombach et al.'s "KL-reg" choice, a weak pull that
# keeps the latent from drifting to arbitrary scales without making it a good prior. It is
# trained on the 80 % training split only and cached like every model.

# %%
vae, ae_info = get_autoencoder(ae_config)
print(f"autoencoder {'from cache' if ae_info.from_cache else 'trained'}: {ae_info.path.name}, "
      f"{ae_info.seconds:.0f} s; {sum(p.numel() for p in vae.parameters()) / 1e3:.0f}k "
      f"parameters; last-100-step reconstruction MSE {sum(ae_info.losses[-100:]) / len(ae_info.losses[-100:]):.4f}")

# %% [markdown]
# ## 2. The scaling factor
#
# The diffusion model's forward process $x_t = \sqrt{\bar\alpha_t}\, z + \sqrt{1-\bar\alpha_t}\,
# \epsilon$ assumes data of roughly unit scale: a latent ten times larger would keep its
# signal far longer into the schedule, a latent ten times smaller would drown early. The
# encoder's means have whatever scale training left them with, so the latent the diffusion
# model sees is $z = s\,\mu(x)$ with $s = 1/\operatorname{std}(\mu)$ over the training
# latents (Stable Diffusion's `scaling_factor` 0.18215 is the same idea for its autoencoder).

# %%
with torch.no_grad():
    mu = vae.posterior(train.images)[0]
z_train = latent.encode_digits(vae, train.images)
print(f"std of the raw posterior means: {mu.std().item():.3f} -> scaling factor "
      f"s = {ae_info.scale:.3f}; scaled latents: mean {z_train.mean().item():+.3f}, "
      f"std {z_train.std().item():.3f}")
print("per-channel std of the scaled latents:",
      [round(v, 3) for v in z_train.transpose(0, 1).flatten(1).std(1).tolist()])

# %% [markdown]
# ## 3. What the round trip costs
#
# Encode and decode every digit: mean squared error per pixel (pixels in $[-1, 1]$), on the
# training digits and on the held-out ones the autoencoder never saw. Then the digits FD: the
# held-out score's floor is the FD of the real training digits against the 359 held-out ones;
# scoring the *reconstructed* training digits against the same reference, with the same
# number of images, shows what the autoencoder alone costs before any diffusion model is
# involved.

# %%
recon_train = latent.decode_latents(vae, z_train)
recon_held = latent.decode_latents(vae, latent.encode_digits(vae, held.images))
mse_train = (recon_train - train.images).pow(2).mean().item()
mse_held = (recon_held - held.images).pow(2).mean().item()
classifier, cinfo = get_digit_classifier(device=device)
round_trip = score_digits_held_out(recon_train, classifier)
print(f"reconstruction MSE: training {mse_train:.4f}, held-out {mse_held:.4f} "
      f"(RMSE {mse_held ** 0.5:.3f} on a [-1, 1] scale; one grey level is {2 / 16:.3f})")
print(f"digits FD vs held-out: real training digits {round_trip.floor:.2f} (the floor), "
      f"their reconstructions {round_trip.fd:.2f}: the round trip adds "
      f"{round_trip.fd - round_trip.floor:+.2f}")
print(f"classifier accuracy on reconstructed held-out digits: "
      f"{class_accuracy(recon_held, held.labels, classifier):.3f} "
      f"(on the originals {class_accuracy(held.images, held.labels, classifier):.3f})")
fig, axes = plt.subplots(1, 2, figsize=(9, 2.6))
show_grid(held.images[:30], axes[0], "held-out digits", cols=10)
show_grid(recon_held[:30], axes[1], "their reconstructions", cols=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Diffusion in the latent space
#
# `train.PRESETS["digits_latent"]` is `digits_cond`'s recipe (class-conditional UNet, AdamW on
# batches of 128, label dropout 0.1, linear schedule, $T = 1000$) with twice its base channels
# (32 against 16) and fewer steps (1500 against 2000), on the dataset `digits_latent`: the
# scaled latents of the same training digits. The UNet runs at 4x4 and 2x2 instead of 8x8 and
# 4x4. Both models are sampled the same way: guided DDIM, 20 steps, $w = 1$, 64 samples of
# every digit, the same seed; the latent samples are decoded once at the end.

# %%
latent_model, lat_info = get_or_train(latent_config, device=device)
pixel_model, pix_info = get_or_train(pixel_config, device=device)
print(f"latent model {'from cache' if lat_info.from_cache else 'trained'}: "
      f"{lat_info.seconds:.0f} s of training; pixel model: {pix_info.seconds:.0f} s")
schedule = make_schedule_for(latent_config)
zshape = (ae_config.latent_channels, 4, 4)


def timed(fn):
    start = time.perf_counter()
    with torch.no_grad():
        out = fn()
    return out, time.perf_counter() - start


z_samples, t_latent = timed(lambda: sample_guided_ddim(
    latent_model, schedule, labels, n_steps=N_STEPS, w=W, shape=zshape,
    generator=torch.Generator().manual_seed(0)))
decoded, t_decode = timed(lambda: latent.decode_latents(vae, z_samples.cpu()))
x_samples, t_pixel = timed(lambda: sample_guided_ddim(
    pixel_model, schedule, labels, n_steps=N_STEPS, w=W,
    generator=torch.Generator().manual_seed(0)).cpu())

# %% [markdown]
# ## 5. Cost and quality
#
# The cost of a network call grows with the number of positions it processes: a 4x4 latent
# has a quarter of the 8x8 image's positions at every level of the UNet. Here that saving is
# spent on width: the latent UNet has twice the pixel UNet's channels (32 against 16), and a
# convolution's cost grows with the square of the width, so per position it costs about four
# times as much. The printed ratio of one call's time is the net of the two; at Stable
# Diffusion's scale (a 64x64 latent of a 512x512 image, 64 times fewer positions) the saving
# wins by far. The decoder runs once per sample, not once per step. Quality is scored as everywhere in this part: digits FD
# against the held-out digits with its size-matched floor, precision, recall, and the share of
# samples read as the requested digit.

# %%
xb = torch.randn(256, 1, 8, 8, device=device)
zb = torch.randn(256, *zshape, device=device)
tb = torch.full((256,), 500, device=device)
yb = torch.arange(256, device=device) % 10
for _ in range(2):  # warm-up, then the timed calls
    _, call_pixel = timed(lambda: pixel_model(xb, tb, yb))
    _, call_latent = timed(lambda: latent_model(zb, tb, yb))
print(f"one network call on 256 inputs: pixel {1e3 * call_pixel:.1f} ms, latent "
      f"{1e3 * call_latent:.1f} ms ({call_pixel / call_latent:.1f}x cheaper)")
rows = {}
for name, samples, seconds in (("pixel space", x_samples, t_pixel),
                               ("latent space", decoded, t_latent + t_decode)):
    s = score_digits_held_out(samples, classifier)
    rows[name] = s
    print(f"{name:>12}: FD {s.fd:6.2f} (floor {s.floor:.2f}), precision {s.precision:.3f}, "
          f"recall {s.recall:.3f}, class accuracy {class_accuracy(samples, labels, classifier):.3f}, "
          f"{seconds * 64 / len(labels):.3f} s per 64 samples")
print(f"decoding: {t_decode * 64 / len(labels) * 1e3:.1f} ms per 64 samples")

fig, axes = plt.subplots(1, 2, figsize=(9, 2.8))
show = torch.arange(min(30, len(labels)))
show_grid(x_samples[show], axes[0], f"pixel-space model, DDIM-{N_STEPS}", cols=10)
show_grid(decoded[show], axes[1], f"latent-space model, DDIM-{N_STEPS}, decoded", cols=10)
fig.tight_layout()
plt.show()
print(f"lab run time: {time.perf_counter() - lab_start:.0f} s")
