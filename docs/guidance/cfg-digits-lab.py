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
# # Lab: classifier-free guidance on digits
#
# One small UNet learns both $p(x \mid y)$ and $p(x)$ of the 8x8 digits: during training each
# label is replaced by a "no label" token (index 10) with probability 0.1
# [@ho2022classifier]. At sampling time `guidance.classifier_free` evaluates both branches in
# one batched call and extrapolates, $\hat\epsilon = \epsilon_u + \gamma(\epsilon_c - \epsilon_u)$
# ($\gamma = 1$: the conditional model, no guidance). We
#
# 1. train (or load from the cache) the shared class-conditional model `digits_cond`, trained on
#    the 80 % training split only;
# 2. look at samples of every class for several $\gamma$;
# 3. measure, as $\gamma$ grows, the class accuracy (a digit classifier that never saw the
#    held-out fifth of the data), the digits FD against those 359 held-out digits with its
#    real-data floor, precision and recall, and the diversity within a class;
# 4. repeat with guidance only in a limited interval of noise levels
#    [@kynkaanniemi2024applying].
#
# `DIFFUSION_NOTES_SMOKE=1` runs everything with tiny settings.

# %%
import time

import matplotlib.pyplot as plt
import torch

from diffusion_notes import get_device, is_smoke, pick
from diffusion_notes.cache import get_or_train
from diffusion_notes.denoiser import Denoiser
from diffusion_notes.guidance import classifier_free, sigma_of_alpha_bar
from diffusion_notes.guidance_eval import (
    ddim_sampler,
    evaluate_guided,
    format_table,
    plot_guidance_curves,
)
from diffusion_notes.metrics import get_digit_classifier
from diffusion_notes.plots import plot_loss_curve
from diffusion_notes.timesteps import timestep_pairs
from diffusion_notes.train import make_schedule_for, preset

device = get_device()
lab_start = time.perf_counter()
config = preset("digits_cond", **pick({}, {"steps": 20, "timesteps": 100, "batch_size": 32}))
schedule = make_schedule_for(config)
print(f"device: {device}; smoke mode: {is_smoke()}")
print(config)

# %% [markdown]
# ## 1. The class-conditional model

# %%
model, info = get_or_train(config, device=device)
print(f"{'loaded from cache' if info.from_cache else 'trained'}: {info.path.name}; "
      f"{sum(p.numel() for p in model.parameters()) / 1e3:.0f}k parameters; {info.steps} steps, "
      f"{info.seconds:.0f} s of training (as measured when it was trained)")
plot_loss_curve(info.losses, "digits_cond: training loss (labels dropped 10 % of the time)")
plt.show()
classifier, clf_info = get_digit_classifier(device=device)
print(f"judge: digit classifier, {clf_info.accuracy:.1%} accurate on the {clf_info.n_held_out} "
      "held-out digits")

# %% [markdown]
# ## 2. Samples per scale
#
# Rows are classes 0 to 9, the same starting noise in every panel; $\gamma = 0$ is the
# unconditional branch (the label is ignored), $\gamma = 1$ the conditional model. All panels
# use DDIM with 30 steps and clip $\hat x_0$ to the pixel range after guidance.

