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
# # Lab: a DDPM on real handwritten digits
#
# The swiss-roll lab showed the mechanics on dots. Here the same recipe, the DDPM of
# [@ho2020denoising], learns real images: the 1797 handwritten digits that ship with
# scikit-learn, 8x8 pixels with 17 grey levels each. The denoiser is a small UNet (ResNet
# blocks, group norm, one self-attention block at 4x4, the timestep fed to every block),
# trained on a CPU (the lab prints the training time and its own wall time as measured). We then
#
# 1. follow the training loss;
# 2. draw samples with the 1000-step ancestral sampler and look at them;
# 3. watch one reverse trajectory, both the noisy $x_t$ and the network's guess of $x_0$;
# 4. measure the likelihood bound (the ELBO) in bits per dimension, on digits the model never saw;
# 5. switch off the sampling noise and see the failure;
# 6. score the samples with a "digits FD" and compare it with the floor that real data reach.
#
# Set `DIFFUSION_NOTES_SMOKE=1` for a seconds-long dry run with tiny settings.

# %%
import math
import time

import matplotlib.pyplot as plt
import torch

from diffusion_notes import get_device, is_smoke, pick
from diffusion_notes.cache import get_or_train
from diffusion_notes.data.digits import digits_split, load_digits_tensor, to_uint8_levels
from diffusion_notes.diffusion import (
    discretized_gaussian_log_likelihood,
    elbo_bpd,
    q_posterior,
    q_sample,
    to_x0_eps,
)
from diffusion_notes.metrics import get_digit_classifier, label_entropy, score_digits_held_out
from diffusion_notes.plots import plot_loss_curve
from diffusion_notes.denoiser import Denoiser
from diffusion_notes.samplers import sample_ddpm
from diffusion_notes.schedules import extract
from diffusion_notes.train import make_schedule_for, preset

device = get_device()
lab_start = time.perf_counter()
# The shared unconditional digits preset: UNet with 16 base channels (8x8 -> 4x4), 2000 AdamW
# steps of 128 digits, linear schedule with T = 1000, trained on the fixed 80 % training split
# (1438 digits); the other 359 digits are held out for the ELBO and the scores below. The
# classifier-guidance lab asks the cache for the same config and steers this very model.
# Smoke mode shrinks everything.
config = preset("digits_uncond", **pick({}, {"steps": 30, "timesteps": 100, "batch_size": 32}))
schedule = make_schedule_for(config)
T = schedule.T
digits = load_digits_tensor()
train, held = digits_split()
print(f"device: {device}; smoke mode: {is_smoke()}; all digits {tuple(digits.images.shape)}: "
      f"{len(train.images)} for training, {len(held.images)} held out")
print(config)

# %% [markdown]
# ## 1. Training
#
# The model comes from the trained-model cache: a file named by a hash of the configuration,
# trained here once when it is missing. Each step draws 128 training digits, a timestep $t$ for each,
# and fresh noise, and minimises
# $\|\epsilon - \epsilon_\theta(\sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon,\ t)\|^2$
# with AdamW; an exponential moving average of the weights is kept for sampling.

# %%
model, info = get_or_train(config, device=device)
n_params = sum(p.numel() for p in model.parameters())
print(f"{'loaded from cache' if info.from_cache else 'trained'}: {info.path.name}; "
      f"{n_params / 1e3:.0f}k parameters; {info.steps} steps, {info.seconds:.0f} s of training")

plot_loss_curve(info.losses, "training loss on 8x8 digits")
plt.show()

# %% [markdown]
# The loss is an average over all $t$, and the steps are far from equally hard, though not in
# the way one might guess. At large $t$ the image is almost pure noise: $x_t$ is nearly
# $\epsilon$ itself, and naming the noise is easy. At small $t$ the noise is a faint speckle
# (standard deviation 0.01 at the first step) on a clean digit, and telling which part of each
# pixel is speckle and which is digit is the hard part: the $\epsilon$-error is largest there.
# (For $x_0$ it is the reverse: easy to recover at small $t$, hopeless at large $t$.) The curve
# flattens at the average of these per-step floors, not at zero. The next cell measures the
# per-step $\epsilon$-error of the trained network on 512 training digits (the paper's step $t$
# first, then the code index $t - 1$).

# %%
codes = sorted({t for t in (0, 1, 9, 49, 99, 249, 499, 749, T - 1) if t < T})
x_chk = train.images[torch.randperm(len(train.images),
                                    generator=torch.Generator().manual_seed(6))[:pick(512, 16)]]
