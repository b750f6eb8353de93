"""Consistency distillation: the boundary condition, the one-step sampler, and a loss that
vanishes exactly for the teacher's own consistency function on an exact-score mixture."""

from __future__ import annotations

import pytest
import torch

from diffusion_notes.consistency import (
    NULL_LABEL,
    DistillConfig,
    IdealStudent,
    boundary_scalings,
    consistency_function,
    ddim_step_to,
    distill,
    distillation_loss,
    guided_eps,
    lcm_start,
    sample_student,
    sd_terminal_alpha_bar,
    skip_targets,
    student_from_teacher,
    trajectory_jump,
    with_w,
)
from diffusion_notes.data.gmm import GaussianMixture
from diffusion_notes.denoiser import Denoiser
from diffusion_notes.models import UNet
from diffusion_notes.samplers import consistency_scalings, sample_ddim, sample_lcm, sample_tcd
from diffusion_notes.schedules import extract, make_schedule
from diffusion_notes.timesteps import lcm_pairs

SCHEDULE = make_schedule("linear", 1000)


def _random_unet(seed: int, **kw) -> UNet:
    """A small UNet whose zero-initialised layers are re-drawn, so its output is not 0."""
    torch.manual_seed(seed)
    net = UNet(base_channels=8, num_classes=10, **kw)
    with torch.no_grad():
        for p in net.parameters():
            if p.abs().sum() == 0:
                p.normal_(0.0, 0.1)
    return net.eval()


def test_boundary_condition_holds_exactly_at_the_smallest_time() -> None:
    c_skip, c_out = boundary_scalings(torch.tensor([0]))
    assert c_skip.item() == 1.0 and c_out.item() == 0.0
    # f(x, 0) = x bit for bit, whatever the network says (even a huge prediction)
    x = torch.randn(4, 1, 8, 8)
    eps = 1e6 * torch.randn(4, 1, 8, 8)
    f = consistency_function(eps, x, torch.zeros(4, dtype=torch.long), SCHEDULE)
    assert torch.equal(f, x)
    # away from 0 the network takes over: at t = 999, c_skip = 0.25 / (9990^2 + 0.25) < 3e-9
    ts = torch.tensor([0, 1, 5, 19, 99, 999])
    cs, co = boundary_scalings(ts)
    for t, a, b in zip(ts.tolist(), cs.tolist(), co.tolist(), strict=True):
        ref = consistency_scalings(t)  # the sampler's scalar version: same formula
        assert a == pytest.approx(ref[0], rel=1e-14) and b == pytest.approx(ref[1], rel=1e-14)
    assert cs[-1] < 3e-9 and co[-1] > 1 - 1e-8


def test_one_step_consistency_sampler_equals_the_direct_prediction() -> None:
    student = _random_unet(0, guidance_embedding=True)
    x = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    y = torch.arange(6) % 10
    w = 1.5
    net = with_w(student, w)
    pairs = lcm_pairs(1000, 1, original_steps=50)
    assert pairs == [(999, -1)]
    sampled = sample_lcm(Denoiser(net, SCHEDULE, cond=y), x, pairs, progress=False)
    t = torch.full((6,), 999, dtype=torch.long)
    with torch.no_grad():
        direct = consistency_function(student(x, t, y, torch.full((6,), w)), x, t, SCHEDULE)
    # the same float32 operations in a different order: agreement to float32 rounding
    torch.testing.assert_close(sampled, direct, rtol=1e-5, atol=1e-5)
    # and it is not trivially equal to the input or to another w's prediction
    other = sample_lcm(Denoiser(with_w(student, 0.0), SCHEDULE, cond=y), x, pairs, progress=False)
    assert (sampled - other).abs().max() > 1e-3


