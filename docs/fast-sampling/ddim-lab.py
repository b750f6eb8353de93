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
# # Lab: DDIM on digits
#
# The [DDIM note](ddim.md) claims that a model trained for 1000 DDPM steps samples in a few
# dozen deterministic steps without retraining, that the noise knob $\eta$ costs quality when
# steps are few, and that the deterministic sampler can be run backwards. Here we measure all
# of it on the shared class-conditional digits model [@song2020denoising]:
#
# 1. a steps sweep with $\eta = 0$: samples and held-out digits FD from 1 to 50 steps;
# 2. an $\eta$ sweep at 20 steps;
# 3. inversion: real held-out digits to noise and back, reconstruction error against steps;
# 4. spherical interpolation (slerp) between two noises, giving a smooth morph.
#
# Set `DIFFUSION_NOTES_SMOKE=1` for a seconds-long dry run with tiny settings.

# %%
import math
import time

import matplotlib.pyplot as plt
import torch
from tqdm.auto import tqdm

from diffusion_notes import get_device, is_smoke, pick
from diffusion_notes.cache import get_or_train
from diffusion_notes.data.digits import digits_split
from diffusion_notes.denoiser import Denoiser
from diffusion_notes.metrics import get_digit_classifier, score_digits_held_out
from diffusion_notes.samplers import ddim_invert, sample_ddim
from diffusion_notes.timesteps import timestep_pairs
from diffusion_notes.train import make_schedule_for, preset

device = get_device()
lab_start = time.perf_counter()
# THE shared class-conditional model (guidance and LCM use it too), from the model cache
config = preset("digits_cond", **pick({}, {"steps": 20, "timesteps": 100, "batch_size": 32}))
net, info = get_or_train(config, device=device)
schedule = make_schedule_for(config)
T = schedule.T
classifier, _ = get_digit_classifier(device=device)
print(f"device: {device}; smoke mode: {is_smoke()}; model {info.path.name} "
      f"({'cache' if info.from_cache else 'trained now'}, {info.steps} steps); T = {T}")


def conditional(labels: torch.Tensor) -> Denoiser:
    """The network as the samplers take it (eps-prediction), conditioned on fixed labels."""
    return Denoiser(net, schedule, prediction=config.prediction, cond=labels.to(device))


def grid(images: torch.Tensor, rows: int) -> torch.Tensor:
    """(N, 1, 8, 8) in [-1, 1] -> one (rows*8, cols*8) picture."""
    cols = math.ceil(len(images) / rows)
    pad = torch.full((rows * cols - len(images), 1, 8, 8), -1.0)
    x = torch.cat([images.detach().cpu().clamp(-1, 1), pad])
    return x.reshape(rows, cols, 8, 8).permute(0, 2, 1, 3).reshape(rows * 8, cols * 8)


# %% [markdown]
# ## 1. Steps sweep
#
# Same noise, same labels (0 to 9 in turn), deterministic DDIM ($\eta = 0$) on `trailing`
# timesteps. Each sample set is scored against the 359 held-out digits the model never saw;
# the floor is the score of as many real training digits.

# %%
n = pick(300, 20)
labels = torch.arange(n) % 10
x_T = torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(0)).to(device)
step_counts = pick([1, 2, 5, 10, 20, 50], [1, 2])
results = {}
for steps in tqdm(step_counts, desc="steps sweep"):
    start = time.perf_counter()
    y = sample_ddim(conditional(labels), x_T, timestep_pairs(T, steps, "trailing"),
                    progress=False).cpu()
    seconds = time.perf_counter() - start
    score = score_digits_held_out(y, classifier)
    with torch.no_grad():
        acc = (classifier(y.clamp(-1, 1).to(device)).argmax(1).cpu() == labels).float().mean()
    results[steps] = (y, score, float(acc), seconds)
print(f"{'steps':>5} {'FD':>8} {'floor':>7} {'prec':>6} {'recall':>6} {'class acc':>9} {'s':>6}")
for steps, (y, sc, acc, sec) in results.items():
    print(f"{steps:5d} {sc.fd:8.2f} {sc.floor:7.2f} {sc.precision:6.3f} {sc.recall:6.3f} "
          f"{acc:9.3f} {sec:6.2f}")

fig, axes = plt.subplots(1, len(step_counts), figsize=(2.2 * len(step_counts), 2.6))
for ax, (steps, (y, sc, _, _)) in zip(axes, results.items(), strict=True):
    ax.imshow(grid(y[:30], 3), cmap="gray_r")
    ax.set_title(f"{steps} steps\nFD {sc.fd:.1f}", fontsize=9)
    ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# One step returns the network's first guess $\hat x_0$ at $t = T - 1$, a blurred class
# average; a handful of steps already gives digits, and the FD column shows where returns
# flatten. (Compare the [benchmarks](../benchmarks.md#fast-sampling) table, where DDPM needs
# hundreds of steps for the same score.)
#
# ## 2. The $\eta$ sweep
#
# $\eta = 1$ injects DDPM's posterior noise at each of the 20 steps, scaled to the whole
# skipped stretch; the model can only remove it in the remaining steps.

