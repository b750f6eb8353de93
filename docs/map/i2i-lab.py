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
# # Lab: image-to-image in miniature
#
# Two ways to turn one image into another with a diffusion model, both on scikit-learn's 8x8
# digits:
#
# 1. **SDEdit** [@meng2022sdedit] needs no new training. Noise a *guide* (a corrupted digit, a
#    coarse sketch, a digit of the wrong class) with the forward process up to a strength
#    $s \in [0, 1]$, i.e. to $t_0 = \mathrm{round}(sT)$ forward steps, and run the reverse
#    sampler from there. $s = 0$ returns the guide, $s = 1$ ignores it. In between, the
#    model keeps what the noise did not drown and fills in the rest, and we measure the
#    trade-off between *faithfulness* (distance to the guide) and *realism*.
# 2. **Super-resolution** from 4x4 to 8x8, the recipe of SR3 [@saharia2023image]
#    and Palette [@saharia2022palette]: a diffusion
#    model trained on pairs, with the upsampled low-resolution image concatenated to $x_t$ as
#    an extra input channel. It is compared with bicubic and nearest upsampling.
#
# The code lives in `diffusion_notes.img2img` (SDEdit), `diffusion_notes.models.sr` (the SR
# model) and `diffusion_notes.img2img_eval` (the measurements); `tests/test_img2img.py` checks
# SDEdit against a Gaussian mixture with an exact score. Set `DIFFUSION_NOTES_SMOKE=1` for a
# seconds-long dry run with tiny settings.

# %%
import time

import matplotlib.pyplot as plt
import torch

from diffusion_notes import get_device, pick
from diffusion_notes.cache import get_or_train
from diffusion_notes.data.digits import digits_split
from diffusion_notes.denoiser import Denoiser
from diffusion_notes.img2img_eval import digits_guides, sdedit_sweep, sr_methods, sr_rows
from diffusion_notes.metrics import get_digit_classifier
from diffusion_notes.models.sr import SRConfig, get_sr_model, sr_schedule
from diffusion_notes.plots import describe, plot_loss_curve, show_grid
from diffusion_notes.train import make_schedule_for, preset

device = get_device()
lab_start, cpu_start = time.perf_counter(), time.process_time()
config = preset("digits_cond", **pick({}, {"steps": 4, "batch_size": 8}))
sr_config = SRConfig(**pick({}, {"steps": 4, "batch_size": 8}))
N_GUIDES = pick(128, 8)  # guides per kind
N_STEPS = pick(50, 4)  # DDIM steps over the full range (SDEdit runs the part below t0)
STRENGTHS = pick([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0], [0.0, 0.5, 1.0])
SR_SAMPLES = pick(8, 2)  # SR samples per low-res digit, for their mean
model, info = get_or_train(config, device=device)
classifier, clf_info = get_digit_classifier(device=device)
schedule = make_schedule_for(config)
print(f"device: {device}; digits model: {'from the cache' if info.from_cache else 'trained now'} "
      f"({info.seconds:.0f} s of training); classifier held-out accuracy {clf_info.accuracy:.1%}")

# %% [markdown]
# ## SDEdit: three kinds of guide
#
# The guides are held-out digits (never seen by the model or the classifier), changed in
# three ways:
#
# * **flipped**: 20 % of the pixels negated (ink becomes paper and back), a heavy corruption;
# * **sketch**: each 2x2 block replaced by ink or paper by thresholding its mean, a blocky
#   binary drawing of the digit;
# * **relabel**: the clean digit, but SDEdit runs the model conditioned on the *next* class
#   (a 3 is asked to become a 4) with classifier-free guidance at scale 2.
#
# The first two use the model's unconditional branch (its null label). The same seeded start
# noise is used at every strength, and the sampler is DDIM with 50 steps on the full range,
# of which SDEdit runs the part below $t_0$.