def test_student_starts_as_the_teacher_and_keeps_its_parameters() -> None:
    teacher = _random_unet(2)
    plain = UNet(base_channels=8, num_classes=10)
    assert plain.state_dict().keys() == teacher.state_dict().keys()
    assert not any("guidance" in k for k in plain.state_dict())  # old models: same parameters
    student = student_from_teacher(teacher)
    extra = set(student.state_dict()) - set(teacher.state_dict())
    assert extra and all(k.startswith("embed.guidance.") for k in extra)
    x, t, y = torch.randn(3, 1, 8, 8), torch.tensor([5, 500, 999]), torch.tensor([1, 2, NULL_LABEL])
    with torch.no_grad():
        for w in (0.0, 3.0):  # the zero-initialised w branch: the teacher's output for every w
            torch.testing.assert_close(student(x, t, y, torch.full((3,), w)), teacher(x, t, y),
                                       rtol=0, atol=0)
    with pytest.raises(ValueError, match="guidance scale w"):
        student(x, t, y)
    with pytest.raises(ValueError, match="guidance_embedding"):
        teacher(x, t, y, torch.ones(3))


# ----------------------------------------------------------------------------- exact-score case


def _mixture_teacher() -> tuple[GaussianMixture, callable]:
    """Three classes in 2-D; ``teacher(x, t, y)``: the exact eps of class y's component, or of
    the whole mixture for the null label (what a perfect CFG-trained network predicts)."""
    means = torch.tensor([[-1.5, 0.0], [1.0, 1.0], [0.5, -1.5]], dtype=torch.float64)
    covs = torch.stack([0.05 * torch.eye(2), 0.1 * torch.eye(2), 0.02 * torch.eye(2)]).double()
    weights = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    mix = GaussianMixture(means, covs, weights)
    parts = [GaussianMixture(means[k : k + 1], covs[k : k + 1], torch.ones(1, dtype=torch.float64))
             .eps_model(SCHEDULE) for k in range(3)]
    uncond = mix.eps_model(SCHEDULE)

    def teacher(x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(x)
        for label in y.unique().tolist():
            m = y == label
            model = uncond if label == NULL_LABEL else parts[label]
            out[m] = model(x[m], t[m])
        return out

    return mix, teacher


def _oracle(teacher, skip: int, w_scale: float = 1.0):
    """The teacher's own consistency function on the skipping grid, as a student: run guided
    DDIM steps of size ``skip`` from t down to 0, then return the eps-prediction whose
    consistency function (c_skip x + c_out x0(eps)) is that end point."""

    def student(x, t, y, w):
        z, tt = x.clone(), t.clone()
        while bool((tt > 0).any()):
            m = tt > 0
            tn = skip_targets(tt[m], skip)
            z[m] = ddim_step_to(guided_eps(teacher, z[m], tt[m], y[m], w[m] * w_scale), z[m],
                                tt[m], tn, SCHEDULE)
            tt[m] = tn
        c_skip, c_out = boundary_scalings(t)
        c_skip, c_out = c_skip.reshape(-1, 1), c_out.reshape(-1, 1).clamp_min(1e-300)
        x0 = (z - c_skip * x) / c_out  # the x0 that makes f(x, t) = z
        a, s = extract(SCHEDULE.sqrt_alpha_bar, t, x), extract(SCHEDULE.sigma, t, x)
        eps = (x - a * x0) / s
        return torch.where((t > 0).reshape(-1, 1), eps, torch.zeros_like(eps))  # f(x, 0) = x

    return student


def test_teacher_step_is_one_guided_ddim_step() -> None:
    """The teacher's skipping step equals the package's DDIM sampler (diffusers-parity tested)
    run for one pair (t, t - k) on the guided noise (1 + w) eps(x, y) - w eps(x, null), the two
    branches evaluated separately."""
    _, teacher = _mixture_teacher()
    g = torch.Generator().manual_seed(3)
    x = torch.randn(64, 2, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (64,), generator=g)
    for t, w in ((999, 1.5), (419, 0.7), (19, 2.0)):
        tt = torch.full((64,), t)
        wt = torch.full((64,), w, dtype=torch.float64)
        ours = ddim_step_to(guided_eps(teacher, x, tt, y, wt), x, tt, skip_targets(tt, 20),
                            SCHEDULE)

        def cfg(xt, tb, t_=t, w_=w):
            null = torch.full_like(y, NULL_LABEL)
            return (1 + w_) * teacher(xt, tb, y) - w_ * teacher(xt, tb, null)

        ref = sample_ddim(Denoiser(cfg, SCHEDULE), x, [(t, max(t - 20, 0))], progress=False)
        # the same float64 arithmetic in another order: agreement to ~1e-15 relative
        torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)


