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
# # Lab: a DDPM on a swiss roll
#
# Two dimensions are the place to *see* a diffusion model work. Every sample is a dot, the
# whole distribution fits on one plot, and a small MLP trains in well under a minute on a CPU.
# We train the denoiser of DDPM [@ho2020denoising] on a swiss roll and then
#
# 1. follow the training loss;
# 2. run ancestral sampling and watch the cloud of points $x_t$ fold back into the roll;
# 3. compare the samples with the data;
# 4. break the sampler on purpose by leaving out the noise it should add at every step.
#
# The training objective is the "simple" loss: pick a step $t$ uniformly, noise a data point
# in one shot, $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$ with
# $\epsilon \sim \mathcal{N}(0, I)$, and regress the noise,
#
# $$L_\text{simple} = \mathbb{E}_{t, x_0, \epsilon}\,\big\|\epsilon - \epsilon_\theta(x_t, t)\big\|^2 .$$
#
# Everything below runs on the CPU (or the GPU when there is one). Set
# `DIFFUSION_NOTES_SMOKE=1` for a seconds-long dry run with tiny settings.

# %%
import time

import matplotlib.pyplot as plt
import torch

from diffusion_notes import get_device, is_smoke, pick
from diffusion_notes.cache import get_or_train
from diffusion_notes.data.toy2d import make_toy2d
from diffusion_notes.plots import plot_loss_curve
from diffusion_notes.denoiser import Denoiser
from diffusion_notes.samplers import sample_ddpm
from diffusion_notes.train import make_schedule_for, preset

device = get_device()
lab_start = time.perf_counter()
# the 2-D preset: a 3-block residual MLP, 128 wide, 4000 AdamW steps of 256 points
config = preset("toy2d", **pick({}, {"steps": 40, "timesteps": 100, "batch_size": 64}))
schedule = make_schedule_for(config)
data = make_toy2d(config.data, 3000, seed=123)  # a fresh draw, not the training points
print(f"device: {device}; smoke mode: {is_smoke()}")
print(config)

# %% [markdown]
# ## 1. Training
#
# `get_or_train` looks the configuration up in the trained-model cache (a file named by a hash
# of the configuration) and trains only when it is missing, so rerunning this lab, or another
# lab that needs the same model, costs nothing. The loop uses AdamW, clips the gradient norm to
# 1, and keeps an exponential moving average (EMA) of the weights; we sample from the EMA copy.
#
# The loss starts at about 1: the network's last layer is initialised to zero, and predicting
# $\hat\epsilon = 0$ costs $\mathbb{E}\|\epsilon\|^2 / d = 1$ per coordinate. It cannot fall to
# zero either. At large $t$ the point $x_t$ says little about which $\epsilon$ made it, so the
# best possible prediction is a conditional mean, and the remaining error is the conditional
# variance of $\epsilon$ given $x_t$.

# %%
model, info = get_or_train(config, device=device)
print(f"{'loaded from cache' if info.from_cache else 'trained'}: {info.path.name}; "
      f"{info.steps} steps, {info.seconds:.1f} s of training")

plot_loss_curve(info.losses, "training loss (global batch of 256 points)")
plt.show()

# %% [markdown]
# ## 2. Ancestral sampling, step by step
#
# Sampling runs the learned reverse chain from $x_T \sim \mathcal{N}(0, I)$ down to $x_0$.
# Each step predicts the noise, forms the mean of $p_\theta(x_{t-1} \mid x_t)$,
#
# $$\mu_\theta(x_t, t) = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,\epsilon_\theta(x_t, t)\Big),$$
#
# and draws $x_{t-1} = \mu_\theta + \sigma_t z$ with fresh $z \sim \mathcal{N}(0, I)$
# (Algorithm 2 of [@ho2020denoising]; here $\sigma_t^2 = \tilde\beta_t$, the posterior
# variance). The last step adds no noise. A callback records the cloud at a few steps.

