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
# # Lab: the forward process
#
# The forward process of DDPM [@ho2020denoising] destroys data a little at every step,
# $q(x_t \mid x_{t-1}) = \mathcal{N}\big(\sqrt{1-\beta_t}\,x_{t-1},\ \beta_t I\big)$, and the
# note on the forward process shows that the $t$ steps collapse into one Gaussian:
#
# $$q(x_t \mid x_0) = \mathcal{N}\big(\sqrt{\bar\alpha_t}\,x_0,\ (1-\bar\alpha_t) I\big),
# \qquad \bar\alpha_t = \prod_{s=1}^{t} (1-\beta_s).$$
#
# In this lab we
#
# 1. compare two noise schedules, the linear one of DDPM and the cosine one of improved DDPM
#    [@nichol2021improved], through $\bar\alpha_t$ and the signal-to-noise ratio
#    $\mathrm{SNR}(t) = \bar\alpha_t / (1-\bar\alpha_t)$;
# 2. check the closed form against the step-by-step chain by simulation;
# 3. watch $x_t$ dissolve, on a 2-D swiss roll and on real 8x8 handwritten digits.
#
# Everything runs on the CPU (and on a GPU when one is present); the last cell prints how long
# the lab took on the machine that ran it.
#
# **Indices.** The code counts steps from 0, the papers and notes from 1: code index $t$ is the
# paper's step $t + 1$, so `q_sample(..., t=0, ...)` draws the paper's $x_1$. Printed steps say
# which convention they use, and figure titles give both.

# %%
import time

import matplotlib.pyplot as plt
import torch

from diffusion_notes import get_device, pick
from diffusion_notes.data.digits import load_digits_tensor
from diffusion_notes.data.toy2d import make_toy2d
from diffusion_notes.diffusion import q_sample
from diffusion_notes.schedules import make_schedule

device = get_device()
lab_start = time.perf_counter()
torch.manual_seed(0)
T = 1000
schedules = {name: make_schedule(name, T) for name in ("linear", "cosine")}
print(f"device: {device}; T = {T}")

# %% [markdown]
# ## 1. Two schedules
#
# The linear schedule raises $\beta_t$ from $10^{-4}$ to $0.02$. The cosine schedule instead
# sets $\bar\alpha_t = f(t)/f(0)$ with $f(t) = \cos^2\!\big(\frac{t/T + s}{1+s}\cdot\frac{\pi}{2}\big)$,
# $s = 0.008$, so that $\bar\alpha_t$ falls slowly at both ends. On a log scale the SNR of the
# cosine schedule is almost a straight line in its middle: it spends its steps more evenly
# across noise levels, while the linear schedule reaches pure noise long before $t = T$.

# %%
# alpha_bar is a running product: check the schedule object against one line of torch
for name, s in schedules.items():
    by_hand = torch.cumprod(1 - s.betas, dim=0)
    print(f"{name}: max |alpha_bar - cumprod(1 - beta)| = "
          f"{float((by_hand - s.alpha_bar).abs().max()):.1e}")

ts = torch.arange(T)
fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
for name, s in schedules.items():
    axes[0].plot(ts, s.betas, label=name)
    axes[1].plot(ts, s.alpha_bar, label=name)
    axes[2].semilogy(ts, s.snr, label=name)
axes[0].set_title(r"$\beta_t$")
axes[1].set_title(r"$\bar\alpha_t$ (signal variance kept)")
axes[2].set_title(r"SNR$(t) = \bar\alpha_t / (1-\bar\alpha_t)$")
for ax in axes:
    ax.set_xlabel("code index t (the paper's step t + 1)")
    ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# Where does each schedule cross $\mathrm{SNR} = 1$ (as much noise as signal), and how much
# signal is left at the last step? A terminal SNR above zero means $x_T$ still carries a trace
# of $x_0$; the zero-terminal-SNR paper discusses why that matters for very bright or dark images.

# %%
for name, s in schedules.items():
    crossing = int(torch.nonzero(s.snr < 1)[0])
    print(f"{name:>7}: SNR falls below 1 at paper t = {crossing + 1:4d} (code {crossing:3d}); "
          f"alpha_bar_T = {float(s.alpha_bar[-1]):.2e}; SNR(T) = {float(s.snr[-1]):.2e}")

# %% [markdown]
# ## 2. The closed form against the chain
#
# We push the same $x_0$ through $t$ single steps, drawing fresh noise each time, and compare
# the mean and variance of the result with $\sqrt{\bar\alpha_t}\,x_0$ and $1-\bar\alpha_t$.
# With $n$ samples the standard error of a mean is $\sqrt{(1-\bar\alpha_t)/n}$, so the
# differences printed below should be a few of those at most.

