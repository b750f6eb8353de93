"""Video diffusion in miniature: train a factorised space-time denoiser, generate clips.

* :class:`VideoConfig` names everything that determines a trained video model (and so its
  cache key), including the :class:`~diffusion_notes.train.TrainConfig` of the image model its
  spatial layers come from.
* :func:`get_or_train_video` returns that model from the model cache, or trains it once: the
  image model comes from :func:`diffusion_notes.cache.get_or_train`, is wrapped by a
  :class:`~diffusion_notes.models.video.VideoUNet` whose temporal layers start as the identity,
  and then (optionally with the image layers frozen, as AnimateDiff does) the simple loss of
  DDPM [@ho2020denoising, Eq. 14] is minimised on clips, every frame of a clip at the same ``t``.
* :class:`KnownFramesDenoiser` generates from given first frames (image-to-video) by
  *replacement*: at every step the prediction of ``x0`` for the known frames is the known frames
  themselves, so every sampler keeps them on their own noising path and returns them exactly at
  the end, while the temporal layers carry them into the other frames (the replacement method
  that Video Diffusion Models [@ho2022video, sec. 3.1] discuss for conditional generation).
* ``VideoConfig(temporal="previous")`` is the autoregressive alternative: a
  :class:`~diffusion_notes.models.video.PreviousFramesUNet` learns every frame of a clip at its
  own ``t`` with the clip's previous two frames given clean (teacher forcing,
  :func:`previous_frames_loss`), and :func:`sample_previous` generates a clip one frame at a
  time, each from the frames already made (MCVD's conditioning on past frames
  [@voleti2022mcvd]).
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import torch
from tqdm import tqdm

from diffusion_notes.cache import get_or_train
from diffusion_notes.cache_store import cache_root, config_hash
from diffusion_notes.checkpoints import (
    CheckpointError,
    atomic_save,
    load_checkpoint,
    wrap_checkpoint,
)
from diffusion_notes.data.clips import FRAMES, make_clips
from diffusion_notes.denoiser import Denoised, Denoiser
from diffusion_notes.diffusion import (
    PREDICTIONS,
    Prediction,
    prediction_target,
    q_sample,
    training_loss,
)
from diffusion_notes.models.video import (
    TEMPORAL_KINDS,
    PreviousFramesUNet,
    TemporalKind,
    VideoUNet,
    all_previous_frames,
    previous_frames,
)
from diffusion_notes.runtime import get_device
from diffusion_notes.schedules import Schedule
from diffusion_notes.train import (
    TrainConfig,
    _generator,
    batch_indices,
    build_model,
    ema_decay_at,
    lr_at,
    make_schedule_for,
    preset,
)
from diffusion_notes.video_metrics import ClipScore

_KIND = "video"
PREVIOUS = "previous"  # the autoregressive kind: previous frames as extra input channels
VIDEO_KINDS: tuple[str, ...] = (*TEMPORAL_KINDS, PREVIOUS)
CONTEXT_FRAMES = 2  # previous frames a "previous" model sees: enough to read a velocity
LR_SCHEDULES: tuple[str, ...] = ("constant", "linear")


def _image_default() -> TrainConfig:
    return preset("digits_frames")


@dataclass(frozen=True)
class VideoConfig:
    """A video model: its image model, its temporal layers, its training run."""

    image: TrainConfig = field(default_factory=_image_default)
    temporal: TemporalKind | Literal["previous"] = "attention"
    freeze_spatial: bool = True  # AnimateDiff: train only the temporal (motion) layers
    frames: int = FRAMES
    n_clips: int = 4000  # training clips (of the digits_train split)
    steps: int = 300
    batch_size: int = 8  # clips per step
    lr: float = 2e-3
    warmup_steps: int = 50
    grad_clip: float = 1.0
    ema_decay: float = 0.995
    seed: int = 0
    # None: the plain eps loss. A number c: each clip's eps-MSE weighted by
    # clamp(1 / snr(t), 1, c) (see :func:`noise_weight`): the high-noise steps, where a clip's
    # digit and path are decided, get the weight of an x0 error, up to c
    high_noise_weight: float | None = None
    # share of training clips whose first frame is given clean, at timestep 0, with the loss
    # on the other frames only: the model learns image-to-video from a clean first frame
    # (joint models only)
    first_frame_rate: float = 0.0
    # what the video network outputs. A joint model starts as the image model, so it keeps the
    # image model's eps. A "previous" model may switch to "v" (or "x0"): its weights start
    # from the image model's, and fine-tuning re-learns the output in the new parametrisation
    prediction: Prediction = "eps"
    # the learning rate after the warm-up: "constant", or "linear" decay to zero at the last
    # step (see :func:`video_lr_at`)
    lr_schedule: Literal["constant", "linear"] = "constant"

    def __post_init__(self) -> None:
        if self.high_noise_weight is not None and self.high_noise_weight < 1:
            raise ValueError(f"high_noise_weight must be >= 1 (or None), got {self.high_noise_weight}")
        if not 0.0 <= self.first_frame_rate <= 1.0:
            raise ValueError(f"first_frame_rate must be in [0, 1], got {self.first_frame_rate}")
        if self.temporal not in VIDEO_KINDS:
            raise ValueError(f"temporal {self.temporal!r}: choose one of {', '.join(VIDEO_KINDS)}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule {self.lr_schedule!r}: choose one of {', '.join(LR_SCHEDULES)}")
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"prediction {self.prediction!r}: choose one of {', '.join(PREDICTIONS)}")
        if self.temporal != PREVIOUS and self.prediction != self.image.prediction:
            raise ValueError(
                f"a joint video model ({self.temporal!r}) starts as the image model and keeps its "
                f"prediction ({self.image.prediction!r}), got {self.prediction!r}; only "
                f"temporal='previous' may change it")
        if self.temporal == PREVIOUS and self.first_frame_rate:
            raise ValueError("first_frame_rate is for joint models; a 'previous' model always "
                             "learns every frame from the clean frames before it")
        if self.image.model != "unet":
            raise ValueError(f"the image model must be a 'unet', got {self.image.model!r}")
        for name in ("frames", "n_clips", "steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VideoConfig:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown VideoConfig fields {unknown}; known: {sorted(names)}")
        data = dict(data)
        data["image"] = TrainConfig.from_dict(dict(data["image"]))
        return cls(**data)


@dataclass(frozen=True)
class VideoInfo:
    """Where a cached video model lives and how it was trained."""

    path: Path
    from_cache: bool
    seconds: float  # training time of the video model (measured when it was trained)
    image_seconds: float  # training time of its image model
    image_from_cache: bool
    steps: int
    losses: tuple[float, ...]
    trainable: int  # parameters that training updated
    total: int  # parameters of the whole video model


def build_video_model(
    config: VideoConfig, image_model: torch.nn.Module | None = None
) -> VideoUNet | PreviousFramesUNet:
    """The video model of ``config`` around a copy of ``image_model`` (a fresh UNet if None)."""
    spatial = copy.deepcopy(image_model) if image_model is not None else build_model(config.image)
    model: VideoUNet | PreviousFramesUNet
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)  # the temporal layers' initial weights
        if config.temporal == PREVIOUS:
            model = PreviousFramesUNet(spatial.requires_grad_(True), CONTEXT_FRAMES)
        else:
            model = VideoUNet(spatial.requires_grad_(True), config.temporal)
    if config.freeze_spatial:
        model.freeze_spatial()
    return model


def video_model_path(config: VideoConfig, root: str | os.PathLike[str] | None = None) -> Path:
    root = Path(root) if root is not None else cache_root()
    return root / "models" / f"{_KIND}-{config.temporal}-{config_hash(config)}.pt"


def _count(model: torch.nn.Module, trainable: bool) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable)


def train_video(
    config: VideoConfig,
    image_model: torch.nn.Module,
    schedule: Schedule,
    *,
    device: torch.device,
    progress: bool = True,
) -> tuple[VideoUNet | PreviousFramesUNet, tuple[float, ...], float]:
    """Train the video model; returns ``(ema_model, losses, seconds)``.

    The batch of step ``s`` (which clips, which ``t``, which noise) depends on ``(seed, s)``
    only, as in :func:`diffusion_notes.train.train`.
    """
    model = build_video_model(config, image_model).to(device).train()
    ema = copy.deepcopy(model).requires_grad_(False).eval()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.lr)
    clips = make_clips(config.n_clips, config.frames, seed=config.seed).frames.to(device)
    view = _lr_view(config)
    losses: list[float] = []
    t0 = time.perf_counter()
    bar = tqdm(range(config.steps), desc="train video", unit="step", disable=not progress,
               dynamic_ncols=True)
    for step in bar:
        idx = batch_indices(config.seed, step, config.batch_size, len(clips))
        g = _generator(config.seed, "video-noise", step)
        x0 = clips[idx.to(device)]
        for group in opt.param_groups:
            group["lr"] = video_lr_at(config, step)
        if isinstance(model, PreviousFramesUNet):  # every frame at its own t
            t = torch.randint(0, schedule.T, tuple(x0.shape[:2]), generator=g)
            eps = torch.randn(x0.shape, generator=g)
            loss = previous_frames_loss(model, x0, schedule, t.to(device), eps.to(device),
                                        config.high_noise_weight, config.prediction)
        else:
            t = torch.randint(0, schedule.T, (config.batch_size,), generator=g)
            eps = torch.randn(x0.shape, generator=g)
            given = torch.rand(config.batch_size, generator=g) < config.first_frame_rate
            loss = video_loss(model, x0, schedule, t.to(device), eps.to(device),
                              config.high_noise_weight, given.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        opt.step()
        with torch.no_grad():  # ema <- d * ema + (1 - d) * theta
            d = ema_decay_at(view, step)
            for pe, p in zip(ema.parameters(), model.parameters(), strict=True):
                if p.requires_grad:
                    pe.lerp_(p, 1.0 - d)
        losses.append(float(loss.detach()))
        if step % 50 == 49:
            bar.set_postfix(loss=f"{sum(losses[-50:]) / 50:.4f}")
    bar.close()
    return ema, tuple(losses), time.perf_counter() - t0


def noise_weight(schedule: Schedule, t: torch.Tensor, cap: float) -> torch.Tensor:
    """``clamp(1 / snr(t), 1, cap)``: the eps-MSE's weight that turns it into the x0-MSE
    (``|x0 - x0_hat|^2 = |eps - eps_hat|^2 / snr``) at high noise, capped at ``cap``, and leaves
    it alone (weight 1) where ``snr >= 1``."""
    return (1.0 / schedule.snr[t.cpu()]).clamp(1.0, cap)


def video_loss(
    model: torch.nn.Module,
    x0: torch.Tensor,
    schedule: Schedule,
    t: torch.Tensor,
    eps: torch.Tensor,
    cap: float | None = None,
    given: torch.Tensor | None = None,
) -> torch.Tensor:
    """DDPM's simple loss on clips, one ``t`` per clip, optionally weighted by
    :func:`noise_weight`. Clips flagged in ``given`` (B,) show the network their first frame
    clean at timestep 0 and are scored on the other frames only."""
    has_given = given is not None and bool(given.any())
    if cap is None and not has_given:
        return training_loss(model, x0, schedule, t=t, eps=eps)
    xt = q_sample(schedule, x0, t, eps)
    tf = t[:, None].expand(-1, x0.shape[1]).clone()  # per-frame timesteps
    weight = torch.ones(x0.shape[:2], dtype=x0.dtype, device=x0.device)  # per frame
    if has_given:
        xt[given, 0] = x0[given, 0]
        tf[given, 0] = 0
        weight[given, 0] = 0.0
    per_frame = (model(xt, tf) - eps).pow(2).flatten(2).mean(2)  # (B, F)
    per_clip = (per_frame * weight).sum(1) / weight.sum(1)
    if cap is not None:
        per_clip = per_clip * noise_weight(schedule, t, cap).to(per_clip)
    return per_clip.mean()


def previous_frames_loss(
    model: PreviousFramesUNet,
    x0: torch.Tensor,
    schedule: Schedule,
    t: torch.Tensor,
    eps: torch.Tensor,
    cap: float | None = None,
    prediction: Prediction = "eps",
) -> torch.Tensor:
    """DDPM's simple loss for an autoregressive frame model, with teacher forcing: frame ``j``
    of each clip is noised to its own ``t[b, j]`` and denoised given the *clean* frames before
    it, as :func:`sample_previous` will give it the frames it has made. ``t`` is ``(B, F)``;
    the target is the frame's ``eps``, its ``x0`` or its ``v = sqrt(abar) eps - sqrt(1 - abar)
    x0`` [@salimans2022progressive], as ``prediction`` says; ``cap`` weights each frame's MSE by
    :func:`noise_weight` of its own ``t``."""
    if tuple(t.shape) != tuple(x0.shape[:2]):
        raise ValueError(f"need one timestep per frame, shape {tuple(x0.shape[:2])}, got {tuple(t.shape)}")
    frames, tt, noise = x0.flatten(0, 1), t.reshape(-1), eps.flatten(0, 1)
    xt = q_sample(schedule, frames, tt, noise)
    target = prediction_target(schedule, frames, tt, noise, prediction)
    context = all_previous_frames(x0, model.context).flatten(0, 1)
    per_frame = (model(xt, tt, context) - target).pow(2).flatten(1).mean(1)
    if cap is not None:
        per_frame = per_frame * noise_weight(schedule, t.reshape(-1), cap).to(per_frame)
    return per_frame.mean()


def video_lr_at(config: VideoConfig, step: int) -> float:
    """The learning rate of ``step`` (0-based): :func:`~diffusion_notes.train.lr_at`'s warm-up,
    times ``(steps - step) / steps`` when ``lr_schedule`` is "linear", so the last step runs at
    ``lr / steps`` and the weights settle instead of jittering at the full rate."""
    lr = lr_at(_lr_view(config), step)
    if config.lr_schedule == "linear":
        lr *= (config.steps - step) / config.steps
    return lr


def _lr_view(config: VideoConfig) -> TrainConfig:
    """The image config with the video run's optimiser settings, for the shared schedules
    :func:`~diffusion_notes.train.lr_at` and :func:`~diffusion_notes.train.ema_decay_at`."""
    return replace(config.image, lr=config.lr, warmup_steps=config.warmup_steps,
                   ema_decay=config.ema_decay)


def get_or_train_video(
    config: VideoConfig,
    *,
    device: str | torch.device = "auto",
    root: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> tuple[VideoUNet | PreviousFramesUNet, VideoInfo]:
    """The EMA video model of ``config`` from the model cache, trained once when missing."""
    dev = get_device(device) if isinstance(device, str) else torch.device(device)
    image_model, image_info = get_or_train(config.image, device=dev, root=root, progress=progress)
    path = video_model_path(config, root)
    if path.is_file():
        try:
            ckpt = load_checkpoint(path, kind=_KIND, map_location=dev)
            if VideoConfig.from_dict(dict(ckpt["config"])) != config:
                raise CheckpointError(f"{path}: config differs")
            model = build_video_model(config, image_model)
            model.load_state_dict(ckpt["ema"])
        except (CheckpointError, RuntimeError, KeyError, ValueError, TypeError):
            pass  # unreadable or stale: train again below
        else:
            info = VideoInfo(
                path, True, float(ckpt["train_seconds"]), image_info.seconds,
                image_info.from_cache, int(ckpt["step"]), tuple(ckpt["losses"]),
                _count(model, True), _count(model, False),
            )
            return model.to(dev).eval().requires_grad_(False), info
    schedule = make_schedule_for(config.image)
    model, losses, seconds = train_video(config, image_model, schedule, device=dev,
                                         progress=progress)
    atomic_save(wrap_checkpoint(_KIND, {
        "config": asdict(config), "ema": model.state_dict(), "step": config.steps,
        "losses": list(losses), "train_seconds": seconds,
    }), path)
    fresh = build_video_model(config, image_model)
    return model.eval(), VideoInfo(path, False, seconds, image_info.seconds,
                                   image_info.from_cache, config.steps, losses,
                                   _count(fresh, True), _count(fresh, False))


@dataclass(frozen=True, eq=False)
class KnownFramesDenoiser(Denoiser):
    """A video denoiser that knows the first ``K`` frames of every clip (image-to-video).

    ``known`` has shape ``(B, K, C, H, W)``. Its prediction of ``x0`` for those frames is the
    known frames, and their ``eps`` the noise that explains ``x_t`` with that ``x0``; the other
    frames keep the network's prediction. A sampler stepping with this denoiser keeps the known
    frames at ``sqrt(abar) x0 + sqrt(1 - abar) eps`` for a fixed ``eps`` and ends on them
    exactly. What the *network* sees of the known frames:

    * ``clean=False`` (*replacement*): their noisy ``x_t``, at the clip's timestep. Any video
      model can do this, but early in sampling the given frame is as noisy as the rest, so it
      says little about them [@ho2022video, sec. 3.1].
    * ``clean=True``: the frames themselves at timestep 0 (per-frame timesteps), as a model
      trained with ``VideoConfig.first_frame_rate > 0`` saw them: the other frames can copy
      the given digit from the first step on.
    """

    known: torch.Tensor | None = None
    clean: bool = False

    def output(self, x: torch.Tensor, t: int) -> torch.Tensor:
        if self.known is None or not self.clean:
            return super().output(x, t)
        k = self.known.shape[1]
        x = torch.cat([self.known.to(x), x[:, k:]], dim=1)
        tt = torch.full(x.shape[:2], int(t), dtype=torch.long, device=x.device)
        tt[:, :k] = 0
        return self.call_net(x, tt)

    def raw(self, x: torch.Tensor, t: int, *, alpha_bar: float | None = None) -> Denoised:
        if self.known is not None:
            k = self.known.shape[1]
            if (self.known.shape[0] != x.shape[0] or self.known.shape[2:] != x.shape[2:]
                    or k > x.shape[1]):
                raise ValueError(
                    f"known frames of shape {tuple(self.known.shape)} do not fit clips of shape "
                    f"{tuple(x.shape)}: need (batch, K <= frames, C, H, W)"
                )
        d = super().raw(x, t, alpha_bar=alpha_bar)
        if self.known is None:
            return d
        a, s = self.coefficients(t, alpha_bar)
        known = self.known.to(x)
        x0 = torch.cat([known, d.x0[:, k:]], dim=1)
        eps = torch.cat([(x[:, :k] - a * known) / s, d.eps[:, k:]], dim=1)
        return Denoised(x0, eps)


def sample_with(
    den: Denoiser,
    noise: torch.Tensor,
    pairs: Sequence[tuple[int, int]],
    *,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """DDIM from ``noise`` down ``pairs`` with the denoiser ``den``: deterministic at
    ``eta = 0``, DDPM's posterior noise at ``eta = 1`` (drawn from ``generator``)."""
    from diffusion_notes.samplers import sample_ddim

    return sample_ddim(den, noise, pairs, eta=eta, generator=generator, progress=progress)