# %%
steps = pick(30, 4)
sampler = ddim_sampler(timestep_pairs(schedule.T, steps))
base = Denoiser(model, schedule, clip_x0=True)
per_row = 8
labels = torch.arange(10).repeat_interleave(per_row).to(device)
g = torch.Generator().manual_seed(0)
x_T = torch.randn(len(labels), 1, 8, 8, generator=g).to(device)
grid_scales = [0.0, 1.0, 2.0, 4.0]
fig, axes = plt.subplots(1, len(grid_scales), figsize=(3.4 * len(grid_scales), 4.4))
for ax, gamma in zip(axes, grid_scales, strict=True):
    den = classifier_free(base.with_cond(labels), null_cond=10, scale=gamma)
    x = sampler(den, x_T.clone(), torch.Generator().manual_seed(1)).cpu().clamp(-1, 1)
    canvas = torch.full((10 * 9 - 1, per_row * 9 - 1), -0.5)
    for k, im in enumerate(x):
        r, c = divmod(k, per_row)
        canvas[r * 9: r * 9 + 8, c * 9: c * 9 + 8] = im[0]
    ax.imshow(canvas, cmap="gray_r", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_title(f"$\\gamma$ = {gamma:g}" + (" (uncond.)" if gamma == 0 else
                                             " (cond.)" if gamma == 1 else ""))
    ax.axis("off")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 3. The curve: accuracy, FD, precision, recall, diversity
#
# 40 samples per class for each scale (`guidance_eval.evaluate_guided`, the measurement the
# benchmark uses). The FD floor is 400 real *training* digits against the same held-out
# reference: what real data score at this sample size.

# %%
n_per_class = pick(40, 3)
scales = pick([1.0, 1.25, 1.5, 2.0, 3.0, 5.0], [1.0, 3.0])
rows = []
t0 = time.perf_counter()
for gamma in scales:
    r, _, _ = evaluate_guided(
        lambda y, gamma=gamma: classifier_free(base.with_cond(y), null_cond=10, scale=gamma),
        sampler, classifier, method="cfg", scale=gamma, n_per_class=n_per_class, device=device)
    rows.append(r)
print(f"{len(scales)} scales in {time.perf_counter() - t0:.0f} s")
print(format_table(rows))

# %% [markdown]
# ## 4. Guidance in a limited interval
#
# Kynkäänniemi et al. guide only for noise levels $\sigma_t = \sqrt{(1-\bar\alpha_t)/\bar\alpha_t}$
# in an interval and use the conditional prediction elsewhere. On this schedule $\sigma_t$ runs
# from about 0.01 ($t = 0$) to about 157 ($t = 999$); we guide for $\sigma \in (0.3, 5]$,
# that is, the middle of the chain, and skip the unconditional call outside it.

# %%
interval = (0.3, 5.0)
inside = [t for t in range(schedule.T)
          if interval[0] < sigma_of_alpha_bar(schedule.alpha_bar_list[t]) <= interval[1]]
print(f"sigma in {interval}: timesteps {inside[0]} .. {inside[-1]} "
      f"({len(inside)} of {schedule.T})")
rows_iv = []
for gamma in [s for s in scales if s != 1.0]:
    r, _, _ = evaluate_guided(
        lambda y, gamma=gamma: classifier_free(base.with_cond(y), null_cond=10, scale=gamma,
                                               interval=interval),
        sampler, classifier, method="cfg", scale=gamma, interval=interval,
        n_per_class=n_per_class, device=device)
    rows_iv.append(r)
print(format_table(rows[:1] + rows_iv))
plot_guidance_curves(rows + rows_iv, "classifier-free guidance on digits")
plt.show()

# %% [markdown]
# ## What the numbers say
#
# Read the printed tables, not this paragraph, for the values. The conditional model alone
# ($\gamma = 1$) already draws mostly the right digit; guidance raises the class accuracy
# towards the classifier's own accuracy, and precision with it, while recall and within-class
# diversity fall: samples concentrate on the most typical way of writing each digit, the
# trade-off [@ho2022classifier] report for ImageNet. FD against held-out digits is lowest at
# a small amount of guidance (on the benchmark run, $\gamma = 1.25$ scored below the unguided
# model) and then rises quickly as the samples lose variety, again as in the paper, where the
# best FID came with a small guidance weight. The benchmark goal asks
# for 97 % accuracy at a scale where FD stays within 1.5 times the unguided model's;
# the [Benchmarks](../benchmarks.md) page reports whether the full run meets it.
# The limited interval changes the curve where the guided model overshoots: compare its
# recall and diversity with the full-chain rows at the same $\gamma$.

# %%
best = [r for r in rows + rows_iv if r.accuracy >= 0.97 and r.fd <= 1.5 * rows[0].fd]
print("settings with accuracy >= 97% and FD <= 1.5x unguided "
      f"({1.5 * rows[0].fd:.2f}):", [(r.scale, r.interval) for r in best] or "none")
print(f"lab run time: {time.perf_counter() - lab_start:.0f} s")