# %%
n = pick(200_000, 5_000)
x0 = torch.tensor([1.5, -0.5], dtype=torch.float64)
s = schedules["linear"]
for t in (10, 100, 500):
    x = x0.expand(n, 2).clone()
    for step in range(t + 1):  # steps 0..t, as q_sample(t) applies alpha_bar[t]
        beta = s.betas[step]
        x = torch.sqrt(1 - beta) * x + torch.sqrt(beta) * torch.randn_like(x)
    mean_cf = torch.sqrt(s.alpha_bar[t]) * x0
    var_cf = 1 - s.alpha_bar[t]
    se = float(torch.sqrt(var_cf / n))
    print(f"code t = {t:3d} (paper x_{t + 1}): mean error {float((x.mean(0) - mean_cf).abs().max()):.4f} "
          f"(standard error {se:.4f}); variance chain {float(x.var(0).mean()):.4f} "
          f"vs closed form {float(var_cf):.4f}")

# %% [markdown]
# ## 3. Watching the data dissolve: a swiss roll
#
# `q_sample(schedule, x0, t, eps)` draws $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$
# in one line. The rows below use the two schedules at the same steps (titles: the paper's
# $x_t$ and the code index). Under the linear schedule the roll is still clear at $x_{51}$ and
# gone by $x_{151}$, a featureless blob from there on. The cosine schedule keeps it longer: at
# $x_{151}$ the spiral still shows through the noise, but by $x_{301}$ it too is a blob, and
# $x_{501}$ looks like $x_{1000}$. The cosine schedule delays the destruction of this coarse
# shape; it does not keep it to the middle of the chain.

# %%
points = make_toy2d("swiss_roll", pick(3000, 500), seed=0).to(device)
steps = [0, 50, 150, 300, 500, 999]
fig, axes = plt.subplots(2, len(steps), figsize=(2.2 * len(steps), 4.6), sharex=True, sharey=True)
for row, (name, s) in enumerate(schedules.items()):
    for col, t in enumerate(steps):
        tt = torch.full((points.shape[0],), t, dtype=torch.long, device=device)
        xt = q_sample(s, points, tt, torch.randn_like(points)).cpu()
        ax = axes[row, col]
        ax.scatter(xt[:, 0], xt[:, 1], s=1.5, alpha=0.5)
        ax.set_xlim(-3.5, 3.5)
        ax.set_ylim(-3.5, 3.5)
        ax.set_xticks([])
        ax.set_yticks([])
        if row == 0:
            ax.set_title(f"$x_{{{t + 1}}}$ (code t={t})", fontsize=9)
    axes[row, 0].set_ylabel(name)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 4. And on real digits
#
# The data here are scikit-learn's bundled 8x8 digits, scaled from 17 grey levels to $[-1, 1]$.
# Its dataset card, as the package ships it:

# %%
from sklearn.datasets import load_digits  # noqa: E402

card = load_digits().DESCR.splitlines()
print("\n".join(line for line in card[:24] if line.strip()))

# %% [markdown]
# When should a digit stop being readable? The nominal SNR assumes data of unit variance per
# coordinate. These digits do not have it: most pixels are background at $-1$ in almost every
# image. With per-pixel variance $v$ the signal power in $x_t$ is $\bar\alpha_t v$, so the
# effective SNR is $v \cdot \mathrm{SNR}(t)$, which crosses 1 earlier than the nominal one.

# %%
digit_var = float(load_digits_tensor().images.var(0).mean())
print(f"mean per-pixel variance of the digits: {digit_var:.3f}")
for name, s in schedules.items():
    eff = int(torch.nonzero(digit_var * s.snr < 1)[0])
    nominal = int(torch.nonzero(s.snr < 1)[0])
    print(f"{name:>7}: effective SNR of the digits falls below 1 at paper t = {eff + 1} "
          f"(code {eff}); nominal SNR at paper t = {nominal + 1}")

# %% [markdown]
# Each row is one digit; columns follow $t$ on the linear schedule (titles: the paper's $x_t$
# and the code index). By eye the digits are still clear at $x_{101}$, faint at $x_{201}$ (a
# few strokes survive in some rows), and unreadable from $x_{301}$ on: they fade out around
# the step where the *effective* SNR printed above crosses 1, well before the nominal crossing.

# %%
digits = load_digits_tensor().images[:6].to(device)
steps = [0, 25, 100, 200, 300, 500, 999]
s = schedules["linear"]
fig, axes = plt.subplots(len(digits), len(steps), figsize=(1.3 * len(steps), 1.3 * len(digits)))
for col, t in enumerate(steps):
    tt = torch.full((digits.shape[0],), t, dtype=torch.long, device=device)
    xt = q_sample(s, digits, tt, torch.randn_like(digits)).cpu()
    for row in range(len(digits)):
        ax = axes[row, col]
        ax.imshow(xt[row, 0], cmap="gray_r", vmin=-2, vmax=2)
        ax.axis("off")
        if row == 0:
            ax.set_title(f"$x_{{{t + 1}}}$ (code {t})", fontsize=9)
fig.tight_layout()
plt.show()

# %% [markdown]
# **What to take away.** The forward process has no parameters to learn: it is fixed by the
# schedule, and any $x_t$ can be drawn in one step from $x_0$. That is what makes training
# cheap: pick a random $t$, noise $x_0$ in closed form, and ask a network to undo it. The
# next notes derive the reverse step and the loss.

# %%
print(f"lab wall time: {time.perf_counter() - lab_start:.1f} s")
