"""Sampling timesteps as explicit ``(t, t_prev)`` pairs.

A sampler walks a list such as ``[(999, 899), (899, 799), ..., (99, -1)]``: each step goes from
the noise level of ``t`` to that of ``t_prev``, and the last pair ends at ``t_prev = -1``, which
stands for "clean data". Taking ``t_prev`` from the list, never from ``t - T // n``, is what keeps
trailing and linspace spacing correct (diffusers' DDIMScheduler uses the stride arithmetic and so
steps to the wrong ``t_prev`` for those spacings).

The first three spacings are those of Lin et al. 2023, Table 2, computed exactly as diffusers'
``set_timesteps`` does, so results compare one to one:

* ``leading``:  ``t_i = i * (T // n) + steps_offset`` for ``i = n-1 .. 0``
* ``trailing``: ``t_i = round(T - i * T / n) - 1`` for ``i = 0 .. n-1`` (always starts at ``T-1``)
* ``linspace``: ``round(linspace(0, T-1, n))`` reversed

Three more place steps by noise level and so need the schedule (``schedule=...``); the levels
come from :mod:`diffusion_notes.placements` and are rounded here to the nearest timesteps,
then made strictly descending (:func:`strictly_descending`). All three start at ``T - 1``:

* ``logsnr``: uniform in log-SNR, ending at ``t_min`` (default 0);
* ``karras``: Karras et al. 2022's rho = 7 placement in ``sigma / alpha``, ending at ``t_min``;
* ``snr_window``: ``T - 1``, then uniform in log-SNR over the window where the data is decided
  (noise-to-signal ratio from 3 to 0.03, see :mod:`diffusion_notes.placements`).

Apart from reading the schedule's noise levels for those three, this module is integer logic
only. What ``alpha_bar`` means at ``t_prev = -1`` is a separate choice, diffusers'
``set_alpha_to_one``: see :func:`diffusion_notes.schedules.final_alpha_bar`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import numpy as np

from diffusion_notes import placements
from diffusion_notes.schedules import Schedule

Spacing = Literal["leading", "trailing", "linspace", "logsnr", "karras", "snr_window"]
SPACINGS: tuple[str, ...] = get_args(Spacing)
Convention = Literal["ddim", "dpm_solver"]
CONVENTIONS: tuple[str, ...] = get_args(Convention)
LEVEL_SPACINGS: tuple[str, ...] = ("logsnr", "karras", "snr_window")  # need the schedule
INDEX_SPACINGS: tuple[str, ...] = tuple(s for s in SPACINGS if s not in LEVEL_SPACINGS)


def _check_counts(T: int, n_steps: int) -> None:
    if not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be a positive integer, got {T!r}")
    if not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}")
    if n_steps > T:
        raise ValueError(f"n_steps={n_steps} exceeds the number of training timesteps T={T}")


def timesteps(
    T: int,
    n_steps: int,
    spacing: Spacing = "leading",
    *,
    steps_offset: int = 0,
    convention: Convention = "ddim",
    schedule: Schedule | None = None,
    t_min: int = 0,
) -> list[int]:
    """The descending list of ``n_steps`` model timesteps for a spacing (see module docstring).

    ``schedule`` is required by the level spacings (``logsnr``, ``karras``, ``snr_window``) and
    ignored by the others; ``t_min`` is the last timestep of ``logsnr`` and ``karras``.

    ``convention="dpm_solver"`` reproduces diffusers' DPMSolverMultistepScheduler, which builds
    ``leading`` and ``linspace`` on a grid of ``n_steps + 1`` points and drops the last one (t=0)
    because its final step jumps to the clean data anyway; ``trailing`` is the same in both.
    """
    _check_counts(T, n_steps)
    if spacing not in SPACINGS:
        raise ValueError(f"unknown spacing {spacing!r}; allowed: {', '.join(SPACINGS)}")
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; allowed: {', '.join(CONVENTIONS)}")
    if spacing in LEVEL_SPACINGS:
        return _level_timesteps(T, n_steps, spacing, schedule, t_min)
    if t_min:
        raise ValueError(f"t_min={t_min} only applies to 'logsnr' and 'karras', not {spacing!r}")
    if steps_offset and spacing != "leading":
        raise ValueError(
            f"steps_offset={steps_offset} only applies to 'leading' spacing (as in diffusers), "
            f"not to {spacing!r}"
        )
    extra = 1 if convention == "dpm_solver" else 0
    if spacing == "linspace":
        ts = np.linspace(0, T - 1, n_steps + extra).round()[::-1][:n_steps].astype(np.int64)
    elif spacing == "leading":
        stride = T // (n_steps + extra)
        if stride < 1:
            raise ValueError(
                f"'leading' spacing with the dpm_solver convention needs n_steps < T, got "
                f"n_steps={n_steps}, T={T}"
            )
        ts = (np.arange(n_steps + extra) * stride)[::-1][:n_steps].astype(np.int64) + steps_offset
    else:  # trailing: start + i * step, exactly as numpy's arange would produce the grid
        ts = np.round(T - np.arange(n_steps) * (T / n_steps)).astype(np.int64) - 1
    out = [int(v) for v in ts]
    if out[0] > T - 1:
        raise ValueError(
            f"steps_offset={steps_offset} pushes the first timestep to {out[0]} >= T={T}; "
            "lower steps_offset or n_steps"
        )
    if any(a <= b for a, b in zip(out, out[1:], strict=False)) or out[-1] < 0:
        raise ValueError(
            f"spacing {spacing!r} gave timesteps that are not strictly descending: {out}"
        )
    return out


def strictly_descending(ts: Sequence[int], T: int) -> list[int]:
    """Repair rounded timesteps into a strictly descending list in ``[0, T-1]``, moving each
    entry as little as needed: entry ``i`` of ``n`` is pushed below its predecessor but kept at
    or above ``n - 1 - i`` (room for the rest). With ``n = T`` this gives every timestep."""
    n = len(ts)
    if n > T:
        raise ValueError(f"{n} timesteps cannot be distinct in [0, T-1] with T={T}")
    out: list[int] = []
    for i, t in enumerate(ts):
        hi = T - 1 if i == 0 else out[-1] - 1
        out.append(max(min(int(t), hi), n - 1 - i))
    return out


def _level_timesteps(
    T: int, n_steps: int, spacing: str, schedule: Schedule | None, t_min: int
) -> list[int]:
    if schedule is None:
        raise ValueError(
            f"spacing {spacing!r} places steps by noise level: pass schedule=<the Schedule>, "
            f"e.g. timestep_pairs(T, n, {spacing!r}, schedule=make_schedule('linear', T))"
        )
    if schedule.T != T:
        raise ValueError(f"schedule has T={schedule.T} but T={T} was asked for")
    if spacing == "snr_window" and t_min:
        raise ValueError("t_min does not apply to 'snr_window' (its window sets the end)")
    if spacing == "logsnr":
        levels = placements.logsnr_levels(schedule, n_steps, t_min=t_min)
    elif spacing == "karras":
        levels = placements.karras_levels(schedule, n_steps, t_min=t_min)
    else:
        levels = placements.snr_window_levels(schedule, n_steps)
    ts = placements.nearest_timesteps(schedule, levels)
    ts[0] = T - 1  # the first level is lambda[T-1] itself; pin it against rounding ties
    return strictly_descending(ts, T)


def pairs_from_timesteps(ts: Sequence[int], T: int | None = None) -> list[tuple[int, int]]:
    """Chain a strictly descending list of timesteps into pairs ending at ``t_prev = -1``."""
    ts = [int(v) for v in ts]
    if not ts:
        raise ValueError("need at least one timestep")
    if any(a <= b for a, b in zip(ts, ts[1:], strict=False)):
        raise ValueError(f"timesteps must be strictly descending, got {ts}")
    if ts[-1] < 0 or (T is not None and ts[0] >= T):
        raise ValueError(f"timesteps must lie in [0, T-1] (T={T}), got {ts}")
    return list(zip(ts, ts[1:] + [-1], strict=True))


def timestep_pairs(
    T: int,
    n_steps: int,
    spacing: Spacing = "leading",
    *,
    steps_offset: int = 0,
    convention: Convention = "ddim",
    schedule: Schedule | None = None,
    t_min: int = 0,
) -> list[tuple[int, int]]:
    """``[(t, t_prev), ...]`` in descending order, the last ``t_prev`` being -1.

    >>> timestep_pairs(1000, 4, "trailing")
    [(999, 749), (749, 499), (499, 249), (249, -1)]
    """
    ts = timesteps(
        T,
        n_steps,
        spacing,
        steps_offset=steps_offset,
        convention=convention,
        schedule=schedule,
        t_min=t_min,
    )
    return pairs_from_timesteps(ts, T)


def full_pairs(T: int) -> list[tuple[int, int]]:
    """Every training timestep: ``[(T-1, T-2), ..., (0, -1)]`` (ancestral DDPM, Ho et al. 2020)."""
    return pairs_from_timesteps(range(T - 1, -1, -1), T)


def skipping_grid(T: int, skip: int) -> list[int]:
    """LCM's skipping grid ``k - 1, 2k - 1, ..., T - 1`` (``k = skip``), ascending."""
    if skip < 1 or T % skip:
        raise ValueError(f"skip={skip} must divide the number of timesteps T={T}")
    return list(range(skip - 1, T, skip))


