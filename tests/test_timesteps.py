"""Timestep pairs: the three spacings as diffusers builds them, and the chain invariants."""

from __future__ import annotations

import pytest
import torch

from diffusion_notes.timesteps import INDEX_SPACINGS as SPACINGS
from diffusion_notes.timesteps import (
    check_pairs,
    full_pairs,
    lcm_pairs,
    pairs_from_timesteps,
    timestep_pairs,
    timesteps,
)

# diffusers' DPMSolverMultistepScheduler trips a numpy 2 DeprecationWarning in set_timesteps
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("n", [1, 3, 7, 10, 30, 50, 333, 1000])
def test_spacings_match_diffusers(spacing: str, n: int) -> None:
    from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

    for cls in (DDIMScheduler, DDPMScheduler):
        ref = cls(num_train_timesteps=1000, timestep_spacing=spacing)
        ref.set_timesteps(n)
        assert timesteps(1000, n, spacing) == ref.timesteps.tolist(), cls.__name__
    if n < 1000:  # DPM-Solver's leading grid has n+1 points
        ref = DPMSolverMultistepScheduler(num_train_timesteps=1000, timestep_spacing=spacing)
        ref.set_timesteps(n)
        assert timesteps(1000, n, spacing, convention="dpm_solver") == ref.timesteps.tolist()


@pytest.mark.parametrize("offset", [0, 1])
def test_leading_steps_offset_matches_diffusers(offset: int) -> None:
    from diffusers import DDIMScheduler

    ref = DDIMScheduler(num_train_timesteps=1000, steps_offset=offset, timestep_spacing="leading")
    ref.set_timesteps(50)
    assert timesteps(1000, 50, "leading", steps_offset=offset) == ref.timesteps.tolist()


@pytest.mark.parametrize("n", [1, 2, 4, 8])
def test_lcm_pairs_match_diffusers(n: int) -> None:
    from diffusers import LCMScheduler

    ref = LCMScheduler(num_train_timesteps=1000)
    ref.set_timesteps(n)
    assert [t for t, _ in lcm_pairs(1000, n)] == ref.timesteps.tolist()


@pytest.mark.parametrize("spacing", SPACINGS)
def test_every_n_gives_a_valid_chain(spacing: str) -> None:
    T = 97  # prime, so no spacing divides evenly
    for n in range(1, T + 1):
        pairs = timestep_pairs(T, n, spacing)
        assert len(pairs) == n and pairs[-1][1] == -1
        assert check_pairs(pairs, T) == pairs  # descending, in range, chained
        if spacing == "trailing":
            assert pairs[0][0] == T - 1
        if spacing == "linspace":
            assert pairs[0][0] == (T - 1 if n > 1 else 0) and pairs[-1][0] == 0


def test_pairs_example_and_full_chain() -> None:
    assert timestep_pairs(1000, 4, "trailing") == [(999, 749), (749, 499), (499, 249), (249, -1)]
    assert timestep_pairs(1000, 4, "leading") == [(750, 500), (500, 250), (250, 0), (0, -1)]
    assert timestep_pairs(10, 3, "linspace") == [(9, 4), (4, 0), (0, -1)]
    assert full_pairs(3) == [(2, 1), (1, 0), (0, -1)]


def test_stride_arithmetic_is_wrong_for_trailing_and_linspace() -> None:
    """Why pairs are explicit: ``t - T // n`` (diffusers' DDIM previous step) misses the next t."""
    for spacing in ("trailing", "linspace"):
        pairs = timestep_pairs(1000, 30, spacing)
        assert any(tp != t - 1000 // 30 for t, tp in pairs[:-1]), spacing
    pairs = timestep_pairs(1000, 30, "leading")
    assert all(tp == t - 1000 // 30 for t, tp in pairs[:-1])


def test_n_steps_greater_than_T_raises() -> None:
    with pytest.raises(ValueError, match="n_steps=1001 exceeds .* T=1000"):
        timestep_pairs(1000, 1001)
    with pytest.raises(ValueError, match="positive integer"):
        timestep_pairs(1000, 0)


def test_unknown_spacing_raises() -> None:
    with pytest.raises(ValueError, match="'uniform'.*leading, trailing, linspace"):
        timestep_pairs(1000, 10, "uniform")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="convention"):
        timestep_pairs(1000, 10, "leading", convention="karras")  # type: ignore[arg-type]


def test_steps_offset_errors() -> None:
    with pytest.raises(ValueError, match="only applies to 'leading'"):
        timestep_pairs(1000, 10, "trailing", steps_offset=1)
    with pytest.raises(ValueError, match="pushes the first timestep to 1000"):
        timestep_pairs(1000, 1000, "leading", steps_offset=1)


@pytest.mark.parametrize(
    "pairs, match",
    [
        ([], "empty"),
        ([(10, 5), (4, -1)], "must chain"),
        ([(5, 10)], "t > t_prev"),
        ([(1000, -1)], "T=1000 > t"),
        ([(5, -2)], "t_prev >= -1"),
    ],
)
def test_check_pairs_rejects_bad_chains(pairs: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        check_pairs(pairs, 1000)


@pytest.mark.parametrize("n", [1, 2, 4, 8])
def test_lcm_pairs_start_cuts_the_grid(n: int) -> None:
    """start = T - 1 is diffusers' LCMScheduler; a lower start cuts the grid and spaces the
    steps evenly over the points left, every one on the grid."""
    assert lcm_pairs(1000, n, start=999) == lcm_pairs(1000, n)  # T - 1: diffusers' timesteps
    pairs = lcm_pairs(1000, n, start=719)
    ts = [t for t, _ in pairs]
    assert ts[0] == 719 and pairs[-1][1] == -1
    assert all((t + 1) % 20 == 0 for t in ts)  # every step on the k = 20 grid
    assert ts == sorted(set(ts), reverse=True)  # strictly descending
    # evenly spaced indices of the 36 grid points 719, 699, ..., 19
    grid = list(range(719, 0, -20))
    assert ts == [grid[(i * len(grid)) // n] for i in range(n)]


def test_lcm_pairs_start_off_the_grid_names_the_fix() -> None:
    """A start the student was never trained at is refused, with the grid point to use."""
    with pytest.raises(ValueError, match=r"start=700 is not on the distillation grid.*e\.g\. 699"):
        lcm_pairs(1000, 2, start=700)
    with pytest.raises(ValueError, match="exceeds the 2 grid points"):
        lcm_pairs(1000, 3, original_steps=50, start=39)


def test_pairs_from_timesteps_validates() -> None:
    assert pairs_from_timesteps(torch.tensor([7, 3, 0])) == [(7, 3), (3, 0), (0, -1)]
    with pytest.raises(ValueError, match="strictly descending"):
        pairs_from_timesteps([3, 7])
    with pytest.raises(ValueError, match="lcm|original_steps"):
        lcm_pairs(1000, 60)
