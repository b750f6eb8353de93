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
# # Lab: a latent consistency model on CPU
#
# The class-conditional digits UNet that the guidance notes use is the teacher. Sampled with
# classifier-free guidance and deterministic DDIM it needs 10 to 20 steps, each of them two
# network evaluations (with and without the label). Here we distil it into a consistency
# student, the recipe of latent consistency models [@luo2023latent]: guidance folded into the
# student through a $w$ input, skipping steps of $k = 50$ timesteps on the teacher's trajectory
# (LCM's default is 20; the [note](lcm.md#a-coarser-grid-k-50) says why this small teacher does
# better with 50), an EMA target network, and the boundary scalings $c_\text{skip}, c_\text{out}$.
# Half of every batch also learns the *trajectory* target of trajectory consistency
# distillation (TCD) [@zheng2024trajectory]: agree with the target network not only on the clean
# end of the teacher's trajectory but at a random level along it. That is what lets the
# student be sampled with TCD's sampler, which re-noises only part of the way.
# Then we sample the student in 1, 2 and 4 steps with both samplers and put its digits and its
# scores beside the teacher's, and beside an *ideal* student that has no distillation error.
#
# 1. the teacher and its guided DDIM samples at 10 and 20 steps;
# 2. the boundary scalings;
# 3. the distillation (a few minutes on a CPU, then cached);
# 4. the student at 1, 2 and 4 steps, LCM's sampler and TCD's, next to the teacher;
# 5. how much to re-noise: TCD's $\gamma$ from 0 to 1;
# 6. the ideal student: how far each sampler itself can go;
# 7. the guidance scale as an input: one student, several $w$.
#
# Everything runs in pixel space: the 8x8 digits are already smaller than any latent an image
# model would use (the latent-diffusion lab measures what an autoencoder adds and costs).
# Set `DIFFUSION_NOTES_SMOKE=1` for a seconds-long dry run with tiny settings.

# %%
import time
from dataclasses import replace

import matplotlib.pyplot as plt
import torch

from diffusion_notes import get_device, is_smoke, pick
from diffusion_notes.cache import get_or_train
from diffusion_notes.consistency import (
    DEFAULT_GAMMA,
    DistillConfig,
    IdealStudent,
    balanced_labels,
    boundary_scalings,
    get_student,
    lcm_start,
    sample_guided_ddim,
    sample_student,
    sd_terminal_alpha_bar,
    smoke_config,
)
from diffusion_notes.metrics import class_accuracy, get_digit_classifier, score_digits_held_out
from diffusion_notes.plots import plot_loss_curve, show_grid
from diffusion_notes.train import PRESETS, make_schedule_for

device = get_device()
lab_start = time.perf_counter()
teacher_config = pick(PRESETS["digits_cond"],
                      replace(PRESETS["digits_cond"], steps=20, batch_size=32))
distill_config = pick(DistillConfig(), smoke_config(DistillConfig()))
schedule = make_schedule_for(teacher_config)
W = 0.0  # the guidance scale we compare at (eps_c + W (eps_c - eps_u)); 0 as in the table
N_PER_CLASS = pick(64, 2)  # 640 conditional samples per sampler, 64 of every digit
labels = balanced_labels(N_PER_CLASS)
print(f"device: {device}; smoke mode: {is_smoke()}; {len(labels)} samples per sampler")
print(distill_config)

# %% [markdown]
# ## 1. The teacher
#
# `train.PRESETS["digits_cond"]` from the model cache: a UNet with 32 base channels trained on
# the 80 % training split with the label dropped to the null token 10 % of the time, so one
# network gives both $\epsilon_\theta(x_t, c)$ and $\epsilon_\theta(x_t, \varnothing)$. Its
# guided noise is $\epsilon_w = \epsilon_\theta(x_t, c) + w\,(\epsilon_\theta(x_t, c) -
# \epsilon_\theta(x_t, \varnothing))$. Every score below is the held-out digits FD (against
# the 359 digits no model here has seen) with its size-matched real-data floor, precision and
# recall, and the share of samples the digit classifier reads as the digit that was asked for.