def lcm_pairs(
    T: int, n_steps: int, *, original_steps: int = 50, start: int | None = None
) -> list[tuple[int, int]]:
    """Timesteps of latent consistency model sampling (Luo et al. 2023), as diffusers' LCMScheduler.

    The distillation grid is ``k - 1, 2k - 1, ..., T - 1`` with ``k = T // original_steps``;
    ``n_steps`` of its points are taken at evenly spaced indices starting from ``T - 1``
    (diffusers' choice), or from ``start``, a grid point below it: the grid is cut above
    ``start`` and the same rule picks ``n_steps`` of the points left, ``start`` first.
    """
    _check_counts(T, n_steps)
    if original_steps > T or original_steps < 1:
        raise ValueError(f"original_steps={original_steps} must lie in [1, T={T}]")
    k = T // original_steps
    grid = np.array(skipping_grid(original_steps * k, k)[::-1])
    if start is not None:
        if start not in grid:
            raise ValueError(
                f"start={start} is not on the distillation grid k-1, 2k-1, ..., {int(grid[0])} "
                f"(k={k}); a student is only trained there: pick one of them, e.g. "
                f"{int(grid[grid <= start][0]) if (grid <= start).any() else int(grid[-1])}"
            )
        grid = grid[grid <= start]
    if n_steps > len(grid):
        raise ValueError(f"n_steps={n_steps} exceeds the {len(grid)} grid points "
                         f"(original_steps={original_steps}, start={start})")
    idx = np.floor(np.linspace(0, len(grid), n_steps, endpoint=False)).astype(np.int64)
    return pairs_from_timesteps(grid[idx].tolist(), T)


def check_pairs(pairs: Sequence[tuple[int, int]], T: int) -> list[tuple[int, int]]:
    """Validate a chain of pairs: each ``T > t > t_prev >= -1`` and each ``t_prev`` is the next ``t``."""
    out = [(int(t), int(tp)) for t, tp in pairs]
    if not out:
        raise ValueError("pairs is empty; build it with timestep_pairs(T, n_steps, spacing)")
    for i, (t, tp) in enumerate(out):
        if not (T > t > tp >= -1):
            raise ValueError(f"pair {i} = {(t, tp)} must satisfy T={T} > t > t_prev >= -1")
        if i + 1 < len(out) and out[i + 1][0] != tp:
            raise ValueError(
                f"pairs must chain: pair {i} ends at t_prev={tp} but pair {i + 1} starts at "
                f"t={out[i + 1][0]}"
            )
    return out