# %%
eta_steps = pick(20, 2)
etas = pick([0.0, 0.25, 0.5, 1.0], [0.0, 1.0])
print(f"{'eta':>5} {'FD':>8} {'class acc':>9}")
eta_fd = {}
for eta in tqdm(etas, desc="eta sweep"):
    y = sample_ddim(conditional(labels), x_T, timestep_pairs(T, eta_steps, "trailing"),
                    eta=eta, generator=torch.Generator().manual_seed(1), progress=False).cpu()
    sc = score_digits_held_out(y, classifier)
    with torch.no_grad():
        acc = (classifier(y.clamp(-1, 1).to(device)).argmax(1).cpu() == labels).float().mean()
    eta_fd[eta] = sc.fd
    print(f"{eta:5.2f} {sc.fd:8.2f} {float(acc):9.3f}")

# %% [markdown]
# ## 3. Inversion and reconstruction
#
# Held-out digits go up to $t = T - 1$ with `ddim_invert` and come back with `sample_ddim`,
# both on the same pairs and conditioned on the true label. The round trip would be exact if
# $\epsilon_\theta$ were constant over each step; the error left is discretisation error, so it
# should fall as the steps grow.

# %%
_, held = digits_split()
m = pick(100, 8)
x0 = held.images[:m].to(device)
y0 = held.labels[:m]
inv_steps = pick([5, 10, 20, 50, 100], [2, 4])
recon = {}
for steps in tqdm(inv_steps, desc="inversion"):
    pairs = timestep_pairs(T, steps, "trailing")
    z = ddim_invert(conditional(y0), x0, pairs, progress=False)
    back = sample_ddim(conditional(y0), z, pairs, progress=False)
    recon[steps] = (z.cpu(), back.cpu(), (back - x0).pow(2).mean().sqrt().item())
print("steps  RMS error per pixel (data in [-1, 1])   latent std")
for steps, (z, _, err) in recon.items():
    print(f"{steps:5d}  {err:.4f}{'':32s} {z.std().item():.3f}")

fig, axes = plt.subplots(1, 3, figsize=(11, 3))
axes[0].plot(list(recon), [v[2] for v in recon.values()], "o-")
axes[0].set(xscale="log", yscale="log", xlabel="DDIM steps", ylabel="RMS reconstruction error",
            title="inversion + sampling")
last = inv_steps[-1]
axes[1].imshow(grid(x0[:10].cpu(), 1), cmap="gray_r")
axes[1].set_title("held-out digits")
axes[2].imshow(grid(recon[last][1][:10], 1), cmap="gray_r")
axes[2].set_title(f"reconstructed, {last} steps")
for ax in axes[1:]:
    ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# The latent's standard deviation says how Gaussian the inverted noise looks (1 for true
# noise); the error falls with the steps, as the note says.
#
# ## 4. Slerp between two noises
#
# Linear interpolation between two Gaussian vectors passes through vectors of too small a
# norm (the midpoint of two independent $\mathcal N(0, I)$ draws has variance 1/2), which
# the model has never seen at $t = T - 1$. Spherical interpolation keeps the norm:
# $\mathrm{slerp}(z_0, z_1; u) = \frac{\sin((1-u)\theta)}{\sin\theta} z_0 +
# \frac{\sin(u\theta)}{\sin\theta} z_1$, $\cos\theta = \langle z_0, z_1\rangle / (|z_0||z_1|)$.

# %%
def slerp(z0: torch.Tensor, z1: torch.Tensor, u: float) -> torch.Tensor:
    cos = (z0 * z1).sum() / (z0.norm() * z1.norm())
    theta = torch.arccos(cos.clamp(-1, 1))
    return (torch.sin((1 - u) * theta) * z0 + torch.sin(u * theta) * z1) / torch.sin(theta)


g = torch.Generator().manual_seed(5)
za, zb = torch.randn(2, 1, 8, 8, generator=g)
us = torch.linspace(0, 1, pick(9, 3)).tolist()
rows = []
for digit in pick([3, 7], [3]):
    zs = torch.stack([slerp(za, zb, u) for u in us]).to(device)
    lin = torch.stack([(1 - u) * za + u * zb for u in us]).to(device)
    lab = torch.full((len(us),), digit)
    pairs = timestep_pairs(T, pick(20, 2), "trailing")
    rows.append(sample_ddim(conditional(lab), zs, pairs, progress=False).cpu())
    rows.append(sample_ddim(conditional(lab), lin, pairs, progress=False).cpu())
    print(f"digit {digit}: noise norm along slerp {[round(v.norm().item(), 2) for v in zs]}")
    print(f"digit {digit}: noise norm along lerp  {[round(v.norm().item(), 2) for v in lin]}")
plt.figure(figsize=(len(us) * 0.9, len(rows) * 1.0))
plt.imshow(grid(torch.cat(rows), len(rows)), cmap="gray_r")
plt.title("rows: slerp / linear, per digit")
plt.axis("off")
plt.show()
print(f"lab run time: {time.perf_counter() - lab_start:.1f} s")

# %% [markdown]
# Along the slerp the noise norm stays near $\sqrt{64} = 8$ and the digit changes style
# smoothly; along the straight line the norm dips towards $8/\sqrt 2$ in the middle and the
# middle frames come out faint, because DDIM maps a too-small noise to a low-contrast image.
