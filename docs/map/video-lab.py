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
# # Lab: video diffusion in miniature
#
# The central move of video diffusion since Video Diffusion Models [@ho2022video] is to keep an
# image denoiser for the content of each frame and add layers that look *across* frames.
# Here that idea runs on a toy we can measure exactly: an 8x8 digit moving at a constant speed
# on a 16x16 canvas and bouncing off the walls, 8 frames per clip.
#
# 1. Train a 16x16 image UNet on single frames (through the model cache).
# 2. Wrap it into a factorised space-time denoiser: after every ResBlock, temporal attention
#    across the 8 frames at each pixel, initialised to the identity, so that the new model
#    starts out *equal* to the image model on every frame. Freeze the image layers and train only
#    these "motion modules", as AnimateDiff [@guo2023animatediff] does.
# 3. Generate clips unconditionally and from a given first frame (image-to-video, by replacing
#    the known frame's prediction at every step), and compare them with the frame-by-frame
#    baseline: the image model sampling each frame independently from the same noise.
# 4. Measure temporal consistency: does the digit keep its class (the held-out classifier on
#    the 8x8 window around the ink's centre of mass), and does it move as the data's
#    constant-speed-and-bounce model says?
#
# Set `DIFFUSION_NOTES_SMOKE=1` for a seconds-long dry run with tiny settings.

# %%
import time

import torch
from IPython.display import HTML, display
from torch.nn import functional as F

from diffusion_notes import get_device, pick
from diffusion_notes.cache import get_or_train
from diffusion_notes.data.clips import make_clips
from diffusion_notes.metrics import get_digit_classifier
from diffusion_notes.plots import clips_gif, gif_html, plot_loss_curve
from diffusion_notes.timesteps import timestep_pairs
from diffusion_notes.train import make_schedule_for, preset
from diffusion_notes.video import (
    VideoConfig,
    compare_with_baseline,
    get_or_train_video,
    sample_previous,
)
from diffusion_notes.video_metrics import frame_classes, score_clips

device = get_device()
lab_start = time.perf_counter()
image_config = preset("digits_frames", **pick({}, {"steps": 4, "batch_size": 8}))
config = VideoConfig(image=image_config, **pick({}, {"steps": 4, "n_clips": 16}))
N_CLIPS = pick(64, 4)  # clips generated per model for the measurements
N_STEPS = pick(25, 3)  # DDIM steps
print(f"device: {device}; image model: {image_config.steps} steps of {image_config.batch_size} "
      f"frames; video model: {config.steps} steps of {config.batch_size} clips x {config.frames} "
      f"frames; temporal layers: {config.temporal}; image layers frozen: {config.freeze_spatial}")

# %% [markdown]
# ## The data: a digit bouncing around
#
# Each clip takes a digit from the training 80 % of scikit-learn's digits, a start phase and a
# speed of 1 or 2 pixels per frame on each axis. The corner of the digit moves along a cycle of
# length 16 and is reflected into 0..8, which is exactly a bounce. Eight clips of the
# training set:

# %%
real = make_clips(16, config.frames, seed=123)
display(HTML(gif_html(clips_gif(real.frames[:8]), "eight training clips")))
print("speeds (row, col) of these clips:", real.speed[:8].tolist())

# %% [markdown]
# ## Training: the image model, then only the motion layers

# %%
image_model, image_info = get_or_train(image_config, device=device)
video_model, info = get_or_train_video(config, device=device)
schedule = make_schedule_for(image_config)
state = "from the cache" if info.from_cache else "trained now"
print(f"image model: {image_info.seconds:.1f} s of training "
      f"({'cached' if image_info.from_cache else 'trained now'})")
print(f"video model ({state}): {info.seconds:.1f} s of training; trainable parameters "
      f"{info.trainable:,} of {info.total:,} ({100 * info.trainable / info.total:.0f} %)")
plot_loss_curve(info.losses, "video model: loss of the motion layers' training");

# %% [markdown]
# ## How the tracked digit is read
#
# The held-out classifier of the digits labs was trained on 8x8 digits, so it should read an
# 8x8 window of the frame. Two ways to get one: the window around the ink's centre of mass
# (placed with the average centre of mass of a digit inside its patch), or the whole 16x16
# frame averaged down to 8x8. On real clips of held-out digits, the measured accuracy of each:

# %%
classifier, clf_info = get_digit_classifier(device=device)
held = make_clips(pick(300, 20), config.frames, seed=7, split="held_out")
acc_crop = (frame_classes(classifier, held.frames) == held.labels[:, None]).double().mean().item()
small = F.avg_pool2d(held.frames.flatten(0, 1), 2).to(device)
with torch.no_grad():
    pred_small = classifier(small).argmax(1).cpu().reshape(held.labels.shape[0], -1)