# %%
teacher, tinfo = get_or_train(teacher_config, device=device)
classifier, cinfo = get_digit_classifier(device=device)
print(f"teacher {'from cache' if tinfo.from_cache else 'trained'}: {tinfo.path.name}, "
      f"{tinfo.seconds:.0f} s of training; classifier held-out accuracy {cinfo.accuracy:.3f}")

results = {}
grids = {}


def evaluate(name, draw):
    """Draw the 640 samples with a fixed seed, time them, score them."""
    start = time.perf_counter()
    with torch.no_grad():
        samples = draw(torch.Generator().manual_seed(0)).cpu()
    seconds = time.perf_counter() - start
    score = score_digits_held_out(samples, classifier)
    acc = class_accuracy(samples, labels, classifier)
    results[name] = (score, acc, seconds * 64 / len(samples))
    grids[name] = samples
    print(f"{name:>22}: FD {score.fd:6.2f} (floor {score.floor:.2f}), precision "
          f"{score.precision:.3f}, recall {score.recall:.3f}, class accuracy {acc:.3f}, "
          f"{seconds * 64 / len(samples):.3f} s per 64 samples")


for n in (10, 20):
    evaluate(f"teacher DDIM-{n}", lambda g, n=n: sample_guided_ddim(
        teacher, schedule, labels, n_steps=n, w=W, generator=g))

# %% [markdown]
# ## 2. The boundary condition
#
# The student outputs a noise prediction, turned into a clean-data guess
# $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon)/\sqrt{\bar\alpha_t}$, and its
# consistency function is $f_\theta(x_t, t) = c_\text{skip}(t)\,x_t + c_\text{out}(t)\,\hat x_0$
# with LCM's scalings at $u = 10\,t$ and $\sigma_\text{data} = 0.5$:
# $c_\text{skip} = \sigma_\text{data}^2/(u^2 + \sigma_\text{data}^2)$ and
# $c_\text{out} = u/\sqrt{u^2 + \sigma_\text{data}^2}$. At $t = 0$ they are exactly 1 and 0,
# so $f(x, 0) = x$ whatever the network says; already at $t = 1$ the network's guess
# dominates.

# %%
ts = torch.arange(0, 40)
c_skip, c_out = boundary_scalings(ts)
for t in (0, 1, 2, 19):
    print(f"t = {t:3d}: c_skip = {c_skip[t].item():.6f}, c_out = {c_out[t].item():.6f}")
fig, ax = plt.subplots(figsize=(6.5, 2.6))
ax.plot(ts, c_skip, label=r"$c_\mathrm{skip}(t)$")
ax.plot(ts, c_out, label=r"$c_\mathrm{out}(t)$")
ax.set_xlabel("timestep t")
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 3. Distillation
#
# Each step draws 64 training digits with their labels, a timestep $t_{n+k}$ on the grid
# $49, 99, \dots, 699$ ($k = 50$; the full grid goes on to 999, but this one stops at the level
# where sampling will start, section 4), noise, and a guidance scale $w \sim U[0, 2]$.
# The teacher takes one guided DDIM step from $t_{n+k}$ to $t_n = t_{n+k} - 50$; the student's
# $f_\theta(x_{t_{n+k}}, t_{n+k}, w, c)$ is pulled towards the EMA target's
# $f_{\theta^-}(\hat x_{t_n}, t_n, w, c)$ under the pseudo-Huber distance. The student starts
# as a copy of the teacher (its new $w$ branch starts at zero). The result is cached.
#
# That is LCM's loss. For half of each batch (`trajectory_fraction = 0.5`) both predictions are
# first carried down to a level $s$ drawn uniformly from $0, \dots, t_n$, along the straight DDIM
# line through the point they were made at:
# $J(f, x_t, t \to s) = \sqrt{\bar\alpha_s}\, f + \sqrt{1-\bar\alpha_s}\,
# (x_t - \sqrt{\bar\alpha_t} f)/\sqrt{1-\bar\alpha_t}$.
# The student is then held to the target on the way down, not only at the clean end: its
# implied noise has to be right too ([note](lcm.md#trajectory-consistency-re-noising-part-of-the-way)).