# %%
n = pick(2000, 300)
g = torch.Generator().manual_seed(0)
x_T = torch.randn(n, *config.dataset.shape, generator=g).to(device)
T = schedule.T
keep = sorted({T - 1, int(0.7 * T), int(0.5 * T), int(0.3 * T), int(0.15 * T), int(0.05 * T)},
              reverse=True)
snapshots = {T: x_T.cpu()}  # label "T" for the starting noise


def record(i: int, t: int, xt: torch.Tensor, x0_pred: torch.Tensor) -> None:
    # after the step at t the state is x_{t-1}; keep a few of them
    if t in keep:
        snapshots[t] = xt.detach().cpu()


start = time.perf_counter()
samples = sample_ddpm(Denoiser(model, schedule), x_T, generator=g, callback=record).cpu()
print(f"{n} samples, {T} steps: {time.perf_counter() - start:.1f} s")
snapshots[0] = samples

fig, axes = plt.subplots(1, len(snapshots), figsize=(2.3 * len(snapshots), 2.5),
                         sharex=True, sharey=True)
for ax, (t, pts) in zip(axes, sorted(snapshots.items(), reverse=True), strict=True):
    ax.scatter(pts[:, 0], pts[:, 1], s=1, alpha=0.5)
    ax.set_title("$x_T$ (noise)" if t == T else ("$x_0$" if t == 0 else f"$x_{{{t - 1}}}$"))
    ax.set_xlim(-3.2, 3.2)
    ax.set_ylim(-3.2, 3.2)
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("the reverse chain: the same points at a few steps", y=1.02)
fig.tight_layout()
plt.show()

# %% [markdown]
# Two things stand out. For most of the chain (large $t$) the cloud hardly changes shape: the
# steps there only shrink the noise a little. The roll appears late, in the last few hundred
# steps, after the signal-to-noise ratio of the linear schedule has risen above 1. And a point
# does not travel in a straight line: following a few of them shows the random walk that the
# injected noise produces, drifting on average towards the data.

# %%
paths: dict[int, list[torch.Tensor]] = {i: [] for i in range(4)}


def track(i: int, t: int, xt: torch.Tensor, x0_pred: torch.Tensor) -> None:
    if i % 5 == 4 or t == 0:  # every fifth step keeps the picture readable
        for k in paths:
            paths[k].append(xt[k].detach().cpu())


g_track = torch.Generator().manual_seed(1)
x_start = torch.randn(len(paths), 2, generator=g_track).to(device)
sample_ddpm(Denoiser(model, schedule), x_start, generator=g_track, callback=track, progress=False)
fig, ax = plt.subplots(figsize=(4.6, 4.6))
ax.scatter(data[:, 0], data[:, 1], s=1, c="0.85")
for k, path in paths.items():
    p = torch.stack([x_start[k].cpu()] + path)
    ax.plot(p[:, 0], p[:, 1], lw=0.5, alpha=0.8, color=f"C{k}")
    ax.scatter(*p[0], marker="o", color=f"C{k}", s=25, edgecolor="k", linewidth=0.5, zorder=3)
    ax.scatter(*p[-1], marker="*", color=f"C{k}", s=110, edgecolor="k", linewidth=0.5, zorder=3)
ax.set_aspect("equal")
ax.set_title("four reverse trajectories (o: start, *: end)")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 3. Samples against the data
#
# A simple check that needs no extra model: the distance from each point to its nearest
# neighbour in the other set. If samples sit on the roll, sample-to-data distances are as small
# as data-to-data ones (two independent draws of the data give the floor); if the samples
# cover the whole roll, data-to-sample distances are small too.


