"""Consistency distillation of a guided teacher, as latent consistency models do it.

A consistency function maps every point ``x_t`` of a probability-flow ODE trajectory to the
trajectory's origin, ``f(x_t, t) = x_0`` [@song2023consistency, Def. 1]. It is parametrised so
that the boundary condition ``f(x, 0) = x`` holds by construction,
``f_theta(x, t) = c_skip(t) x + c_out(t) x0_theta(x, t)`` with ``c_skip(0) = 1``, ``c_out(0) = 0``
(LCM's scalings, :func:`boundary_scalings`), and is trained to give the same answer at two
neighbouring points of one trajectory [@song2023consistency, Alg. 2].

Latent consistency distillation [@luo2023latent, Alg. 1] makes three changes, all here:

* **guidance folded in**: the teacher's trajectory is the one of the classifier-free guided
  noise ``eps_w = eps(x, c) + w (eps(x, c) - eps(x, null))``, and the student receives ``w``
  as an input (``w``-conditioning; :class:`~diffusion_notes.models.UNet` with
  ``guidance_embedding=True``), so one student serves a range of guidance scales;
* **skipping steps**: the two points are ``k`` training timesteps apart, ``t_{n+k}`` on the grid
  ``k-1, 2k-1, ..., T-1`` and ``t_n = t_{n+k} - k`` (0 at the bottom), joined by one DDIM step
  of the guided teacher;
* **EMA target**: the point ``x_{t_n}`` is scored by a slowly moving average of the student,
  ``theta^- <- mu theta^- + (1 - mu) theta``, which is the stop-gradient target.

The loss is ``d(f_theta(x_{t_{n+k}}, t_{n+k}, w, c), f_{theta^-}(x^psi_{t_n}, t_n, w, c))`` with
``d`` the squared error or the pseudo-Huber distance ``sqrt(|a - b|^2 + c^2) - c``.

Two departures from LCM, for this pixel schedule and this small teacher: sampling starts at
:func:`lcm_start` (the grid point at Stable Diffusion's last noise level, 699 here) instead of
``T - 1``, where the noise-to-data division by ``sqrt(abar_999) = 0.0064`` would blow up the
student's error, and the grid is cut there (``DistillConfig.max_timestep``), so the student is
trained only where it is sampled; and the skipping step is ``k = 50`` (:data:`DEFAULT_SKIP`)
rather than LCM's 20, so the answer has 14 grid levels to travel up instead of 36.

A third, from trajectory consistency distillation [@zheng2024trajectory]: half of every batch
(``DistillConfig.trajectory_fraction``) compares the two predictions after carrying both down
to a level ``s`` along their DDIM lines (:func:`trajectory_jump`), so the noise the student's
answer implies is trained too; sampled with TCD's partial re-noising
(``sample_student(..., gamma=DEFAULT_GAMMA)``), this is what meets the 4-step goal here.

:class:`IdealStudent` is the consistency function a perfect student would have learned (the
teacher's own ODE solution on the grid); sampling it with :func:`sample_student` measures what
the multistep sampler can reach at all, apart from how well the distillation went.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

import torch
from torch import nn
from tqdm import tqdm

from diffusion_notes.cache_store import cache_root, config_hash
from diffusion_notes.checkpoints import (
    CheckpointError,
    atomic_save,
    load_checkpoint,
    wrap_checkpoint,
)
from diffusion_notes.denoiser import Denoiser
from diffusion_notes.diffusion import x0_eps_from_output
from diffusion_notes.samplers import sample_ddim, sample_lcm, sample_tcd
from diffusion_notes.schedules import Schedule, extract
from diffusion_notes.timesteps import (
    lcm_pairs,
    pairs_from_timesteps,
    skipping_grid,
    timestep_pairs,
)

if TYPE_CHECKING:
    from diffusion_notes.train import TrainConfig

# student(x, t, y, w) and teacher(x, t, y): eps-predictions; t a LongTensor (B,)
Student = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
Teacher = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
Distance = Literal["l2", "huber"]
DISTANCES: tuple[str, ...] = get_args(Distance)
NULL_LABEL = 10  # the "no label" token of the class-conditional digits models
_KIND = "lcm-student"


# ----------------------------------------------------------------------------- the maths


def boundary_scalings(
    t: torch.Tensor, *, timestep_scaling: float = 10.0, sigma_data: float = 0.5
) -> tuple[torch.Tensor, torch.Tensor]:
    """LCM's ``(c_skip, c_out)`` at integer timesteps ``t`` (any shape, float64), with
    ``u = timestep_scaling * t``: ``c_skip = sigma_data^2 / (u^2 + sigma_data^2)``,
    ``c_out = u / sqrt(u^2 + sigma_data^2)``; ``c_skip(0) = 1`` and ``c_out(0) = 0`` exactly.
    Tensor twin of :func:`diffusion_notes.samplers.consistency_scalings`."""
    u = t.to(torch.float64) * timestep_scaling
    d2 = u * u + sigma_data**2
    return sigma_data**2 / d2, u / d2.sqrt()


def _per_example(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.to(device=like.device, dtype=like.dtype).reshape(-1, *([1] * (like.ndim - 1)))


def consistency_function(
    eps: torch.Tensor,
    x: torch.Tensor,
    t: torch.Tensor,
    schedule: Schedule,
    *,
    timestep_scaling: float = 10.0,
    sigma_data: float = 0.5,
) -> torch.Tensor:
    """``f(x_t, t) = c_skip(t) x_t + c_out(t) x0(eps)`` for an eps-prediction at per-example
    timesteps ``t`` (B,), with ``x0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)``."""
    a, s = extract(schedule.sqrt_alpha_bar, t, x), extract(schedule.sigma, t, x)
    x0, _ = x0_eps_from_output(eps, x, a, s, "eps")
    c_skip, c_out = boundary_scalings(t, timestep_scaling=timestep_scaling, sigma_data=sigma_data)
    return _per_example(c_skip, x) * x + _per_example(c_out, x) * x0


def guided_eps(
    teacher: Teacher, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor, w: torch.Tensor
) -> torch.Tensor:
    """Classifier-free guided noise ``eps(x, y) + w (eps(x, y) - eps(x, null))``
    [@ho2022classifier] with per-example ``w`` (B,); both branches in one batch."""
    both = teacher(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, torch.full_like(y, NULL_LABEL)]))
    eps_c, eps_u = both.chunk(2)
    return eps_c + _per_example(w, x) * (eps_c - eps_u)


def skip_targets(t: torch.Tensor, skip: int) -> torch.Tensor:
    """``t_n = max(t_{n+k} - k, 0)``: where one skipping step of the teacher lands."""
    return (t - skip).clamp_min(0)


def ddim_step_to(
    eps: torch.Tensor, x: torch.Tensor, t: torch.Tensor, t_prev: torch.Tensor, schedule: Schedule
) -> torch.Tensor:
    """One deterministic DDIM step [@song2020denoising, Eq. 12 with sigma = 0] from ``t`` to
    ``t_prev`` (both (B,), ``t_prev >= 0``): ``x_prev = sqrt(abar_prev) x0 + sqrt(1 - abar_prev) eps``."""
    a, s = extract(schedule.sqrt_alpha_bar, t, x), extract(schedule.sigma, t, x)
    x0, _ = x0_eps_from_output(eps, x, a, s, "eps")
    a_p, s_p = extract(schedule.sqrt_alpha_bar, t_prev, x), extract(schedule.sigma, t_prev, x)
    return a_p * x0 + s_p * eps


def distance(a: torch.Tensor, b: torch.Tensor, kind: Distance, huber_c: float) -> torch.Tensor:
    """Batch mean of the squared error per element, or of the pseudo-Huber distance
    ``sqrt(|a - b|^2 + c^2) - c`` per example (``|.|`` over all its elements)."""
    if kind == "l2":
        return (a - b).pow(2).mean()
    if kind == "huber":
        sq = (a - b).pow(2).flatten(1).sum(1)
        return ((sq + huber_c**2).sqrt() - huber_c).mean()
    raise ValueError(f"unknown distance {kind!r}; allowed: {', '.join(DISTANCES)}")


def distillation_loss(
    student: Student,
    target: Student,
    teacher: Teacher,
    x0: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor,
    t: torch.Tensor,
    noise: torch.Tensor,
    schedule: Schedule,
    *,
    skip: int,
    kind: Distance = "l2",
    huber_c: float = 1e-3,
    timestep_scaling: float = 10.0,
    sigma_data: float = 0.5,
    levels: torch.Tensor | None = None,
) -> torch.Tensor:
    """The latent consistency distillation loss [@luo2023latent, Alg. 1] at timesteps ``t`` (B,)
    of the skipping grid: noise ``x0`` to ``x_t``, take one guided DDIM step of the teacher to
    ``t_n = t - skip``, and compare the student's consistency function at ``(x_t, t)`` with the
    target network's at ``(x_{t_n}, t_n)`` (no gradient through the teacher or the target).

    With per-example ``levels`` ``s`` (B,), ``-1 <= s <= t_n``, both predictions are first
    carried to level ``s`` by :func:`trajectory_jump`, the trajectory target of
    [@zheng2024trajectory]: the student must then agree with the target on the whole stretch of
    trajectory below ``t_n``, not only at its clean end. ``s = -1`` everywhere (or ``None``) is
    LCM's loss."""
    a, s = extract(schedule.sqrt_alpha_bar, t, x0), extract(schedule.sigma, t, x0)
    xt = a * x0 + s * noise  # q(x_t | x_0)
    t_n = skip_targets(t, skip)
    scal = {"timestep_scaling": timestep_scaling, "sigma_data": sigma_data}
    with torch.no_grad():
        x_n = ddim_step_to(guided_eps(teacher, xt, t, y, w), xt, t, t_n, schedule)
        f_target = consistency_function(target(x_n, t_n, y, w), x_n, t_n, schedule, **scal)
    f_online = consistency_function(student(xt, t, y, w), xt, t, schedule, **scal)
    if levels is not None:
        if bool((levels > t_n).any()) or bool((levels < -1).any()):
            raise ValueError("trajectory levels must lie in [-1, t - skip]: the target is only "
                             "known below t_n")
        f_target = trajectory_jump(f_target, x_n, t_n, levels, schedule)
        f_online = trajectory_jump(f_online, xt, t, levels, schedule)
    return distance(f_online, f_target, kind, huber_c)