# %%
grid = distill_config.grid(schedule.T, distill_config.top(schedule))
print(f"k = {distill_config.skip}: {len(grid)} grid timesteps, {grid[0].item()} .. {grid[-1].item()}")
student, dinfo = get_student(distill_config, teacher=teacher_config, device=device)
print(f"student {'from cache' if dinfo.from_cache else 'distilled'}: {dinfo.path.name}; "
      f"{distill_config.steps} steps in {dinfo.seconds:.0f} s")
plot_loss_curve(dinfo.losses, "consistency distillation loss (pseudo-Huber)")
plt.show()

# %% [markdown]
# ## 4. One, two and four steps
#
# Multistep consistency sampling (LCM's sampler): map the noise to data with $f_\theta$, add
# noise back at the next (lower) timestep of the grid, map again. TCD's sampler takes the same
# timesteps but re-noises only part of the way: from $x_t$ it follows the student's DDIM line
# down to $s = \lfloor (1-\gamma)\, t_\text{next} \rfloor$, then adds fresh noise from $s$ up
# to $t_\text{next}$; $\gamma = 1$ is LCM's full re-noising, $\gamma = 0$ is DDIM. We use
# TCD's default $\gamma = 0.3$. The same 640 labels and the same seed as the teacher's samples.
#
# Where the first step starts matters more than anything else here. diffusers' `LCMScheduler`
# starts at $t = 999$, where this pixel schedule leaves $\sqrt{\bar\alpha} = 0.0064$ of signal:
# the student's noise prediction becomes $\hat x_0$ through a division by that number, so its
# errors come out about 156 times larger. Stable Diffusion, which LCM was built on, never goes
# below $\bar\alpha = 0.0047$ ($\sqrt{\bar\alpha} = 0.068$, errors times 15). So
# `sample_student` starts at the highest grid point that keeps that much signal
# (`consistency.lcm_start`, $t = 699$ on this grid) and treats the pure noise as $x_{699}$. The
# cell also prints a one-step sample from $t = 999$; this student was never trained above 699
# (its distillation grid stops there too), so that row shows both problems at once. The
# [note](lcm.md#where-the-first-step-starts) separates them: an earlier student ($k = 20$)
# trained on the whole grid scored FD 392 from 999 and 19 from 719.
#
# Read the comparison printed at the end with its noise in mind: with 640 samples against 359
# held-out digits, one seed's FD moves by 1 to 3 from seed to seed, as much as the gaps between
# these rows. So the last cell draws the rows the goals compare with two more seeds and
# judges the goals on the means, as `bench/lcm.py` does (the
# [note](lcm.md#what-the-lab-measures) has its table). The goals are judged on TCD's sampler;
# LCM's is printed beside it.

# %%
start = lcm_start(schedule, distill_config.skip)
print(f"first step at t = {start}: alpha_bar = {schedule.alpha_bar[start].item():.5f} "
      f"(Stable Diffusion's last level: {sd_terminal_alpha_bar():.5f}); at t = 999: "
      f"{schedule.alpha_bar[999].item():.6f}")


def student_draw(n, gamma=None, w=W):
    """Draw the 640 samples from the student in n steps: LCM's sampler, or TCD's at gamma."""
    return lambda g: sample_student(student, schedule, labels, n_steps=n, w=w,
                                    skip=distill_config.skip, generator=g, gamma=gamma)


for n in (1, 2, 4):
    evaluate(f"student LCM-{n}", student_draw(n))
for n in (2, 4):
    evaluate(f"student TCD-{n}", student_draw(n, DEFAULT_GAMMA))
evaluate("student LCM-1 from 999", lambda g: sample_student(
    student, schedule, labels, n_steps=1, w=W, skip=distill_config.skip, generator=g,
    start=schedule.T - 1))

names = ["teacher DDIM-20", "teacher DDIM-10", "student TCD-4", "student TCD-2",
         "student LCM-4", "student LCM-1"]