def test_distillation_loss_vanishes_for_the_teachers_consistency_function() -> None:
    """Consistency distillation's fixed point: if the student already equals the map "follow the
    guided teacher's DDIM steps on the grid down to t = 0", its prediction at (x_{t+k}, t+k) and
    the target's at the teacher's next point (x_t, t) are the same point, so the loss is 0 (to
    float64 rounding). A student built for another w, or another skip, is off the fixed point."""
    _, teacher = _mixture_teacher()
    g = torch.Generator().manual_seed(0)
    n, skip = 256, 20
    grid = DistillConfig(skip=skip).grid(1000)
    x0 = torch.randn(n, 2, generator=g, dtype=torch.float64)
    t = grid[torch.randint(0, len(grid), (n,), generator=g)]
    t[:8] = grid[0]  # include the bottom of the grid, whose target sits at t = 0
    noise = torch.randn(n, 2, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (n,), generator=g)
    w = 2.0 * torch.rand(n, generator=g, dtype=torch.float64)

    def loss(student, k=skip):
        return float(distillation_loss(student, student, teacher, x0, y, w, t, noise, SCHEDULE,
                                       skip=k, kind="l2"))

    exact = loss(_oracle(teacher, skip))
    # float64 rounding of points of size ~1 through <= 50 steps: ~1e-14 per coordinate, so
    # ~1e-28 squared (measured 5e-30); the perturbed students below measured 2e-7 and 4e-6
    assert exact < 1e-20
    assert loss(_oracle(teacher, skip, w_scale=1.01)) > 1e-9  # guidance scale 1 % off
    assert loss(_oracle(teacher, skip), k=skip - 1) > 1e-9  # a target one timestep off


def test_distill_runs_and_reduces_the_loss_of_a_tiny_student() -> None:
    """A few steps of the full loop on random data: finite losses and an EMA target that moved."""
    teacher = _random_unet(3)
    g = torch.Generator().manual_seed(0)
    data = torch.randn(32, 1, 8, 8, generator=g).clamp(-1, 1)
    labels = torch.randint(0, 10, (32,), generator=g)
    cfg = DistillConfig(steps=4, batch_size=8, lr=1e-3, distance="huber")
    student, losses = distill(teacher, data, labels, SCHEDULE, cfg, progress=False)
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses)))
    moved = [(a - b).abs().max() for a, b in zip(student.state_dict().values(),
                                                 student_from_teacher(teacher).state_dict().values(),
                                                 strict=True)]
    assert max(moved) > 0


def test_distill_config_errors_name_the_fix() -> None:
    with pytest.raises(ValueError, match="distance 'l1': choose one of l2, huber"):
        DistillConfig(distance="l1")
    with pytest.raises(ValueError, match="skip=30 must divide"):
        DistillConfig(skip=30).grid(1000)
    with pytest.raises(ValueError, match="max_timestep=700 is not on the grid"):
        DistillConfig(max_timestep=700).grid(1000, 700)


def test_distillation_trains_only_up_to_where_sampling_starts(monkeypatch) -> None:
    """The default grid (k = 50) stops at lcm_start (699); max_timestep = T - 1 restores the
    whole grid of 20 points."""
    import diffusion_notes.consistency as cm

    assert DistillConfig().skip == 50
    assert DistillConfig().top(SCHEDULE) == 699
    assert DistillConfig().grid(1000, 699).tolist() == list(range(49, 700, 50))
    assert DistillConfig(max_timestep=999).top(SCHEDULE) == 999
    assert DistillConfig(skip=20).top(SCHEDULE) == 719  # LCM's k = 20
    seen: list[int] = []
    real = cm.guided_eps

    def spy(teacher, x, t, y, w):  # the teacher's step, recording the timesteps it starts from
        seen.extend(t.tolist())
        return real(teacher, x, t, y, w)

    monkeypatch.setattr(cm, "guided_eps", spy)
    data = torch.zeros(16, 1, 8, 8)
    labels = torch.arange(16) % 10
    for top, lo, hi in ((None, 600, 699), (999, 700, 999)):
        seen.clear()
        cfg = DistillConfig(steps=20, batch_size=8, max_timestep=top)
        distill(_random_unet(4), data, labels, SCHEDULE, cfg, progress=False)
        # 160 draws: the 2 grid points above 600 are both missed with probability
        # (12/14)^160 < 1e-10, the 6 above 700 of the full grid with (14/20)^160 < 1e-24
        assert lo < max(seen) <= hi and all((t + 1) % 50 == 0 for t in seen)