def trajectory_jump(
    f: torch.Tensor, x: torch.Tensor, t: torch.Tensor, s: torch.Tensor, schedule: Schedule
) -> torch.Tensor:
    """Carry a clean-data prediction ``f`` made at ``(x_t, t)`` down to level ``s`` along the
    DDIM line through ``x_t`` (the semi-linear form of [@zheng2024trajectory]; first-order
    DPM-Solver): ``sqrt(abar_s) f + sqrt(1 - abar_s) eps_f`` with the noise it implies,
    ``eps_f = (x_t - sqrt(abar_t) f) / sqrt(1 - abar_t)``. Per example ``t``, ``s`` (B,);
    ``s = -1`` is clean data (returns ``f``) and ``s = t`` returns ``x_t``."""
    a, sig = extract(schedule.sqrt_alpha_bar, t, x), extract(schedule.sigma, t, x)
    eps = (x - a * f) / sig
    clean = (s < 0).to(x.device).reshape(-1, *([1] * (x.ndim - 1)))
    sc = s.clamp_min(0)
    a_s = torch.where(clean, torch.ones_like(a), extract(schedule.sqrt_alpha_bar, sc, x))
    s_s = torch.where(clean, torch.zeros_like(sig), extract(schedule.sigma, sc, x))
    return a_s * f + s_s * eps