fig, axes = plt.subplots(2, 3, figsize=(7.5, 5.6))
axes = axes.ravel()
show = torch.cat([torch.arange(10) + 10 * i for i in range(min(3, N_PER_CLASS))])
for ax, name in zip(axes, names, strict=True):
    show_grid(grids[name][show], ax, name, cols=10)
fig.tight_layout()
plt.show()

# %%
print(f"{'sampler':>22} | network evaluations | FD held-out (floor) | precision | recall | "
      "class accuracy | s / 64 samples")
for name, (score, acc, sec) in results.items():
    steps = int(name.split("-")[1].split()[0])
    nfe = 2 * steps if "DDIM" in name and W > 0 else steps
    print(f"{name:>22} | {nfe:19d} | {score.fd:8.2f} ({score.floor:.2f}) | "
          f"{score.precision:9.3f} | {score.recall:6.3f} | {acc:14.3f} | {sec:.3f}")
fd = {name: r[0].fd for name, r in results.items()}
print(f"seed 0: TCD-4 vs DDIM-20: {fd['student TCD-4']:.2f} vs {fd['teacher DDIM-20']:.2f}; "
      f"TCD-2 vs DDIM-10: {fd['student TCD-2']:.2f} vs {fd['teacher DDIM-10']:.2f}")

# the goals are judged on three seeds: draw the compared rows again with seeds 1 and 2
draws = {
    "teacher DDIM-10": lambda g: sample_guided_ddim(teacher, schedule, labels, n_steps=10, w=W,
                                                    generator=g),
    "teacher DDIM-20": lambda g: sample_guided_ddim(teacher, schedule, labels, n_steps=20, w=W,
                                                    generator=g),
    "student LCM-2": student_draw(2),
    "student LCM-4": student_draw(4),
    "student TCD-2": student_draw(2, DEFAULT_GAMMA),
    "student TCD-4": student_draw(4, DEFAULT_GAMMA),
}
mean_fd = {}
for name, draw in draws.items():
    fds = [fd[name]]
    for seed in (1, 2):
        with torch.no_grad():
            fds.append(score_digits_held_out(draw(torch.Generator().manual_seed(seed)).cpu(),
                                             classifier).fd)
    mean_fd[name] = sum(fds) / len(fds)
    print(f"{name:>22}: FD per seed {' / '.join(f'{v:.2f}' for v in fds)}, "
          f"mean {mean_fd[name]:.2f}")
for student_row, teacher_row in (("student TCD-4", "teacher DDIM-20"),
                                 ("student TCD-2", "teacher DDIM-10"),
                                 ("student LCM-4", "teacher DDIM-20"),
                                 ("student LCM-2", "teacher DDIM-10")):
    met = mean_fd[student_row] <= mean_fd[teacher_row]
    goal = "goal" if "TCD" in student_row else "with LCM's sampler"
    print(f"{goal}: {student_row} <= {teacher_row} on the means: {mean_fd[student_row]:.2f} vs "
          f"{mean_fd[teacher_row]:.2f}, {'met' if met else 'not met'}")

# %% [markdown]
# ## 5. How much to re-noise
#
# TCD's $\gamma$ slides between the two samplers. At $\gamma = 1$ every step throws away all
# of $x_t$ except the student's clean guess (LCM); at $\gamma = 0$ nothing is re-noised and
# the student's noise prediction carries the whole path, as in DDIM. The student's 4-step FD
# across $\gamma$ (seed 0), beside DDIM-20's:

# %%
gammas = (0.0, 0.15, 0.3, 0.5, 0.7, 1.0)
gamma_fd = []
for gamma in gammas:
    with torch.no_grad():
        samples = student_draw(4, gamma)(torch.Generator().manual_seed(0)).cpu()
    gamma_fd.append(score_digits_held_out(samples, classifier).fd)
    print(f"gamma = {gamma:4.2f}: 4-step FD {gamma_fd[-1]:.2f}")
