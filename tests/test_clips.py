"""The moving-digit clips move as the generator says: constant speed, bounces, digit intact."""

from __future__ import annotations

import pytest
import torch

from diffusion_notes.data.clips import CANVAS, DIGIT, frames_dataset, make_clips, reflect
from diffusion_notes.data.digits import digits_split
from diffusion_notes.video_metrics import centre_of_mass

SPAN = CANVAS - DIGIT


def test_reflect_is_a_bounce_between_the_walls() -> None:
    u = torch.arange(-20, 40)
    p = reflect(u, SPAN)
    assert p.min() == 0 and p.max() == SPAN
    # one step of the unfolded coordinate moves the folded one by exactly one pixel
    assert torch.equal((p[1:] - p[:-1]).abs(), torch.ones(len(u) - 1, dtype=p.dtype))
    # period 2L, and mirror symmetry about each wall
    assert torch.equal(reflect(u + 2 * SPAN, SPAN), p)
    assert torch.equal(reflect(-u, SPAN), p)
    assert torch.equal(reflect(torch.tensor([SPAN + 3]), SPAN), torch.tensor([SPAN - 3]))
    with pytest.raises(ValueError, match="span"):
        reflect(u, 0)


def test_clips_follow_constant_speed_and_bounce() -> None:
    c = make_clips(300, 10, seed=3)
    pos, speed = c.positions, c.speed
    assert pos.min() >= 0 and pos.max() <= SPAN
    v = c.velocities  # (N, F-1, 2)
    u = c.phase[:, None, :] + speed[:, None, :] * torch.arange(10)[:, None]  # unfolded
    # a move crosses a wall iff a multiple of L lies strictly between u_k and u_{k+1}
    crosses = (u[:, 1:] - 1) // SPAN > u[:, :-1] // SPAN
    free = ~crosses
    # away from the walls the digit moves at the clip's speed, outwards on even segments of
    # the cycle (0 -> L) and back on odd ones (L -> 0)
    sign = 1 - 2 * ((u[:, :-1] // SPAN) % 2)
    assert torch.equal(v[free], (sign * speed[:, None, :]).expand_as(v)[free])
    # at a wall, an overshoot of d pixels comes back d pixels inside it
    wall = torch.where(sign > 0, SPAN, 0)
    over = (pos[:, :-1] + sign * speed[:, None, :] - wall).abs()
    assert torch.equal(pos[:, 1:][crosses], (wall - sign * over)[crosses])
    # the whole track is the reflection of the unfolded coordinate
    assert torch.equal(pos, reflect(u, SPAN))
    # bounces happen in the sample (the test would not see a broken bounce otherwise)
    assert crosses.sum() > 100


def test_frames_show_the_digit_at_its_position_and_nothing_else() -> None:
    c = make_clips(50, 6, seed=1)
    digits = digits_split()[0].images[c.digit_index]  # (N, 1, 8, 8)
    for i in range(0, 50, 7):
        for f in range(6):
            r, col = c.positions[i, f].tolist()
            frame = c.frames[i, f, 0]
            assert torch.equal(frame[r:r + DIGIT, col:col + DIGIT], digits[i, 0])
            rest = frame.clone()
            rest[r:r + DIGIT, col:col + DIGIT] = -1.0
            assert torch.equal(rest, torch.full_like(rest, -1.0))
    assert torch.equal(c.labels, digits_split()[0].labels[c.digit_index])


def test_centre_of_mass_moves_with_the_digit() -> None:
    c = make_clips(100, 8, seed=2)
    com = centre_of_mass(c.frames)
    # the ink moves rigidly, so its centre of mass moves by exactly the corner's displacement
    torch.testing.assert_close(com[:, 1:] - com[:, :-1], c.velocities.double(), atol=1e-9, rtol=0)


def test_clips_are_deterministic_given_the_seed() -> None:
    a, b, other = make_clips(20, 5, seed=7), make_clips(20, 5, seed=7), make_clips(20, 5, seed=8)
    assert torch.equal(a.frames, b.frames) and torch.equal(a.positions, b.positions)
    assert not torch.equal(a.positions, other.positions)


def test_start_phase_makes_every_frame_equally_distributed() -> None:
    # u_0 uniform on the cycle of length 2L => the position at every frame has the same law:
    # P(0) = P(L) = 1 / 2L, interior positions 2 / 2L
    c = make_clips(40000, 4, seed=0)
    expected = torch.full((SPAN + 1,), 2.0 / (2 * SPAN))
    expected[0] = expected[-1] = 1.0 / (2 * SPAN)
    for f in range(4):
        freq = torch.bincount(c.positions[:, f, 0], minlength=SPAN + 1).double() / 40000
        # binomial sd of a frequency near 1/8 with n = 40000 is 0.0017; 5 sd
        torch.testing.assert_close(freq, expected.double(), atol=0.0085, rtol=0)


def test_frames_dataset_and_bad_input() -> None:
    x, y = frames_dataset(10, 4, seed=0)
    assert x.shape == (40, 1, CANVAS, CANVAS) and y.shape == (40,)
    assert torch.equal(y[:4], y[:1].expand(4))
    with pytest.raises(ValueError, match="split"):
        make_clips(2, split="test")
    with pytest.raises(ValueError, match="speeds"):
        make_clips(2, speeds=(0,))