# ----------------------------------------------------------------------------- distillation


DEFAULT_SKIP = 50  # the skipping step k of DistillConfig and sample_student
DEFAULT_GAMMA = 0.3  # TCD's default stochasticity [@zheng2024trajectory], best at 4 steps on seeds 3-5 here


@dataclass(frozen=True)
class DistillConfig:
    """Everything that determines a distilled student (with the teacher's config, its cache key).

    ``skip`` is LCM's ``k``: the student is trained on the grid of ``T // skip`` timesteps
    (20 for T = 1000 and the default k = 50; LCM's own default is k = 20, 50 points), up to
    ``max_timestep`` (default :func:`lcm_start`: 14 of the 20 points here); ``w`` is drawn
    uniformly from ``[w_min, w_max]`` in the guidance convention ``eps_c + w (eps_c - eps_u)``.
    ``trajectory_fraction`` of every batch learns the trajectory target
    [@zheng2024trajectory] (:func:`distillation_loss` with levels ``s``), the rest LCM's
    clean-data target; ``trajectory_fraction = 0`` is LCM's distillation.
    """

    steps: int = 4000
    batch_size: int = 64
    lr: float = 5e-4
    skip: int = DEFAULT_SKIP
    w_min: float = 0.0
    w_max: float = 2.0
    target_decay: float = 0.95  # EMA of the target network, LCM's mu
    distance: str = "huber"
    huber_c: float = 1e-3
    timestep_scaling: float = 10.0
    sigma_data: float = 0.5
    seed: int = 0
    # the highest grid timestep trained on: None is :func:`lcm_start`, the level where
    # :func:`sample_student` starts (699 for the pixel schedule and k = 50, 719 for k = 20);
    # T - 1 is LCM's whole grid
    max_timestep: int | None = None
    # the share of each batch trained on the trajectory target (:func:`distillation_loss` with
    # ``s`` uniform on 0 .. t - k) instead of LCM's clean-data target; 0 is LCM's loss alone
    trajectory_fraction: float = 0.5

    def __post_init__(self) -> None:
        if self.distance not in DISTANCES:
            raise ValueError(f"distance {self.distance!r}: choose one of {', '.join(DISTANCES)}")
        for name in ("steps", "batch_size", "skip"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.target_decay < 1.0:
            raise ValueError(f"target_decay must be in [0, 1), got {self.target_decay}")
        if not 0.0 <= self.w_min <= self.w_max:
            raise ValueError(f"need 0 <= w_min <= w_max, got {self.w_min}, {self.w_max}")
        if not 0.0 <= self.trajectory_fraction <= 1.0:
            raise ValueError(f"trajectory_fraction is a share of the batch in [0, 1] (0: LCM's "
                             f"loss alone), got {self.trajectory_fraction}")

    def grid(self, T: int, top: int | None = None) -> torch.Tensor:
        """The skipping grid ``k-1, 2k-1, ..., T-1``, cut above ``top`` (a grid point; default
        ``T - 1``): the timesteps a student is trained at."""
        grid = torch.tensor(skipping_grid(T, self.skip))
        if top is None:
            return grid
        if top not in grid:
            raise ValueError(f"max_timestep={top} is not on the grid k-1, 2k-1, ..., {T - 1} "
                             f"(k={self.skip}): use one of them, or None for lcm_start")
        return grid[grid <= top]

    def top(self, schedule: Schedule) -> int:
        """The highest grid timestep trained on (``max_timestep``, or :func:`lcm_start`)."""
        if self.max_timestep is None:
            return lcm_start(schedule, self.skip)
        return self.max_timestep


@dataclass(frozen=True)
class DistillInfo:
    """Where a distilled student lives and how it got there."""

    path: Path
    from_cache: bool
    seconds: float  # distillation time (measured when it was distilled)
    losses: tuple[float, ...]


def student_from_teacher(teacher: nn.Module) -> nn.Module:
    """A copy of a class-conditional :class:`~diffusion_notes.models.UNet` teacher whose time
    embedding gains a zero-initialised ``w`` branch: before training it predicts exactly what
    the teacher predicts, whatever ``w``."""
    from diffusion_notes.models import TimeEmbedding, UNet

    if not isinstance(teacher, UNet) or teacher.num_classes is None:
        raise ValueError("the teacher must be a class-conditional UNet "
                         "(train.PRESETS['digits_cond'])")
    student = copy.deepcopy(teacher).requires_grad_(True)
    old = teacher.embed
    new = TimeEmbedding(old.freq_dim, old.mlp[2].out_features, old.num_classes,
                        guidance_embedding=True).to(next(teacher.parameters()).device)
    missing, unexpected = new.load_state_dict(old.state_dict(), strict=False)
    if unexpected or any(not k.startswith("guidance.") for k in missing):
        raise ValueError(f"teacher embedding does not fit the student: {missing}, {unexpected}")
    student.embed = new
    return student


def distill(
    teacher: nn.Module,
    data: torch.Tensor,
    labels: torch.Tensor,
    schedule: Schedule,
    config: DistillConfig,
    *,
    progress: bool = True,
) -> tuple[nn.Module, tuple[float, ...]]:
    """Latent consistency distillation of ``teacher`` on ``(data, labels)``; returns the EMA
    target network (the one LCM samples from once trained) and the per-step losses.

    Every step draws, from generators seeded by ``config.seed``: a batch, grid timesteps,
    noise and ``w``; the global RNG is left alone."""
    dev = data.device
    g = torch.Generator().manual_seed(config.seed)
    teacher = teacher.eval().requires_grad_(False)
    student = student_from_teacher(teacher).to(dev).train()
    target = copy.deepcopy(student).requires_grad_(False).eval()
    opt = torch.optim.AdamW(student.parameters(), lr=config.lr)
    grid = config.grid(schedule.T, config.top(schedule))
    losses: list[float] = []
    for _ in tqdm(range(config.steps), desc="consistency distillation", disable=not progress,
                  leave=False):
        idx = torch.randint(0, len(data), (config.batch_size,), generator=g)
        t = grid[torch.randint(0, len(grid), (config.batch_size,), generator=g)]
        noise = torch.randn((config.batch_size, *data.shape[1:]), generator=g)
        w = config.w_min + (config.w_max - config.w_min) * torch.rand(config.batch_size, generator=g)
        s = None
        if config.trajectory_fraction > 0:  # LCM's target (-1) or a level uniform on 0 .. t - k
            t_n = skip_targets(t, config.skip)
            level = (torch.rand(config.batch_size, generator=g) * (t_n + 1)).long().clamp_max(t_n)
            on = torch.rand(config.batch_size, generator=g) < config.trajectory_fraction
            s = torch.where(on, level, torch.full_like(level, -1)).to(dev)
        loss = distillation_loss(
            student, target, teacher, data[idx], labels[idx].to(dev), w.to(dev), t.to(dev),
            noise.to(dev), schedule, skip=config.skip, kind=config.distance,  # type: ignore[arg-type]
            huber_c=config.huber_c, timestep_scaling=config.timestep_scaling,
            sigma_data=config.sigma_data, levels=s,
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
        with torch.no_grad():  # theta^- <- mu theta^- + (1 - mu) theta
            torch._foreach_lerp_(list(target.parameters()), list(student.parameters()),
                                 1.0 - config.target_decay)
        losses.append(float(loss.detach()))
    return target.eval(), tuple(losses)


def student_path(
    config: DistillConfig, teacher_key: str, root: str | os.PathLike[str] | None = None
) -> Path:
    """The cache file of the student distilled with ``config`` from the teacher ``teacher_key``."""
    root = Path(root) if root is not None else cache_root()
    key = config_hash({"distill": asdict(config), "teacher": teacher_key})
    return root / "models" / f"lcm-student-{key}.pt"


def get_student(
    config: DistillConfig | None = None,
    *,
    teacher: TrainConfig | None = None,
    device: str | torch.device = "auto",
    root: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> tuple[nn.Module, DistillInfo]:
    """The student distilled from the teacher trained with ``teacher`` (default: the shared
    ``train.PRESETS["digits_cond"]``; the teacher itself comes from the model cache), loaded
    from the cache or distilled once and stored; eval mode."""
    from diffusion_notes.cache import get_or_train
    from diffusion_notes.runtime import get_device
    from diffusion_notes.train import PRESETS, load_data, make_schedule_for

    config = config or DistillConfig()
    tconf = teacher or PRESETS["digits_cond"]
    if not tconf.class_conditional or tconf.label_dropout <= 0:
        raise ValueError("the teacher must be class-conditional with label_dropout > 0 "
                         "(classifier-free guidance needs its unconditional branch)")
    dev = get_device(device) if isinstance(device, str) else torch.device(device)
    teacher_net, _ = get_or_train(tconf, device=dev, root=root, progress=progress)
    path = student_path(config, config_hash(tconf), root)
    if path.is_file():
        try:
            ckpt = load_checkpoint(path, kind=_KIND, map_location=dev)
            student = student_from_teacher(teacher_net)
            student.load_state_dict(ckpt["model"])
        except (CheckpointError, RuntimeError, KeyError):
            pass  # unreadable or stale: distil again below
        else:
            return student.to(dev).eval(), DistillInfo(path, True, float(ckpt["seconds"]),
                                                       tuple(ckpt["losses"]))
    data, labels = load_data(tconf)
    if labels is None:
        raise ValueError(f"teacher data {tconf.data!r} has no labels to condition on")
    start = time.perf_counter()
    student, losses = distill(teacher_net, data.to(dev), labels.to(dev), make_schedule_for(tconf),
                              config, progress=progress)
    seconds = time.perf_counter() - start
    atomic_save(wrap_checkpoint(_KIND, {"config": asdict(config), "model": student.state_dict(),
                                        "seconds": seconds, "losses": list(losses)}), path)
    return student, DistillInfo(path, False, seconds, losses)


def with_w(student: nn.Module, w: float) -> Callable[..., torch.Tensor]:
    """``net(x, t, y)`` for samplers and :class:`~diffusion_notes.denoiser.Denoiser`: the student
    at a fixed guidance scale ``w``."""
    if not math.isfinite(w) or w < 0:
        raise ValueError(f"guidance scale w must be finite and >= 0, got {w}")

    def net(x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return student(x, t, y, torch.full((x.shape[0],), float(w), device=x.device))

    return net


def smoke_config(config: DistillConfig) -> DistillConfig:
    """A few steps of the same recipe, for tests and smoke-mode labs."""
    return replace(config, steps=3, batch_size=8)


# ----------------------------------------------------------------------------- sampling


@lru_cache(maxsize=1)
def sd_terminal_alpha_bar() -> float:
    """``abar`` at the last timestep of Stable Diffusion's scaled-linear schedule (betas from
    0.00085 to 0.012 over 1000 steps): 0.00466, ``sqrt(abar) = 0.0683`` [@lin2024common]. LCM
    was distilled and is sampled on that schedule, so its first step never sees a lower level."""
    from diffusion_notes.schedules import make_schedule

    return float(make_schedule("scaled_linear", 1000, beta_start=0.00085, beta_end=0.012).alpha_bar[-1])


def lcm_start(schedule: Schedule, skip: int, level: float | None = None) -> int:
    """The highest timestep of the skipping grid ``k-1, 2k-1, ..., T-1`` (``k = skip``) whose
    ``abar`` is at least ``level`` (default :func:`sd_terminal_alpha_bar`).

    A consistency student that predicts noise turns it into ``x0 = (x_t - sqrt(1 - abar) eps)
    / sqrt(abar)``: at the pixel schedule's ``t = 999`` (``sqrt(abar) = 0.0064``) any error in
    ``eps`` is multiplied by about 156, at Stable Diffusion's last level by 15. Starting where
    ``abar`` reaches that level treats the pure-noise start as a slightly noisier ``x_t`` than
    it is, the trade Stable Diffusion's own schedule makes."""
    lvl = sd_terminal_alpha_bar() if level is None else float(level)
    grid = torch.tensor(skipping_grid(schedule.T, skip)[::-1])  # T-1, T-1-k, ..., k-1
    ok = grid[schedule.alpha_bar[grid] >= lvl]
    if len(ok) == 0:
        raise ValueError(f"no grid timestep has alpha_bar >= {lvl}")
    return int(ok[0])


def student_pairs(
    schedule: Schedule, n_steps: int, skip: int, start: int | None = None
) -> list[tuple[int, int]]:
    """The ``(t, t_prev)`` pairs of ``n_steps``-step consistency sampling on the skipping grid,
    the first step at ``start`` (default :func:`lcm_start`)."""
    first = lcm_start(schedule, skip) if start is None else start
    return lcm_pairs(schedule.T, n_steps, original_steps=schedule.T // skip, start=first)


def balanced_labels(n_per_class: int, num_classes: int = 10) -> torch.Tensor:
    """``0, 1, ..., 9, 0, 1, ...``: ``n_per_class`` of every class."""
    return torch.arange(num_classes).repeat(n_per_class)


def sample_student(
    student: nn.Module,
    schedule: Schedule,
    labels: torch.Tensor,
    *,
    n_steps: int,
    w: float,
    skip: int = DEFAULT_SKIP,
    shape: tuple[int, ...] = (1, 8, 8),
    generator: torch.Generator | None = None,
    progress: bool = False,
    start: int | None = None,
    gamma: float | None = None,
) -> torch.Tensor:
    """Multistep consistency sampling [@luo2023latent, Alg. 3] of a w-conditioned student in
    ``n_steps`` steps, on the timesteps it was distilled on (:func:`lcm_pairs` with
    ``original_steps = T // skip``), one sample per label. The first step is at ``start``
    (default :func:`lcm_start`, the grid point at Stable Diffusion's last noise level;
    ``schedule.T - 1`` gives diffusers' timesteps). With ``gamma`` (0 to 1; TCD's default is
    0.3) each step is TCD's strategic stochastic step (:func:`~diffusion_notes.samplers.sample_tcd`)
    instead of LCM's full re-noising. ``student`` may be an :class:`IdealStudent`: the same
    sampler with no distillation error."""
    dev = next(student.parameters()).device
    x = torch.randn((len(labels), *shape), generator=generator).to(dev)
    pairs = student_pairs(schedule, n_steps, skip, start)
    den = Denoiser(with_w(student, w), schedule, cond=labels.to(dev))
    return sample_consistency(den, x, pairs, gamma=gamma, generator=generator, progress=progress)


def sample_consistency(
    den: Denoiser,
    x: torch.Tensor,
    pairs: list[tuple[int, int]],
    *,
    gamma: float | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """A student's multistep sampler from a given start ``x``: LCM's full re-noising
    (:func:`~diffusion_notes.samplers.sample_lcm`) or, with ``gamma``, TCD's partial one
    (:func:`~diffusion_notes.samplers.sample_tcd`)."""
    if gamma is None:
        return sample_lcm(den, x, pairs, generator=generator, progress=progress)
    return sample_tcd(den, x, pairs, gamma=gamma, generator=generator, progress=progress)


class IdealStudent(nn.Module):
    """The consistency function a perfect student would have learned, called like a student,
    ``(x, t, y, w) -> eps``: at a grid timestep ``t`` it runs the teacher's guided DDIM down
    the skipping grid ``t, t - k, ..., k - 1`` to clean data -- the chain of one-step targets
    that distillation imitates -- and returns the noise that prediction implies,
    ``(x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t)``, so a sampler's ``x0`` is the teacher's
    solution. A call costs ``t // k + 1`` teacher evaluations (two branches each where
    ``w > 0``): a yardstick for :func:`sample_student`, not a sampler to use."""

    def __init__(self, teacher: nn.Module, schedule: Schedule, skip: int = DEFAULT_SKIP) -> None:
        super().__init__()
        self.teacher = teacher
        self.schedule = schedule
        self.skip = skip

    def forward(self, x: torch.Tensor, tt: torch.Tensor, y: torch.Tensor,
                w: torch.Tensor) -> torch.Tensor:
        t = int(tt.reshape(-1)[0])
        if bool((tt != t).any()) or (t + 1) % self.skip:
            raise ValueError(f"the ideal student is defined on the grid k-1, 2k-1, ... "
                             f"(k={self.skip}) with one timestep per batch; got "
                             f"{tt.unique().tolist()}")
        pairs = pairs_from_timesteps(range(t, -1, -self.skip), self.schedule.T)
        x0 = sample_ddim(guided_denoiser(self.teacher, self.schedule, y, w), x, pairs,
                         progress=False)
        a, s = float(self.schedule.sqrt_alpha_bar[t]), float(self.schedule.sigma[t])
        return (x - a * x0) / s


def guided_denoiser(
    teacher: nn.Module, schedule: Schedule, y: torch.Tensor, w: torch.Tensor
) -> Denoiser:
    """The teacher as a :class:`~diffusion_notes.denoiser.Denoiser` of the guided noise
    :func:`guided_eps` at per-example scales ``w`` (B,); the plain conditional model, one
    evaluation per call, where every ``w`` is 0."""
    if bool((w == 0).all()):
        return Denoiser(teacher, schedule, cond=y)
    return Denoiser(lambda xt, t, yy: guided_eps(teacher, xt, t, yy, w), schedule, cond=y)


def sample_guided_ddim(
    teacher: nn.Module,
    schedule: Schedule,
    labels: torch.Tensor,
    *,
    n_steps: int,
    w: float,
    shape: tuple[int, ...] = (1, 8, 8),
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Deterministic DDIM (trailing spacing) with the classifier-free guided noise
    ``eps_c + w (eps_c - eps_u)``: the ODE solver the student was distilled from, run in full.
    With ``w > 0`` each step evaluates the network on both branches (one batch of twice the
    size); ``w = 0`` is the plain conditional model, one evaluation per step."""
    dev = next(teacher.parameters()).device
    x = torch.randn((len(labels), *shape), generator=generator).to(dev)
    wt = torch.full((len(labels),), float(w), device=dev)
    pairs = timestep_pairs(schedule.T, n_steps, "trailing")
    return sample_ddim(guided_denoiser(teacher, schedule, labels.to(dev), wt), x, pairs,
                       progress=progress)