# %%
held = digits_split()[1]
perm = torch.randperm(len(held.images), generator=torch.Generator().manual_seed(0))[:N_GUIDES]
clean, labels = held.images[perm].to(device), held.labels[perm]
guides = digits_guides(Denoiser(model, schedule), clean, labels, null=model.num_classes)
sweeps, outputs = {}, {}
for name, (guide, den, tgt) in guides.items():
    sweeps[name], outputs[name] = sdedit_sweep(den, guide, STRENGTHS, classifier, n_steps=N_STEPS,
                                               targets=tgt, seed=2)
print(f"{len(guides)} guide kinds x {len(STRENGTHS)} strengths x {N_GUIDES} guides")

# %% [markdown]
# The strength sweep for six guides of each kind: the first column is the guide itself
# ($s = 0$), the last is a fresh sample ($s = 1$).

# %%
show = min(6, N_GUIDES)
fig, axes = plt.subplots(1, len(guides), figsize=(4.2 * len(guides), 3.2))
for ax, name in zip(axes, guides, strict=True):
    grid = torch.stack([outputs[name][s][:show] for s in STRENGTHS], 1).flatten(0, 1)
    show_grid(grid, ax, f"{name}: rows = guides, columns = s = {STRENGTHS[0]} .. {STRENGTHS[-1]}",
              cols=len(STRENGTHS))
describe(fig, "Three grids of SDEdit outputs, one per guide kind (flipped pixels, blocky "
         "sketch, relabelled digit); in each, a row is one guide and the columns run over "
         "the strengths from 0 (the guide) to 1 (a fresh sample).")
plt.show()

# %% [markdown]
# ## The measured trade-off
#
# Per strength: *faithfulness* is the mean squared distance of the outputs to their guides
# (per pixel, pixels in [-1, 1]); *realism* is the held-out classifier's mean confidence (its
# largest softmax probability) and the digits FD of the 128 outputs against the held-out
# digits (its floor, 128 real training digits against the same reference, is printed below).
# For the relabel guides, the last column is the share of outputs classified as the new class.

# %%
for name, pts in sweeps.items():
    print(f"{name}:\n{'strength':>9s} {'MSE to guide':>13s} {'confidence':>11s} {'FD':>7s} "
          f"{'as target':>10s}")
    for p in pts:
        tgt = "" if p.target_accuracy != p.target_accuracy else f"{p.target_accuracy:10.1%}"
        print(f"{p.strength:9.2f} {p.mse_to_guide:13.3f} {p.confidence:11.3f} {p.fd:7.2f} {tgt}")
floor = sweeps["flipped"][0].fd_floor
print(f"FD floor (as many real training digits): {floor:.2f}")
flip_clean = {s: float((out - clean.cpu()).pow(2).mean()) for s, out in outputs["flipped"].items()}
best = min(flip_clean, key=flip_clean.get)
print("flipped guides, MSE to the *clean* digit per strength: "
      + ", ".join(f"{s:.1f}: {v:.3f}" for s, v in flip_clean.items()))