acc_small = (pred_small == held.labels[:, None]).double().mean().item()
print(f"classifier accuracy on held-out clips: centre-of-mass window {acc_crop:.1%}, "
      f"downscaled frame {acc_small:.1%} (on 8x8 digits: {clf_info.accuracy:.1%})")

# %% [markdown]
# Downscaling shrinks the digit to 4x4 pixels inside an 8x8 image, a picture the classifier has
# never seen; the window keeps the digit at its own size, so the measurements below use it.
#
# ## Unconditional clips: video model against frame by frame
#
# Both models start from the same noise (seed 0) and take the same 25 DDIM steps. The video
# model's clips first, then the image model sampling each frame on its own:

# %%
cmp = compare_with_baseline(video_model, image_model, schedule, classifier, n_clips=N_CLIPS,
                            frames=config.frames, n_steps=N_STEPS, seed=0)
display(HTML(gif_html(clips_gif(cmp.clips_video[:16]), "video model, unconditional")))
display(HTML(gif_html(clips_gif(cmp.clips_baseline[:16]), "frame-by-frame baseline")))

# %% [markdown]
# ## Image-to-video: from a given first frame
#
# The first frame of held-out clips is given. At every step the denoiser's prediction of that
# frame is replaced by the frame itself, so the sampler keeps it exactly (checked below) while
# the temporal layers pass it on to the other frames.

# %%
display(HTML(gif_html(clips_gif(cmp.clips_i2v[:16]), "video model from a given first frame")))
kept = torch.equal(cmp.clips_i2v[:, 0], cmp.first_frames[:, 0])
print(f"first frame kept exactly in all {N_CLIPS} clips: {kept}")

# %% [markdown]
# ## Measured temporal consistency
#
# *Class kept*: the share of frames whose tracked digit has the clip's class (its most frequent
# class; from a first frame: the class of the given frame, over the 7 generated frames).
# *Motion error*: the RMS gap, in pixels per frame and axis, between the centre-of-mass moves
# and those of the best constant-speed bouncing trajectory (speeds 1 to 2 px per frame). On
# real clips both are perfect (100 % and 0 px, see `tests/test_video.py`).

# %%
rows = [("video model", cmp.video), ("frame by frame", cmp.baseline),
        ("video model, from frame 0", cmp.video_i2v), ("frame by frame, from frame 0", cmp.baseline_i2v)]
print(f"{'':30s} {'class kept':>10s} {'motion error (px)':>18s}")
for name, s in rows:
    print(f"{name:30s} {s.class_consistency:10.1%} {s.motion_error:18.2f}")
ratio = cmp.video.motion_error / cmp.baseline.motion_error
print(f"\ngoal 1, class kept in >= 90 % of frames: unconditional {cmp.video.class_consistency:.1%}, "
      f"from a first frame {cmp.video_i2v.class_consistency:.1%}")
print(f"goal 2, motion error at most half the baseline's: ratio {ratio:.2f} "
      f"({cmp.video.motion_error:.2f} px against {cmp.baseline.motion_error:.2f} px)")
print(f"sampling: {cmp.seconds_per_clip_video * 1000:.0f} ms per clip (video model), "
      f"{cmp.seconds_per_clip_baseline * 1000:.0f} ms per clip (frame by frame), {N_STEPS} steps")

# %% [markdown]
# Reading the numbers: the frame-by-frame baseline draws a new digit at a new place in every
# frame, so its class agreement is what the most frequent of eight independent draws gives and
# its motion error is the size of a random jump. The video model has to agree with itself
# across frames through the temporal attention alone (the image layers were frozen), and the
# table says how far 300 steps of training on these clips got it.

# %% [markdown]
# ## Another design: one frame at a time, from the frames before it
#
# The factorised model denoises all eight frames together and must agree with itself across
# them. The autoregressive alternative makes a clip one frame at a time: frame $j$ is denoised
# with the two frames before it given *clean*, as extra input channels of the image UNet, the
# way MCVD [@voleti2022mcvd] conditions on past frames. Two clean frames are enough to read the
# digit's velocity, so after the first two frames the next one is nearly determined: the
# network has to learn to copy the digit one step further along its path.
#
# * The new input channels go through a convolution of their own that starts at zero, so the
#   model starts as the image model; here the image layers are trained too.
# * Training uses teacher forcing: every frame of a training clip gets its own noise level and
#   sees the clean frames before it.
# * The network is trained to predict $v = \sqrt{\bar\alpha_t}\,\epsilon -
#   \sqrt{1-\bar\alpha_t}\,x_0$ [@salimans2022progressive] rather than $\epsilon$. At high
#   noise the frame is decided by its context, not by $x_t$, and an error $\delta$ in a
#   predicted $\epsilon$ becomes an error $\delta / \sqrt{\mathrm{SNR}(t)}$ in the frame it
#   implies (26 times larger at $t = 800$); in a predicted $v$ it stays at most $\delta$.
# * The learning rate decays linearly to zero over the run. A copy has to be exact to keep the
#   class, and weights that still move at the full rate at the end of training copy less
#   exactly than weights that have settled (the note measures the difference).
#
# Its training here is short, to keep the lab within minutes; the note gives the long run.