def sample_previous(
    model: PreviousFramesUNet,
    schedule: Schedule,
    noise: torch.Tensor,
    pairs: Sequence[tuple[int, int]],
    *,
    known: torch.Tensor | None = None,
    prediction: Prediction = "eps",
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """Clips ``(B, F, C, H, W)`` from an autoregressive frame model, one frame at a time.

    Frame ``j`` is drawn by DDIM down ``pairs`` from ``noise[:, j]``, with the frames already
    made (clean) as its context: deterministic at ``eta = 0``, with fresh noise from
    ``generator`` at every step when ``eta > 0``. ``known`` ``(B, K, C, H, W)`` are given first
    frames (image-to-video): they are returned as they are and the rest continues them.
    """
    if noise.ndim != 5:
        raise ValueError(f"noise must have shape (batch, frames, C, H, W), got {tuple(noise.shape)}")
    clips = noise.clone()
    k = 0
    if known is not None:
        k = known.shape[1]
        if known.shape[0] != noise.shape[0] or known.shape[2:] != noise.shape[2:] or k > noise.shape[1]:
            raise ValueError(f"known frames of shape {tuple(known.shape)} do not fit clips of "
                             f"shape {tuple(noise.shape)}: need (batch, K <= frames, C, H, W)")
        clips[:, :k] = known.to(clips)
    for j in tqdm(range(k, noise.shape[1]), desc="frames", unit="frame", disable=not progress,
                  dynamic_ncols=True):
        den = Denoiser(model, schedule, prediction=prediction,
                       cond=previous_frames(clips, j, model.context))
        clips[:, j] = sample_with(den, noise[:, j], pairs, eta=eta, generator=generator,
                                  progress=False)
    return clips


@dataclass(frozen=True, eq=False)
class VideoComparison:
    """The video model against the frame-by-frame baseline on the same initial noise.

    ``*_i2v`` are generated from the first frame of held-out clips (the baseline keeps the
    given frame and draws every other frame independently); their class consistency is
    measured against the class of the given frame, over the generated frames 1 .. F-1.
    """

    video: ClipScore
    baseline: ClipScore
    video_i2v: ClipScore
    baseline_i2v: ClipScore
    seconds_per_clip_video: float
    seconds_per_clip_baseline: float
    clips_video: torch.Tensor  # (N, F, 1, H, W) unconditional samples
    clips_baseline: torch.Tensor
    clips_i2v: torch.Tensor
    clips_baseline_i2v: torch.Tensor
    first_frames: torch.Tensor  # (N, 1, 1, H, W) the given frames


def compare_with_baseline(
    video_model: torch.nn.Module,
    image_model: torch.nn.Module,
    schedule: Schedule,
    classifier: torch.nn.Module,
    *,
    n_clips: int,
    frames: int = FRAMES,
    n_steps: int = 25,
    seed: int = 0,
    prediction: Prediction = "eps",
    eta: float = 0.0,
    progress: bool = True,
) -> VideoComparison:
    """Sample ``n_clips`` clips with both models from the same seeded noise (DDIM, ``n_steps``
    steps), unconditionally and from given first frames, and score them. ``prediction`` is
    what ``video_model`` outputs (``VideoConfig.prediction``). ``eta`` is DDIM's noise level
    for both models; where it is above 0, each sampling run draws that noise from its own
    generator seeded by ``seed``, so the runs stay reproducible."""
    from diffusion_notes.timesteps import timestep_pairs
    from diffusion_notes.video_metrics import frame_classes, score_clips

    dev = next(video_model.parameters()).device
    pairs = timestep_pairs(schedule.T, n_steps)
    shape = (n_clips, frames, 1, *make_clips(1, 1).frames.shape[-2:])
    noise = torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(dev)
    first = make_clips(n_clips, frames, seed=seed, split="held_out").frames[:, :1].to(dev)
    image_den = Denoiser(image_model, schedule)

    def timed(fn):  # (result, seconds per clip)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = fn()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return out.cpu(), (time.perf_counter() - t0) / n_clips

    def gen() -> torch.Generator:  # DDIM's own noise (eta > 0), the same for every run and device
        return torch.Generator().manual_seed(seed + 1)

    def frame_by_frame(x: torch.Tensor) -> torch.Tensor:
        return sample_with(image_den, x.flatten(0, 1), pairs, eta=eta, generator=gen(),
                           progress=progress).reshape(x.shape)

    if isinstance(video_model, PreviousFramesUNet):
        v, sec_v = timed(lambda: sample_previous(video_model, schedule, noise, pairs,
                                                 prediction=prediction, eta=eta,
                                                 generator=gen(), progress=progress))
        vi = sample_previous(video_model, schedule, noise, pairs, known=first,
                             prediction=prediction, eta=eta, generator=gen(),
                             progress=progress).cpu()
    else:
        video_den = Denoiser(video_model, schedule, prediction=prediction)
        v, sec_v = timed(lambda: sample_with(video_den, noise, pairs, eta=eta, generator=gen(),
                                             progress=progress))
        vi = sample_with(KnownFramesDenoiser(video_model, schedule, known=first,
                                             prediction=prediction), noise, pairs, eta=eta,
                         generator=gen(), progress=progress).cpu()
    b, sec_b = timed(lambda: frame_by_frame(noise))
    bi = torch.cat([first.cpu(), frame_by_frame(noise[:, 1:]).cpu()], dim=1)
    ref = frame_classes(classifier, first.cpu())[:, 0]
    return VideoComparison(
        video=score_clips(classifier, v),
        baseline=score_clips(classifier, b),
        video_i2v=score_clips(classifier, vi, reference=ref, skip=1),
        baseline_i2v=score_clips(classifier, bi, reference=ref, skip=1),
        seconds_per_clip_video=sec_v,
        seconds_per_clip_baseline=sec_b,
        clips_video=v, clips_baseline=b, clips_i2v=vi, clips_baseline_i2v=bi,
        first_frames=first.cpu(),
    )