def test_sampling_starts_at_stable_diffusions_last_noise_level() -> None:
    """lcm_start is the highest grid timestep whose alpha_bar reaches Stable Diffusion's last
    level (0.00466): 719 on the pixel schedule with k = 20, 999 on Stable Diffusion's own."""
    # Lin et al. 2024 quote sqrt(abar_T) = 0.068265 for Stable Diffusion's schedule
    assert sd_terminal_alpha_bar() ** 0.5 == pytest.approx(0.068265, abs=5e-7)
    level = sd_terminal_alpha_bar()
    start = lcm_start(SCHEDULE, 20)
    assert start == 719 and (start + 1) % 20 == 0  # on the k = 20 grid
    # the highest grid point at or above the level: the next one up is below it
    assert SCHEDULE.alpha_bar[start] >= level > SCHEDULE.alpha_bar[start + 20]
    assert lcm_start(SCHEDULE, 50) == 699  # the k = 50 grid: 749 is already below
    assert lcm_start(SCHEDULE, 20, level=0.0) == 999  # no level: diffusers' T - 1
    # on Stable Diffusion's own schedule the level is its last step, which is kept (>=)
    sd = make_schedule("scaled_linear", 1000, beta_start=0.00085, beta_end=0.012)
    assert lcm_start(sd, 20) == 999
    with pytest.raises(ValueError, match="skip=30 must divide"):
        lcm_start(SCHEDULE, 30)


def test_sample_student_uses_the_start_it_is_given() -> None:
    """By default (k = 50) the student is called at 699 and 349 for two steps; start=999 gives
    diffusers' timesteps."""
    student = _random_unet(3, guidance_embedding=True)
    labels = torch.arange(4)
    seen: list[int] = []

    class Spy(torch.nn.Module):  # the student, recording the timestep of every call
        def __init__(self) -> None:
            super().__init__()
            self.net = student

        def forward(self, x, t, y=None, w=None):
            seen.append(int(t[0]))
            return self.net(x, t, y, w)

    out = sample_student(Spy(), SCHEDULE, labels, n_steps=2, w=0.5,
                         generator=torch.Generator().manual_seed(0))
    assert out.shape == (4, 1, 8, 8) and seen == [699, 349]
    seen.clear()
    sample_student(Spy(), SCHEDULE, labels, n_steps=2, w=0.5,
                   generator=torch.Generator().manual_seed(0), start=999)
    assert seen == [999, 499]  # diffusers' LCMScheduler timesteps for 2 steps