# %%
print(f"error of x0 per unit error of the prediction at t = 800: eps {float(schedule.snr[800]) ** -0.5:.1f}, "
      f"v {float(1 - schedule.alpha_bar[800]) ** 0.5:.2f}")
prev_config = VideoConfig(image=image_config, temporal="previous", freeze_spatial=False,
                          prediction="v", lr=1e-3, lr_schedule="linear",
                          **pick({"steps": 800}, {"steps": 4, "n_clips": 16}))
prev_model, prev_info = get_or_train_video(prev_config, device=device)
print(f"autoregressive model ({'from the cache' if prev_info.from_cache else 'trained now'}): "
      f"{prev_config.steps} steps, {prev_info.seconds:.1f} s of training; trainable parameters "
      f"{prev_info.trainable:,} of {prev_info.total:,}")
prev = compare_with_baseline(prev_model, image_model, schedule, classifier, n_clips=N_CLIPS,
                             frames=prev_config.frames, n_steps=N_STEPS, seed=0, prediction="v")
prev_noise = torch.randn(prev.clips_video.shape, generator=torch.Generator().manual_seed(0)).to(device)
display(HTML(gif_html(clips_gif(prev.clips_video[:16]), "autoregressive model, unconditional")))
display(HTML(gif_html(clips_gif(prev.clips_i2v[:16]), "autoregressive model from a given first frame")))
prev_ratio = prev.video.motion_error / prev.baseline.motion_error
print(f"{'':30s} {'class kept':>10s} {'motion error (px)':>18s}")
for name, sc in (("autoregressive", prev.video), ("autoregressive, from frame 0", prev.video_i2v),
                 ("frame by frame", prev.baseline)):
    print(f"{name:30s} {sc.class_consistency:10.1%} {sc.motion_error:18.2f}")
print(f"\ngoal 1, class kept in >= 90 % of frames: {prev.video.class_consistency:.1%} "
      f"({'met' if prev.video.class_consistency >= 0.9 else 'not met'} after {prev_config.steps} steps)")
print(f"goal 2, motion error at most half the baseline's: ratio {prev_ratio:.2f} "
      f"({'met' if prev_ratio <= 0.5 else 'not met'})")
print(f"sampling: {prev.seconds_per_clip_video * 1000:.0f} ms per clip, one frame at a time")

# %% [markdown]
# ### The same model, sampled with noise
#
# The note's long run keeps the class more often when each frame is drawn by DDIM with
# $\eta = 1$ (fresh noise at every step, as DDPM does) than by deterministic DDIM. Noise lets
# later steps undo part of an early error, so it helps a model whose copies are already nearly
# right: the long run's model keeps the class of a given first frame in 100 % of the frames it
# makes. Below is that sampler on this short run's model, with the same 25 steps, initial noise
# and given first frames as the table above, so that only the noise differs. The last line
# says whether it helps here.

# %%
start = time.perf_counter()
noisy = {
    name: sample_previous(prev_model, schedule, prev_noise, timestep_pairs(schedule.T, N_STEPS),
                          known=known, prediction="v", eta=1.0,
                          generator=torch.Generator().manual_seed(1), progress=False).cpu()
    for name, known in (("unconditional", None), ("from frame 0", prev.first_frames.to(device)))
}
noisy_seconds = (time.perf_counter() - start) / (2 * N_CLIPS)
ref = frame_classes(classifier, prev.first_frames)[:, 0]
noisy_scores = {"unconditional": score_clips(classifier, noisy["unconditional"]),
                "from frame 0": score_clips(classifier, noisy["from frame 0"], reference=ref, skip=1)}
print(f"{'class kept, DDIM ' + str(N_STEPS) + ' steps':30s} {'eta 0':>8s} {'eta 1':>8s}")
for name, before in (("unconditional", prev.video), ("from frame 0", prev.video_i2v)):
    print(f"{name:30s} {before.class_consistency:8.1%} {noisy_scores[name].class_consistency:8.1%}")
print(f"motion error with eta 1: {noisy_scores['unconditional'].motion_error:.2f} px; "
      f"sampling {noisy_seconds * 1000:.0f} ms per clip")
gain = noisy_scores["unconditional"].class_consistency - prev.video.class_consistency
print(f"noise {'helps' if gain > 0 else 'does not help'} this model ({100 * gain:+.1f} points "
      f"unconditionally); from a given first frame it keeps the class in "
      f"{prev.video_i2v.class_consistency:.1%} of frames (the long run: 100 %)")

# %%
print(f"lab run time: {time.perf_counter() - lab_start:.0f} s on {device} "
      "(includes training unless the models came from the cache)")