x_chk = x_chk.to(device)
g_chk = torch.Generator().manual_seed(7)
per_t = []
print(f"{'paper t':>7} {'code t':>6} {'sqrt(1-abar)':>12} {'eps-MSE':>8}")
with torch.no_grad():
    for t in codes:
        eps = torch.randn(x_chk.shape, generator=g_chk).to(device)
        tt = torch.full((len(x_chk),), t, device=device)
        mse = ((model(q_sample(schedule, x_chk, tt, eps), tt) - eps) ** 2).mean().item()
        per_t.append(mse)
        print(f"{t + 1:7d} {t:6d} {schedule.sigma[t].item():12.3f} {mse:8.4f}")

# %% [markdown]
# The error is largest at the first steps and falls by orders of magnitude towards $t = T$,
# as for the swiss roll. At the first step it can stay clearly below 1 here, unlike on the roll,
# because much of a digit is predictable: border pixels are background, exactly $-1$, in nearly
# every image, and the other pixels take only 17 grey levels 0.125 apart, so where the clean
# value is known the speckle of 0.01 can be read off.
#
# ## 2. Samples
#
# Ancestral sampling (Algorithm 2 of [@ho2020denoising]) walks all $T$ steps from
# $x_T \sim \mathcal{N}(0, I)$, adding fresh noise at each step but the last. A callback keeps
# the state of the first few images at selected steps for the next section.

# %%
n = pick(256, 32)
g = torch.Generator().manual_seed(0)
x_T = torch.randn(n, *config.dataset.shape, generator=g).to(device)
keep = sorted({T - 1} | {int(f * T) for f in (0.8, 0.6, 0.45, 0.3, 0.2, 0.1, 0.05)} | {0},
              reverse=True)
traj_xt: dict[int, torch.Tensor] = {}
traj_x0: dict[int, torch.Tensor] = {}


def record(i: int, t: int, xt: torch.Tensor, x0_pred: torch.Tensor) -> None:
    if t in keep:  # xt is now x_{t-1}; x0_pred is the network's x0 estimate at step t
        traj_xt[t] = xt[:6].detach().cpu()
        traj_x0[t] = x0_pred[:6].detach().cpu()


start = time.perf_counter()
samples = sample_ddpm(Denoiser(model, schedule), x_T, generator=g, callback=record).cpu()
sample_seconds = time.perf_counter() - start
print(f"{n} samples x {T} steps in {sample_seconds:.1f} s")