print(f"closest to the clean digits at s = {best:.1f} (MSE {flip_clean[best]:.3f}, against "
      f"{flip_clean[0.0]:.3f} for the flipped guide itself)")

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
for name, pts in sweeps.items():
    s = [p.strength for p in pts]
    axes[0].plot(s, [p.mse_to_guide for p in pts], "o-", label=name)
    axes[1].plot(s, [p.fd for p in pts], "o-", label=name)
    axes[2].plot([p.mse_to_guide for p in pts], [p.fd for p in pts], "o-", label=name)
    for p in pts[:: max(1, len(pts) // 4)]:
        axes[2].annotate(f"{p.strength:.1f}", (p.mse_to_guide, p.fd), fontsize=7)
axes[1].axhline(floor, color="grey", ls=":", label="real-data floor")
axes[0].set(xlabel="strength s", ylabel="MSE to the guide", title="faithfulness (lower = closer)")
axes[1].set(xlabel="strength s", ylabel="digits FD", title="realism (lower = more digit-like)")
axes[2].set(xlabel="MSE to the guide", ylabel="digits FD", title="the trade-off curve")
for ax in axes:
    ax.legend(fontsize=8)
fig.tight_layout()
describe(fig, "Three panels: MSE to the guide against strength, digits FD against strength, "
         "and FD against MSE to the guide (the trade-off curve, points labelled by strength), "
         "one line per guide kind.")
plt.show()

# %%
for name, pts in sweeps.items():
    lo = min(pts, key=lambda p: p.fd)
    print(f"{name}: FD {pts[0].fd:.1f} at s = 0, lowest {lo.fd:.1f} at s = {lo.strength:.1f} "
          f"(MSE to guide {lo.mse_to_guide:.3f}), {pts[-1].fd:.1f} at s = 1 "
          f"(MSE to guide {pts[-1].mse_to_guide:.3f})")
rel = sweeps["relabel"]
first = next((p for p in rel if p.target_accuracy >= 0.9), rel[-1])
print(f"relabel: >= 90 % classified as the new class from s = {first.strength:.1f} "
      f"({first.target_accuracy:.1%}), where the MSE to the guide is {first.mse_to_guide:.3f} "
      f"against {rel[-1].mse_to_guide:.3f} at s = 1")

# %% [markdown]
# Reading the numbers (each one printed above). The distance to the guide rises with the
# strength for every kind of guide, steeply up to $s \approx 0.5$ and slowly after: above that
# the model has forgotten most of the guide. Realism does not simply improve with $s$:
#
# * **flipped** and **sketch** guides are far from digits (FD about 400 and 350 at $s = 0$). The
#   FD drops quickly and flattens from $s \approx 0.4$ near the level of unconditional samples
#   ($s = 1$, FD 125 with the unconditional branch and 50 DDIM steps; the real-data floor is
#   54). For sketches it is *lowest at an intermediate strength* ($s = 0.5$): the sketch keeps
#   the digit's layout, which the unconditional branch alone reproduces less well. That
#   middle strength is the useful end of the trade-off curve.
# * For flipped pixels, the distance to the *clean* digit first falls (from 0.59 to 0.29 at
#   $s = 0.2$: the corruption is removed) and then rises again (the digit itself is repainted):
#   SDEdit acts as a restorer for corruptions that noise of that level hides.
# * **relabel** guides are real held-out digits, part of the FD's own reference set, so realism
#   starts at its best (FD 22, below the floor of an independent set) and *gets worse*
#   on the way: at $s = 0.2$ the outputs are half-way between two classes (FD about 200, 62 %
#   read as the new class). From $s = 0.3$ nearly all of them are read as the new class while
#   keeping part of the guide (MSE 0.42 against 0.69 at $s = 1$), and the FD comes back down
#   (40 at $s = 0.4$). Fresh samples of the new class ($s = 1$, guidance at scale 2) score
#   worse (82): keeping part of a real digit helps realism.
#
# ## Super-resolution 4x4 -> 8x8
#
# The low-resolution image is the 2x2 average pooling of the digit. The SR model is a copy of
# the package's UNet with two input channels, $x_t$ and the low-res image repeated 2x2, and one
# output channel, trained with the usual noise-prediction loss on the training digits
# (cached like every other model here).

# %%
sr_net, sr_info = get_sr_model(sr_config)
sr_net = sr_net.to(device)
sr_sched = sr_schedule(sr_config)
print(f"SR model: {'from the cache' if sr_info.from_cache else 'trained now'}, "
      f"{sr_config.steps} steps of {sr_config.batch_size} digits, {sr_info.seconds:.0f} s of "
      "training (when it was trained; the machine may have been loaded)")
plot_loss_curve(sr_info.losses, "SR model: training loss");

# %% [markdown]
# Each held-out digit gets `SR_SAMPLES` samples (DDIM with the variance of DDPM, $\eta = 1$,
# 50 steps, from pure noise); the first is "SR sample", their average is "SR mean of 8", an
# estimate of the posterior mean $E[x_0 \mid \text{low-res}]$.

# %%
truth, truth_labels = held.images.to(device), held.labels
if pick(False, True):
    truth, truth_labels = truth[:16], truth_labels[:16]
methods, samples = sr_methods(sr_net, sr_sched, truth, n_samples=SR_SAMPLES, n_steps=N_STEPS)
rows = sr_rows(methods, truth.cpu(), truth_labels, classifier)
with torch.no_grad():
    truth_acc = (classifier(truth).argmax(1).cpu() == truth_labels).double().mean().item()
print(f"{len(truth)} held-out digits; classifier accuracy on the true 8x8 digits: {truth_acc:.1%}")
print(f"{'method':>14s} {'MSE':>7s} {'PSNR dB':>8s} {'consistency':>12s} {'accuracy':>9s} "
      f"{'FD':>7s}")
for r in rows:
    print(f"{r.method:>14s} {r.mse:7.4f} {r.psnr:8.2f} {r.consistency:12.5f} {r.accuracy:9.1%} "
          f"{r.fd:7.2f}")
print(f"FD floor ({len(truth)} real training digits against the held-out ones): "
      f"{rows[0].fd_floor:.2f}")

# %%
k = min(8, len(truth))
fig, ax = plt.subplots(figsize=(7, 5))
grid = torch.cat([methods["nearest"][:k], methods["bicubic"][:k], samples[0][:k],
                  samples[1][:k] if SR_SAMPLES > 1 else samples[0][:k], truth[:k]]).cpu()
show_grid(grid, ax, "rows: low-res (nearest) / bicubic / SR sample / another SR sample / truth",
          cols=k)
describe(fig, "A grid of eight held-out digits in five rows: the 4x4 low-resolution input shown "
         "by pixel repetition, bicubic upsampling, two super-resolution samples, and the true "
         "8x8 digit.")
plt.show()

# %% [markdown]
# What to expect and what the table shows. Bicubic and nearest are fixed functions of the 4x4
# input; a diffusion sample commits to one 8x8 digit that fits it. The perception-distortion
# argument says a single sample may have *higher* MSE than a blurry estimate while looking
# more real, and that averaging samples (towards the posterior mean) lowers the MSE. Here
# the comparison below prints which way each of these goes. Two cautions in reading it: the
# FD compares the outputs with the held-out digits, which are the very digits being
# upsampled, so an output close to its own truth can score *below* the real-data floor (the
# floor is an independent set of real digits); and consistency, the error of the output's own
# 2x2 pooling against the input, is zero for nearest by construction, while the SR model is
# not forced to be consistent and can only have learnt it.

# %%
r = {row.method: row for row in rows}
bic, one, avg = r["bicubic"], r["SR sample"], r[f"SR mean of {SR_SAMPLES}"]
print(f"MSE: SR sample / bicubic = {one.mse / bic.mse:.2f} "
      f"({'lower' if one.mse < bic.mse else 'higher'} than bicubic); "
      f"SR mean / SR sample = {avg.mse / one.mse:.2f}")
print(f"FD: SR sample {one.fd:.2f}, bicubic {bic.fd:.2f}, SR mean {avg.fd:.2f}; "
      f"accuracy: SR sample {one.accuracy:.1%}, bicubic {bic.accuracy:.1%}")
print(f"consistency: SR sample {one.consistency:.5f} against bicubic {bic.consistency:.5f}")
spread = samples.var(0).mean().item()  # per-pixel variance across the samples of one digit
print(f"spread of the {SR_SAMPLES} samples of a digit: per-pixel variance {spread:.4f} "
      f"(the SR sample's squared error to the truth: {one.mse:.4f})")

# %% [markdown]
# On the full run the SR sample beats bicubic on every measure at once, distortion included:
# an 8x8 digit is so constrained by its 4x4 pooling that a model of digits recovers most of
# it, while bicubic only interpolates and loses the strokes' contrast. The
# perception-distortion trade-off appears where it should, between one sample and the mean of
# several: the mean has the lower MSE. That the mean does not lose in FD or accuracy here says
# that at this size the posterior given the low-res digit is narrow: the samples of one digit
# differ by a per-pixel variance well below their squared error to the truth, so their mean is
# hardly blurred.

# %%
print(f"lab run time: {time.perf_counter() - lab_start:.0f} s on {device}, "
      f"{time.process_time() - cpu_start:.0f} s of CPU time in this process "
      "(includes training unless the models came from the cache)")