def test_ideal_student_one_step_is_the_teachers_ode_down_the_grid() -> None:
    """One step of the ideal student returns the teacher's DDIM from the start down the
    skipping grid (699, 649, ..., 49, then clean data), to within what the consistency function
    adds to it: c_skip(699) x + (c_out(699) - 1) x0, both below 1e-7 per unit of x."""
    teacher = _random_unet(5)
    labels = torch.arange(4)
    out = sample_student(IdealStudent(teacher, SCHEDULE), SCHEDULE, labels, n_steps=1, w=0.0,
                         generator=torch.Generator().manual_seed(0))
    x = torch.randn((4, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    pairs = [(t, t - 50 if t > 49 else -1) for t in range(699, 0, -50)]
    with torch.no_grad():
        ref = sample_ddim(Denoiser(teacher, SCHEDULE, cond=labels), x, pairs, progress=False)
    scale = float(ref.abs().max() + x.abs().max())
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6 * scale)
    # a chain one grid step shorter (starting at 649) is a different image
    with torch.no_grad():
        short = sample_ddim(Denoiser(teacher, SCHEDULE, cond=labels), x, pairs[1:], progress=False)
    assert (out - short).abs().max() > 1e-3 * scale


def test_ideal_student_is_a_fixed_point_of_distillation_and_refuses_off_grid_calls() -> None:
    """The ideal student's consistency function makes the distillation loss vanish (to float32
    rounding) on a UNet teacher at w = 1.5: its prediction at t equals the target's at the
    teacher's point at t - k. Off the grid it refuses, naming the grid."""
    teacher = _random_unet(6)
    g = torch.Generator().manual_seed(0)
    n, k, w = 8, 50, 1.5
    x0 = torch.randn(n, 1, 8, 8, generator=g).clamp(-1, 1)
    y = torch.arange(n) % 10
    noise = torch.randn(n, 1, 8, 8, generator=g)
    ideal = IdealStudent(teacher, SCHEDULE, k)

    def as_student(x, t, yy, ww):  # distillation_loss calls students with one t per example
        return torch.cat([ideal(x[i:i + 1], t[i:i + 1], yy[i:i + 1], ww[i:i + 1])
                          for i in range(len(x))])

    losses = {}
    for t_ in (349, 99):  # the target sits at 299 and 49, both on the grid
        t = torch.full((n,), t_)
        with torch.no_grad():
            losses[t_] = float(distillation_loss(as_student, as_student, teacher, x0, y,
                                                 torch.full((n,), w), t, noise, SCHEDULE,
                                                 skip=k, kind="l2"))
    # float32 DDIM chains of <= 8 steps on values of size ~1: rounding ~1e-6 per pixel, ~1e-12
    # squared (measured 9e-13 at 349, 2e-13 at 99); a student asked for w = 1.0 measured 3e-3
    assert max(losses.values()) < 1e-9

    def off(x, t, yy, ww):  # the ideal student of another guidance scale
        return as_student(x, t, yy, torch.ones_like(ww))

    with torch.no_grad():
        wrong = float(distillation_loss(off, off, teacher, x0, y, torch.full((n,), w),
                                        torch.full((n,), 349), noise, SCHEDULE, skip=k, kind="l2"))
    assert wrong > 100 * max(losses.values()) and wrong > 1e-9
    with pytest.raises(ValueError, match="defined on the grid"):
        ideal(x0, torch.full((n,), 350), y, torch.full((n,), w))


# ----------------------------------------------------------------------------- trajectory target


def test_trajectory_jump_is_the_ddim_line_through_x_t() -> None:
    """The jump from (x_t, f) to level s is DDIM's step with the noise f implies: at s = -1 it
    returns f, at s = t it returns x_t, and in between it equals ddim_step_to with that noise."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 2, generator=g, dtype=torch.float64)
    f = torch.randn(6, 2, generator=g, dtype=torch.float64)
    t = torch.tensor([999, 699, 349, 99, 49, 649])
    a, sig = extract(SCHEDULE.sqrt_alpha_bar, t, x), extract(SCHEDULE.sigma, t, x)
    eps = (x - a * f) / sig
    assert torch.equal(trajectory_jump(f, x, t, torch.full((6,), -1), SCHEDULE), f)
    torch.testing.assert_close(trajectory_jump(f, x, t, t, SCHEDULE), x, rtol=0, atol=1e-13)
    s = torch.tensor([500, 0, 100, 98, 10, -1])
    ref = ddim_step_to(eps, x, t, s.clamp_min(0), SCHEDULE)
    ref[-1] = f[-1]
    torch.testing.assert_close(trajectory_jump(f, x, t, s, SCHEDULE), ref, rtol=0, atol=1e-13)


def _guided_teacher_as_student(teacher, w_scale: float = 1.0):
    """The teacher's guided eps as a student: one DDIM step from x_t along it lands on the
    teacher's own next point, exactly what the trajectory target asks at s = t - k."""
    return lambda x, t, y, w: guided_eps(teacher, x, t, y, w * w_scale)


def test_trajectory_loss_at_clean_data_is_lcms_and_at_t_minus_k_is_the_teachers_step() -> None:
    """levels = -1 gives LCM's loss bit for bit (trajectory_fraction = 0 is LCM). At levels
    = t - k the target is the teacher's next point x_{t-k} itself, so a student that predicts the
    teacher's guided noise has (almost) zero loss: its consistency function differs from the
    plain x0 by c_skip (x - x0) <= 1.8e-7 |x - x0| at t >= 119, ~1e-14 squared (measured 6e-17).
    A student for a guidance scale 1 % off measured 5e-7."""
    _, teacher = _mixture_teacher()
    g = torch.Generator().manual_seed(0)
    n, skip = 256, 20
    grid = DistillConfig(skip=skip).grid(1000)
    x0 = torch.randn(n, 2, generator=g, dtype=torch.float64)
    t = grid[torch.randint(5, len(grid), (n,), generator=g)]  # t >= 119
    noise = torch.randn(n, 2, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (n,), generator=g)
    w = 2.0 * torch.rand(n, generator=g, dtype=torch.float64)

    def loss(student, target=None, levels=None):
        return float(distillation_loss(student, target or student, teacher, x0, y, w, t, noise,
                                       SCHEDULE, skip=skip, kind="l2", levels=levels))

    plain = _guided_teacher_as_student(teacher)
    other = _guided_teacher_as_student(teacher, 1.3)
    assert loss(other, plain, torch.full((n,), -1)) == loss(other, plain) > 0
    at_step = loss(plain, levels=skip_targets(t, skip))
    assert at_step < 1e-11
    assert loss(_guided_teacher_as_student(teacher, 1.01), plain, skip_targets(t, skip)) > 1e-9
    with pytest.raises(ValueError, match="levels must lie in"):
        loss(plain, levels=t)


def test_distill_draws_trajectory_levels_for_its_share_of_the_batch(monkeypatch) -> None:
    """With trajectory_fraction = 0.5 about half the examples get a level in 0 .. t - k (the
    rest -1, LCM's target); 0 passes no levels at all, LCM's distillation unchanged."""
    import diffusion_notes.consistency as cm

    seen: list[tuple[torch.Tensor, torch.Tensor | None]] = []
    real = cm.distillation_loss

    def spy(*args, levels=None, **kw):
        seen.append((args[6].clone(), None if levels is None else levels.clone()))
        return real(*args, levels=levels, **kw)

    monkeypatch.setattr(cm, "distillation_loss", spy)
    data, labels = torch.zeros(16, 1, 8, 8), torch.arange(16) % 10
    distill(_random_unet(4), data, labels, SCHEDULE, DistillConfig(steps=25, batch_size=16),
            progress=False)
    t = torch.cat([a for a, _ in seen])
    lv = torch.cat([b for _, b in seen])
    on = lv >= 0
    # 400 draws of a fair coin: the share lies in 0.5 +- 0.1 with probability > 1 - 1e-4
    assert 0.4 < float(on.float().mean()) < 0.6
    assert bool((lv[on] <= skip_targets(t[on], 50)).all()) and bool((lv[~on] == -1).all())
    assert float((lv[on].float() / skip_targets(t[on], 50).clamp_min(1)).max()) > 0.9
    seen.clear()
    distill(_random_unet(4), data, labels, SCHEDULE,
            DistillConfig(steps=2, batch_size=16, trajectory_fraction=0.0), progress=False)
    assert all(b is None for _, b in seen)
    with pytest.raises(ValueError, match="trajectory_fraction is a share"):
        DistillConfig(trajectory_fraction=1.5)


def test_tcd_sampler_at_gamma_0_is_ddim_and_refuses_gamma_outside_0_1() -> None:
    """gamma = 0 never re-noises: it is deterministic DDIM on the same pairs. gamma = 1 re-noises
    in full from level 0, as LCM's sampler does from clean data."""
    student = _random_unet(7, guidance_embedding=True)
    y = torch.arange(6) % 10
    den = Denoiser(with_w(student, 0.5), SCHEDULE, cond=y)
    x = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    pairs = lcm_pairs(1000, 4, original_steps=20)
    tcd = sample_tcd(den, x, pairs, gamma=0.0, progress=False)
    ddim = sample_ddim(den, x, pairs, progress=False)
    torch.testing.assert_close(tcd, ddim, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="gamma must lie in"):
        sample_tcd(den, x, pairs, gamma=1.2, progress=False)