def show_grid(images: torch.Tensor, title: str, ax: plt.Axes, cols: int = 8) -> None:
    """Images in [-1, 1] as one grid with thin grey gaps (ink dark, paper white)."""
    images = images.clamp(-1, 1)
    rows = -(-len(images) // cols)
    grid = torch.full((rows * 9 - 1, cols * 9 - 1), -0.5)
    for k, im in enumerate(images):
        r, c = divmod(k, cols)
        grid[r * 9: r * 9 + 8, c * 9: c * 9 + 8] = im[0]
    ax.imshow(grid, cmap="gray_r", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.axis("off")


fig, axes = plt.subplots(1, 2, figsize=(10, 5.4))
show_grid(train.images[torch.randperm(len(train.images),
                                      generator=torch.Generator().manual_seed(1))[:48]],
          "real (training) digits", axes[0])
show_grid(samples[:48], f"DDPM samples ({T} steps, EMA weights)", axes[1])
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 3. One reverse trajectory
#
# Columns are labelled with *code* indices $t$ (the paper's step $t + 1$), as the sampler's
# callback reports them. Top rows: the state $x_{t-1}$ (code indexing; the paper's $x_t$) after
# the step at code $t$. Bottom rows: the network's estimate of the clean image at that step, $\hat x_0 = \big(x_t - \sqrt{1-\bar\alpha_t}\,\epsilon_\theta(x_t,t)\big)/\sqrt{\bar\alpha_t}$
# (clipped to the pixel range for display). At the very first step the estimate is mostly
# amplified noise: it divides by $\sqrt{\bar\alpha_T} \approx 0.006$. Soon after, $\hat x_0$
# is a blurry average digit; the identity of the digit is decided in the middle of the chain,
# and the last steps only sharpen strokes. The noisy state lags behind: it still looks like
# noise at steps where $\hat x_0$ already shows the digit.

# %%
steps_shown = sorted(traj_xt, reverse=True)
fig, axes = plt.subplots(2 * 3, len(steps_shown), figsize=(1.15 * len(steps_shown), 7.2))
for col, t in enumerate(steps_shown):
    for k in range(3):
        ax_x, ax_0 = axes[k, col], axes[3 + k, col]
        ax_x.imshow(traj_xt[t][k, 0], cmap="gray_r", vmin=-1.5, vmax=1.5)
        ax_0.imshow(traj_x0[t][k, 0].clamp(-1, 1), cmap="gray_r", vmin=-1, vmax=1)
        ax_x.axis("off")
        ax_0.axis("off")
    axes[0, col].set_title(f"code t={t}", fontsize=9)
axes[0, 0].text(-3, 3.5, "$x_{t-1}$", fontsize=11, ha="right")
axes[3, 0].text(-3, 3.5, r"$\hat x_0$", fontsize=11, ha="right")
fig.suptitle("three samples along the reverse chain", y=1.0)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 4. The ELBO in bits per dimension
#
# DDPM is a latent-variable model, so it has a variational bound on the log-likelihood
# [@ho2020denoising, Eq. 5]:
#
# $$-\log p_\theta(x_0) \le \underbrace{D_\mathrm{KL}\big(q(x_T\mid x_0)\,\|\,p(x_T)\big)}_{L_T}
# + \sum_{t>1} \underbrace{D_\mathrm{KL}\big(q(x_{t-1}\mid x_t,x_0)\,\|\,p_\theta(x_{t-1}\mid x_t)\big)}_{L_{t-1}}
# \ \underbrace{-\ \log p_\theta(x_0\mid x_1)}_{L_0}.$$
#
# Every KL term is between two Gaussians and has a closed form; $L_T$ has no parameters.
# `elbo_bpd` evaluates each term at one random $x_t$ per image and step (an unbiased Monte
# Carlo estimate of the sum) and divides by $64 \ln 2$ to get bits per pixel.
#
# **Discretisation.** Likelihoods of continuous densities on discrete data are meaningless
# (a density can grow without bound on a grid), so the last term $L_0$ is a *discrete*
# decoder: the probability that a Gaussian around the predicted mean falls into the pixel's
# bin. Ho et al. use 256 bins for 8-bit images; these digits have only 17 levels,
# $0..16$ mapped to $-1, -0.875, \dots, 1$, so each level owns a bin of width $2/16$ (the end
# bins reach to $\pm\infty$). `elbo_bpd` is written for 8-bit data; only $L_0$ depends on the
# bin count, so below we keep its KL terms and recompute $L_0$ with 17 bins, the honest
# number for this data. The 256-bin version is printed beside it: it measures the same model on
# a finer grid, and is higher because each bin is about 16 times narrower ($2/255$ against
# $2/16$, a ratio of $255/16 \approx 15.9$).
#
# The bound is evaluated on 100 of the 359 *held-out* digits, which the model never saw, so it
# measures how well the model generalises, not how well it remembers its training set. Two
# references for the 17-level number: a uniform guess costs $\log_2 17 \approx 4.09$ bits per
# pixel, and a model that treats pixels independently (each pixel's own histogram of levels,
# counted on the training digits, add-one smoothed so no level has probability zero) costs its
# cross-entropy on the same held-out digits.

# %%
n_elbo = pick(100, 4)
x_eval = held.images[torch.randperm(len(held.images),
                                   generator=torch.Generator().manual_seed(2))[:n_elbo]]
x_eval = x_eval.to(device)
start = time.perf_counter()
elbo = elbo_bpd(model, x_eval, schedule, generator=torch.Generator().manual_seed(3),
                progress=True)
kl_part = elbo.prior + elbo.terms[1:].sum()  # L_T + sum of L_{t-1}: independent of the bins


@torch.no_grad()
def decoder_nll_bits(bins: int, draws: int = 4) -> float:
    """L_0 = -log p(x0 | x1) in bits per pixel with a discretised Gaussian decoder."""
    out = []
    tt = torch.zeros(len(x_eval), dtype=torch.long, device=device)
    log_var = extract(schedule.posterior_log_variance_clipped, tt, x_eval)
    gen = torch.Generator().manual_seed(4)
    for _ in range(draws):
        eps = torch.randn(x_eval.shape, generator=gen).to(device)
        xt = q_sample(schedule, x_eval, tt, eps)
        x0_pred, _ = to_x0_eps(schedule, xt, tt, model(xt, tt), "eps")
        mean = q_posterior(schedule, x0_pred, xt, tt).mean
        ll = discretized_gaussian_log_likelihood(x_eval, mean, 0.5 * log_var, bins=bins)
        out.append(-ll.sum(dim=(1, 2, 3)).mean() / (64 * math.log(2)))
    return float(torch.stack(out).mean())


l0_17, l0_256 = decoder_nll_bits(17), decoder_nll_bits(256)
levels = to_uint8_levels(train.images).reshape(len(train.images), 64)  # integers 0..16
hist = torch.stack([torch.bincount(levels[:, j], minlength=17) for j in range(64)]).double()
p = (hist + 1) / (hist + 1).sum(1, keepdim=True)  # add-one smoothing: no level impossible
eval_levels = to_uint8_levels(x_eval.cpu()).reshape(len(x_eval), 64)
indep_bits = float(-torch.log2(p.gather(1, eval_levels.T)).mean())
print(f"ELBO on {n_elbo} held-out digits ({time.perf_counter() - start:.0f} s):")
print(f"  L_T (prior)            {float(elbo.prior):.4f} bits/dim")
print(f"  sum of KL terms L_t-1  {float(elbo.terms[1:].sum()):.3f} bits/dim")
print(f"  L_0, 17 bins           {l0_17:.2e} bits/dim")
print(f"  total, 17-level data   {float(kl_part) + l0_17:.3f} bits/dim   <- this data")
print(f"  total, 256 bins        {float(kl_part) + l0_256:.3f} bits/dim   (elbo_bpd says "
      f"{float(elbo.total_bpd):.3f})")
print(f"references on the same digits: uniform over 17 levels {math.log2(17):.3f}; independent "
      f"pixels {indep_bits:.3f} bits/dim")

fig, ax = plt.subplots(figsize=(6.5, 3.0))
ax.semilogy(torch.arange(1, T), elbo.terms[1:].cpu())
ax.set_xlabel("t")
ax.set_ylabel("bits/dim")
ax.set_title(r"KL terms $L_{t-1}$ of the bound, per step")
fig.tight_layout()
plt.show()

# %% [markdown]
# The per-step plot shows where the bits go: almost all of the bound is spent at small $t$,
# where the reverse step must get fine detail right, while the many steps at large $t$ cost
# very little each. The simple loss weighs all $t$ alike, which compared with the bound puts
# relatively less weight on those first steps and more on the larger, perceptually important
# noise levels [@ho2020denoising, Sec. 3.4]. It buys better samples at the price of a looser
# bound, and Ho et al. note that their codelengths are not competitive with other
# likelihood-based models [@ho2020denoising, Sec. 4.2]. So compare the total with the two references above without expecting a
# record: it is an upper bound on the true code length, estimated from a model that was
# never trained to minimise it, and it may well sit above the independent-pixel number.
# Note also that with 17 levels the decoder term $L_0$ is essentially zero: at $t = 0$ the
# noise has a standard deviation of about $0.01$, far smaller than the bin width $0.125$, so
# the decoder almost never misses the bin. With 256 bins the same model pays more than a bit
# per pixel there.
#
# ## 5. No noise when sampling
#
# Now the deliberate mistake: run the same chain from the same $x_T$ but follow only the
# mean $\mu_\theta(x_t, t)$, never adding $\sigma_t z$. Each step then removes the noise the
# network sees, and nothing restores the spread that $p_\theta(x_{t-1}\mid x_t)$ should have.

# %%
n_fail = pick(64, 16)
start = time.perf_counter()
no_noise = sample_ddpm(Denoiser(model, schedule), x_T[:n_fail], add_noise=False).cpu()
print(f"{n_fail} samples without noise in {time.perf_counter() - start:.1f} s")
print(f"pixel std over images: data {train.images.std(0).mean():.3f}, "
      f"DDPM {samples.std(0).mean():.3f}, no noise {no_noise.std(0).mean():.3f}")
fig, axes = plt.subplots(1, 2, figsize=(10, 5.4))
show_grid(samples[:48], "with noise (Algorithm 2)", axes[0])
show_grid(no_noise[:48], "add_noise=False (same starting noise)", axes[1])
fig.tight_layout()
plt.show()

# %% [markdown]
# Without noise the images come out smooth and all alike: almost every starting point ends
# at the same smudged digit, a kind of average of many digits (the printed pixel standard
# deviation across images collapses). Every step moved $x$ towards an *average* over the
# digits consistent with the current state, and nothing ever pushed the images apart again.
# With the noise, each step draws one plausible state, and a sharp, specific digit survives.
#
# ## 6. Scoring the samples: digits FD
#
# Looking is not measuring. FID (Heusel et al., 2017), the standard score of image diffusion
# papers [@dhariwal2021diffusion], compares the statistics of a trained network's features
# on real and generated images. Its Inception-v3 network is
# meaningless for 8x8 digits, so we train a small CNN classifier on the digits (80% of them;
# its accuracy on the held-out 20% is printed) and use its 64 penultimate features. The
# digits FD is the Fréchet distance between Gaussian fits of those features,
#
# $$\mathrm{FD} = \|\mu_r - \mu_g\|^2 + \operatorname{tr}\big(\Sigma_r + \Sigma_g - 2(\Sigma_r^{1/2}\Sigma_g\Sigma_r^{1/2})^{1/2}\big).$$
#
# The reference set is the 359 held-out digits: neither the classifier nor the diffusion model
# was trained on them. A finite sample of *real* digits does not score 0 against them: the floor
# printed beside each score is the FD of as many *training* digits against the same reference,
# the best any sampler can expect at that sample size. Precision (are samples near real
# digits?) and recall (are real digits near samples?) use k-nearest-neighbour balls in the same
# feature space.

# %%
classifier, clf_info = get_digit_classifier(device=device)
print(f"digit classifier: held-out accuracy {clf_info.accuracy:.3f} "
      f"({clf_info.n_held_out} digits)")
rows = [("DDPM", score_digits_held_out(samples, classifier)),
        ("no noise", score_digits_held_out(no_noise, classifier))]
print(f"{'':10} {'n':>4} {'FD':>8} {'floor':>7} {'precision':>9} {'recall':>7} "
      f"{'label entropy':>13}")
for name, s in rows:
    print(f"{name:10} {s.n_samples:4d} {s.fd:8.2f} {s.floor:7.2f} {s.precision:9.3f} "
          f"{s.recall:7.3f} {label_entropy(s.label_counts):10.2f} bits")
print(f"(balanced labels would give {math.log2(10):.2f} bits of label entropy)")

fig, ax = plt.subplots(figsize=(6.5, 2.8))
width = 0.4
for k, (name, s) in enumerate(rows):
    frac = torch.tensor(s.label_counts, dtype=torch.float64) / s.n_samples
    ax.bar(torch.arange(10) + (k - 0.5) * width, frac, width, label=name)
ax.axhline(0.1, color="k", lw=0.6, ls="--")
ax.set_xticks(range(10))
ax.set_xlabel("digit predicted by the classifier")
ax.set_ylabel("share of samples")
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# The same scores for a set of *real* training digits of the same size, scored like samples
# against the held-out reference, give the reference for precision and recall: what a perfect
# sampler would reach at this sample size. Its FD is the floor by construction.

# %%
real_set = train.images[torch.randperm(len(train.images),
                                       generator=torch.Generator().manual_seed(0))[: len(samples)]]
ref_score = score_digits_held_out(real_set, classifier)
print(f"{'real':10} {ref_score.n_samples:4d} {ref_score.fd:8.2f} {ref_score.floor:7.2f} "
      f"{ref_score.precision:9.3f} {ref_score.recall:7.3f} "
      f"{label_entropy(ref_score.label_counts):10.2f} bits")
ddpm_score = rows[0][1]
print(f"DDPM: FD {ddpm_score.fd / ddpm_score.floor:.1f} times the floor; precision "
      f"{ddpm_score.precision - ref_score.precision:+.3f} and recall "
      f"{ddpm_score.recall - ref_score.recall:+.3f} against the real row")

# %% [markdown]
# Compare the rows. A perfect sampler would score at the real-data floor, with precision and
# recall of the real row and every digit class in roughly its share (label entropy near the
# balanced 3.32 bits). The last printed line says how far this small model is from that: its
# classes are balanced and its recall matches real digits (the samples cover the held-out
# digits), while its FD stays well above the floor and its precision below the real row's,
# the mark of samples that are mostly, but not always, clean digits (the grid above shows a few
# malformed ones). Because the reference digits were held out, a sampler
# cannot beat the floor by copying its training set: a copy of training digits *is* the real row.
# A score near the floor says the samples are as close to unseen digits as real digits are; it
# does not say they are new (telling generalisation from copying apart needs a
# nearest-training-digit check, which this lab does not make). The ELBO of section 4 is the
# other half of the generalisation story: it was measured on held-out digits too.
#
# The noise-free samples show why precision alone is not enough: they can look like real
# digits (high precision), but they are all nearly the same digit, so recall falls to about
# zero, the label entropy collapses, and the FD explodes.
#
# **What to take away.**
#
# * The same noise-regression loss that draws a swiss roll draws handwritten digits; only
#   the network changes (a UNet instead of an MLP).
# * The estimate $\hat x_0$ settles early; the noisy state $x_t$ catches up late.
# * The ELBO is a bound in bits per pixel, and on discrete data its value depends on how the
#   last step is discretised: say how, as done here.
# * A sample-quality number means little without its floor at the same sample size.

# %%
print(f"lab wall time: {time.perf_counter() - lab_start:.0f} s")