# %%
def mean_nn_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Average distance from each point of a to its nearest point of b."""
    return torch.cdist(a, b).min(dim=1).values.mean().item()


other = make_toy2d(config.data, n, seed=7)
print(f"data -> data (floor):  {mean_nn_distance(other, data[:n]):.4f}")
print(f"samples -> data:       {mean_nn_distance(samples, data[:n]):.4f}   (are samples on the roll?)")
print(f"data -> samples:       {mean_nn_distance(data[:n], samples):.4f}   (is the roll covered?)")

fig, axes = plt.subplots(1, 2, figsize=(8.5, 4.2), sharex=True, sharey=True)
axes[0].scatter(data[:n, 0], data[:n, 1], s=1.5, alpha=0.6)
axes[0].set_title("data")
axes[1].scatter(samples[:, 0], samples[:, 1], s=1.5, alpha=0.6, color="C1")
axes[1].set_title(f"DDPM samples ({T} steps)")
for ax in axes:
    ax.set_aspect("equal")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 4. What if we do not add noise when sampling?
#
# It is tempting to think the noise $\sigma_t z$ in each reverse step is a nuisance: the network
# already predicts the mean, so why not just follow the means? The answer is that
# $\mu_\theta(x_t, t)$ is the mean of $p(x_{t-1} \mid x_t)$, a whole distribution. Following
# only its mean at every step keeps removing the predicted noise but never restores the
# spread that each step's distribution should have. The chain behaves like repeated
# averaging: early on, when $x_t$ says little about $x_0$, the mean points at the middle of the
# data, and without fresh noise the points never spread out again. (The deterministic DDIM
# sampler [@song2020denoising] avoids this by rescaling its step so that dropping the noise is
# consistent; plain DDPM with the noise switched off is not DDIM.)
#
# We start from the *same* $x_T$ and run the chain with `add_noise=False`.

# %%
no_noise = sample_ddpm(Denoiser(model, schedule), x_T, add_noise=False).cpu()
print(f"spread (std per coordinate): data {data.std(0).mean():.3f}, "
      f"DDPM {samples.std(0).mean():.3f}, without noise {no_noise.std(0).mean():.3f}")
print(f"samples -> data:  DDPM {mean_nn_distance(samples, data[:n]):.4f}, "
      f"without noise {mean_nn_distance(no_noise, data[:n]):.4f}")
print(f"data -> samples:  DDPM {mean_nn_distance(data[:n], samples):.4f}, "
      f"without noise {mean_nn_distance(data[:n], no_noise):.4f}")

fig, axes = plt.subplots(1, 2, figsize=(8.5, 4.2), sharex=True, sharey=True)
for ax, pts, title in ((axes[0], samples, "with noise (Algorithm 2)"),
                       (axes[1], no_noise, "add_noise=False")):
    ax.scatter(data[:, 0], data[:, 1], s=1, c="0.85", label="data")
    ax.scatter(pts[:, 0], pts[:, 1], s=1.5, alpha=0.6, color="C3" if pts is no_noise else "C1")
    ax.set_title(title)
    ax.set_aspect("equal")
fig.suptitle("same starting noise, same network", y=1.0)
fig.tight_layout()
plt.show()

# %% [markdown]
# Without the noise the cloud does not become a roll at all: it shrinks onto a tiny patch
# (compare the printed spreads). Early in the chain $x_t$ says almost nothing about $x_0$,
# so the network's denoised mean is close to the centre of the data for every point; each
# noise-free step pulls all points towards that common mean, and nothing spreads them out
# again. The samples-to-data distance can even look good (the patch sits near *some* data),
# but the data-to-samples distance shows that almost all of the roll is never reached. The
# noise term is what lets the sampler draw from the distribution rather than average it.
#
# **What to take away.**
#
# * A diffusion model is trained as a plain regression of the noise, and sampled by running
#   the learned denoiser backwards through all $T$ steps.
# * The shape of the data emerges late in the reverse chain, once the signal dominates.
# * The noise added at each step is part of the algorithm, not decoration: remove it and the
#   sampler follows means of means and loses the spread of the data.

# %%
print(f"lab wall time: {time.perf_counter() - lab_start:.1f} s")