fig, ax = plt.subplots(figsize=(6.5, 2.8))
ax.plot(gammas, gamma_fd, "o-", label="student, 4 steps (TCD sampler)")
ax.axhline(fd["teacher DDIM-20"], color="gray", ls="--", label="teacher DDIM-20")
ax.axhline(fd["student LCM-4"], color="C1", ls=":", label="student, 4 steps (LCM sampler)")
ax.set_xlabel(r"$\gamma$ (0: DDIM, 1: full re-noising)")
ax.set_ylabel("held-out FD, seed 0")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
best = gammas[min(range(len(gammas)), key=gamma_fd.__getitem__)]
print(f"lowest FD at gamma = {best:g} (seed 0; the default {DEFAULT_GAMMA:g} was chosen on "
      f"seeds 3 to 5 in bench runs)")

# %% [markdown]
# ## 6. The ideal student
#
# How much of the gap is the distillation's fault? `consistency.IdealStudent` goes into the
# same samplers, with the same timesteps and the same noise, in place of the student: it is
# what LCM's loss asks the student to be, the teacher's own DDIM run down the grid from each
# step's timestep (14 teacher calls from 699). That is a student with zero distillation error
# on LCM's target, so its scores are what each multistep sampler can give with this teacher.
# Compare each row with the student's.

# %%
ideal = IdealStudent(teacher, schedule, distill_config.skip)
ideal_fd = {}
for sampler, gamma, steps in (("LCM", None, (1, 2, 4)), ("TCD", DEFAULT_GAMMA, (2, 4))):
    for n in steps:
        fds = []
        for seed in (0, 1, 2):
            with torch.no_grad():
                samples = sample_student(ideal, schedule, labels, n_steps=n, w=W,
                                         skip=distill_config.skip, gamma=gamma,
                                         generator=torch.Generator().manual_seed(seed)).cpu()
            fds.append(score_digits_held_out(samples, classifier).fd)
        ideal_fd[sampler, n] = sum(fds) / len(fds)
        real = mean_fd.get(f"student {sampler}-{n}")
        print(f"ideal {sampler}-{n}: FD per seed {' / '.join(f'{v:.2f}' for v in fds)}, mean "
              f"{ideal_fd[sampler, n]:.2f}"
              + ("" if real is None else f"; the distilled student: {real:.2f}"))
print(f"LCM's sampler, ideal student: 4 steps {ideal_fd['LCM', 4]:.2f} against 2 steps "
      f"{ideal_fd['LCM', 2]:.2f} and DDIM-20's {mean_fd['teacher DDIM-20']:.2f}")
print(f"TCD's sampler, ideal student: 4 steps {ideal_fd['TCD', 4]:.2f} against 2 steps "
      f"{ideal_fd['TCD', 2]:.2f}")

# %% [markdown]
# ## 7. The guidance scale is an input
#
# The comparison above is at $w = 0$: the plain conditional model, as in the fast-sampling
# table. The student saw $w \in [0, 2]$ during distillation; asking it for $w = 1$ and $2$ at
# 4 steps is meant to move it the way guidance moves the teacher (whose guided DDIM now costs
# two network calls per step): digits read more surely as their label, at some cost in
# diversity (recall). The last lines print how far each one moves from $w = 0$ to $w = 2$.

# %%
for w in (1.0, 2.0):
    for who, draw in (
        ("teacher DDIM-20", lambda g, w=w: sample_guided_ddim(
            teacher, schedule, labels, n_steps=20, w=w, generator=g)),
        ("student TCD-4", student_draw(4, DEFAULT_GAMMA, w)),
    ):
        evaluate(f"{who} w={w:g}", draw)
for who in ("teacher DDIM-20", "student TCD-4"):
    s0, s2 = results[who][0], results[f"{who} w=2"][0]
    print(f"{who}: from w = 0 to w = 2, FD {s0.fd:.2f} -> {s2.fd:.2f}, "
          f"recall {s0.recall:.3f} -> {s2.recall:.3f}")
print(f"lab run time: {time.perf_counter() - lab_start:.0f} s")
