"""The factorised video denoiser: identity at init, AnimateDiff freezing, image-to-video, metrics."""

from __future__ import annotations

import pytest
import torch

from diffusion_notes.data.clips import make_clips
from diffusion_notes.denoiser import Denoiser
from diffusion_notes.models import UNet
from diffusion_notes.models.video import PreviousFramesUNet, VideoUNet
from diffusion_notes.schedules import make_schedule
from diffusion_notes.timesteps import timestep_pairs
from diffusion_notes.train import make_schedule_for, preset
from diffusion_notes.video import (
    KnownFramesDenoiser,
    VideoConfig,
    build_video_model,
    get_or_train_video,
    sample_with,
    train_video,
)
from diffusion_notes.video_metrics import centre_of_mass, class_consistency, motion_errors


def _perturbed_unet(seed: int = 0) -> UNet:
    """A 16x16 UNet with every weight moved off its (partly zero) initialisation."""
    torch.manual_seed(seed)
    net = UNet(base_channels=8, channel_mult=(1, 2, 2))
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return net.eval()


@pytest.mark.parametrize("kind", ["attention", "conv", "conv3d", "spacetime", "spacetime_rel"])
def test_video_model_at_init_is_the_image_model_on_every_frame(kind: str) -> None:
    image = _perturbed_unet()
    video = VideoUNet(image, kind).eval()
    x = torch.randn(3, 6, 1, 16, 16)
    t = torch.tensor([3, 400, 999])
    with torch.no_grad():
        out = video(x, t)
        per_frame = torch.stack([image(x[:, f], t) for f in range(6)], dim=1)
        folded = image(x.flatten(0, 1), t.repeat_interleave(6)).reshape(x.shape)
    # exact: the temporal layers add h + 0 (zero output projection), and the spatial layers see
    # the same batch as the image model does
    assert torch.equal(out, folded)
    # frame by frame (batches of another size may round differently in the last bit)
    torch.testing.assert_close(out, per_frame, atol=1e-5, rtol=1e-5)
    # the test can fail: once the temporal layers are non-zero, frames talk to each other
    with torch.no_grad():
        for layer in video.temporal:
            for p in layer.parameters():
                p.add_(0.05 * torch.randn_like(p))
        mixed = video(x, t)
        x2 = x.clone()
        x2[:, 5] = torch.randn_like(x2[:, 5])
        changed = video(x2, t)
    assert not torch.allclose(mixed, folded, atol=1e-4)
    # ... and frame 0's output now depends on frame 5's input
    assert not torch.allclose(changed[:, 0], mixed[:, 0], atol=1e-6)


def test_video_model_input_checks() -> None:
    video = VideoUNet(_perturbed_unet())
    with pytest.raises(ValueError, match="frames"):
        video(torch.randn(2, 1, 16, 16), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="temporal"):
        VideoUNet(_perturbed_unet(), "lstm")  # type: ignore[arg-type]


def _tiny_config(freeze: bool) -> VideoConfig:
    image = preset("digits_frames", steps=2, batch_size=4, width=8)
    return VideoConfig(image=image, freeze_spatial=freeze, n_clips=8, frames=4, steps=2,
                       batch_size=2, warmup_steps=0, ema_decay=0.0)


@pytest.mark.parametrize("freeze", [True, False])
def test_animatediff_freezing_trains_only_the_motion_layers(freeze: bool) -> None:
    cfg = _tiny_config(freeze)
    image = _perturbed_unet()
    before = build_video_model(cfg, image).state_dict()
    # ema_decay = 0: the returned EMA model holds the trained weights themselves
    trained, losses, _ = train_video(cfg, image, make_schedule_for(cfg.image),
                                     device=torch.device("cpu"), progress=False)
    assert len(losses) == 2
    after = trained.state_dict()
    spatial_same = all(torch.equal(before[k], after[k]) for k in before if k.startswith("spatial."))
    temporal_moved = any(not torch.equal(before[k], after[k])
                         for k in before if k.startswith("temporal."))
    assert temporal_moved
    assert spatial_same == freeze


def test_image_to_video_keeps_the_given_frame_exactly() -> None:
    torch.manual_seed(1)
    video = VideoUNet(_perturbed_unet())
    with torch.no_grad():  # an untrained but non-trivial motion model: frames interact
        for p in video.temporal.parameters():
            p.add_(0.05 * torch.randn_like(p))
    schedule = make_schedule("linear", 1000)
    first = make_clips(3, 5, seed=4).frames[:, :1]
    den = KnownFramesDenoiser(video.eval(), schedule, known=first)
    noise = torch.randn(3, 5, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    seen = []

    def spy(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        seen.append(x[:, 0].clone())
        return video(x, t)

    pairs = timestep_pairs(1000, 10)
    out = sample_with(den.replace(net=spy), noise, pairs, progress=False)
    assert torch.equal(out[:, 0], first[:, 0])
    # between the steps the known frame stays on its own noising path: with deterministic DDIM,
    # x_t = sqrt(abar_t) x_given + sqrt(1 - abar_t) eps_0 with the eps_0 that explains the start
    ab = schedule.alpha_bar_list
    a_T, s_T = ab[pairs[0][0]] ** 0.5, (1 - ab[pairs[0][0]]) ** 0.5
    eps0 = (noise[:, 0] - a_T * first[:, 0]) / s_T
    for x_seen, (t, _) in zip(seen, pairs, strict=True):
        expected = ab[t] ** 0.5 * first[:, 0] + (1 - ab[t]) ** 0.5 * eps0
        # float32 steps of size ~1: rounding of a few 1e-7 per step, 10 steps
        torch.testing.assert_close(x_seen, expected, atol=1e-5, rtol=0)
    # the denoiser's pair describes the same x_t: x_t = sqrt(abar) x0 + sqrt(1 - abar) eps, with
    # x0 = the known frame (float32 rounding of O(1) values: 1e-5)
    for t in (999, 500, 20):
        d = den(noise, t)
        a, s = schedule.alpha_bar_list[t] ** 0.5, (1 - schedule.alpha_bar_list[t]) ** 0.5
        assert torch.equal(d.x0[:, 0], first[:, 0])
        torch.testing.assert_close(a * d.x0 + s * d.eps, noise, atol=1e-5, rtol=0)
    # the known frame was noised at every step (it is an input the other frames see) ...
    assert not torch.allclose(seen[0], first[:, 0], atol=0.1)
    # ... and the other frames are generated, not copied
    assert not torch.allclose(out[:, 1], first[:, 0], atol=0.1)
    # the plain denoiser does not keep it: the replacement is what does
    free = sample_with(Denoiser(video, schedule), noise, timestep_pairs(1000, 10), progress=False)
    assert not torch.allclose(free[:, 0], first[:, 0], atol=0.1)
    with pytest.raises(ValueError, match="do not fit"):
        KnownFramesDenoiser(video, schedule, known=first[:2])(noise, 5)


def test_video_model_cache_roundtrip(tmp_path) -> None:
    cfg = _tiny_config(True)
    m1, info1 = get_or_train_video(cfg, device="cpu", root=tmp_path, progress=False)
    m2, info2 = get_or_train_video(cfg, device="cpu", root=tmp_path, progress=False)
    assert not info1.from_cache and info2.from_cache
    assert info1.path == info2.path and info1.path.is_file()
    assert info2.trainable < info2.total  # frozen image layers
    for (k, a), (_, b) in zip(m1.state_dict().items(), m2.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


def test_motion_error_is_zero_on_true_clips_and_large_on_shuffled_ones() -> None:
    c = make_clips(200, 8, seed=5)
    com = centre_of_mass(c.frames)
    # the true trajectory is on the fit's grid (integer phase and speed): exact up to rounding
    assert motion_errors(com).max() < 1e-9
    shuffled = com[:, torch.randperm(8, generator=torch.Generator().manual_seed(0))]
    assert motion_errors(shuffled).mean() > 1.0
    # standing still is not a move of the model (speeds >= 1 px per frame)
    still = com[:, :1].expand(-1, 8, -1)
    assert motion_errors(still).min() > 0.5


def test_class_consistency_counts_frames_agreeing_with_the_reference() -> None:
    classes = torch.tensor([[3, 3, 3, 8], [1, 7, 7, 7]])
    assert class_consistency(classes) == pytest.approx(6 / 8)
    assert class_consistency(classes, torch.tensor([3, 1]), skip=1) == pytest.approx(2 / 6)


def _moving_video(kind: str = "spacetime") -> VideoUNet:
    torch.manual_seed(2)
    video = VideoUNet(_perturbed_unet(), kind)
    with torch.no_grad():  # temporal layers off their identity initialisation
        for p in video.temporal.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return video.eval()


def test_image_to_video_from_a_clean_frame_shows_the_network_that_frame_at_t0() -> None:
    video = _moving_video()
    schedule = make_schedule("linear", 1000)
    first = make_clips(3, 5, seed=4).frames[:, :1]
    den = KnownFramesDenoiser(video, schedule, known=first, clean=True)
    noise = torch.randn(3, 5, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    seen = []

    def spy(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        seen.append((x.clone(), t.clone()))
        return video(x, t)

    pairs = timestep_pairs(1000, 10)
    out = sample_with(den.replace(net=spy), noise, pairs, progress=False)
    assert torch.equal(out[:, 0], first[:, 0])  # the given frame comes back exactly
    for (x, t), (step_t, _) in zip(seen, pairs, strict=True):
        assert torch.equal(x[:, 0], first[:, 0])  # the network sees it clean ...
        assert t.shape == (3, 5) and torch.all(t[:, 0] == 0)  # ... at timestep 0
        assert torch.all(t[:, 1:] == step_t)
    # the clean frame is what the other frames see: another given frame changes them
    other = make_clips(3, 5, seed=9).frames[:, :1]
    out2 = sample_with(KnownFramesDenoiser(video, schedule, known=other, clean=True), noise,
                       pairs, progress=False)
    assert (out2[:, 1:] - out[:, 1:]).abs().max() > 1e-3


def test_per_frame_timesteps_equal_the_clip_timestep_when_all_equal() -> None:
    video = _moving_video("attention")
    x = torch.randn(2, 4, 1, 16, 16)
    t = torch.tensor([7, 500])
    with torch.no_grad():
        torch.testing.assert_close(video(x, t[:, None].expand(2, 4)), video(x, t))
    with pytest.raises(ValueError, match="per-frame timesteps"):
        video(x, torch.zeros(2, 3, dtype=torch.long))


def test_spacetime_attention_carries_a_change_to_other_places_and_frames() -> None:
    """Per-pixel temporal attention links only the same place across frames; the space-time
    layer links every place of every frame, so on the coarse levels a change in one corner of
    frame 0 reaches the far corner of frame 3 through it."""
    from diffusion_notes.models.video import SpaceTimeAttention, TemporalAttention

    torch.manual_seed(0)
    layers = {"spacetime": SpaceTimeAttention(16), "attention": TemporalAttention(16)}
    h = torch.randn(4, 16, 4, 4)  # one clip of 4 frames, a 4x4 map
    h2 = h.clone()
    h2[0, :, 0, 0] += 1.0
    for name, layer in layers.items():
        layer.norm = torch.nn.Identity()  # GroupNorm's per-frame statistics would link places too
        with torch.no_grad():
            layer.proj.weight.normal_(0, 0.2)
            delta = layer(h2, 4) - layer(h, 4)
        far = delta[3, :, 3, 3].abs().max()
        if name == "spacetime":
            assert far > 1e-3
        else:
            assert far == 0


def test_relative_bias_depends_only_on_the_offset_between_tokens() -> None:
    """The space-time layer's relative bias: the logit added for a query at (frame, row, col)
    and a key at an offset (df, di, dj) is the table's entry for that offset, the same at every
    position; a bias that favours "two columns right, one frame later" makes each token of
    frame 0 attend to the token there."""
    from diffusion_notes.models.video import SpaceTimeRelAttention

    layer = SpaceTimeRelAttention(16)
    with torch.no_grad():
        layer.rel.copy_(torch.randn_like(layer.rel))
    frames, hh, ww = 3, 4, 4
    bias = layer.bias(frames, hh, ww)  # (heads, N, N)

    def idx(f, i, j):
        return (f * hh + i) * ww + j

    off_f, off_s = layer.max_frames - 1, (layer.rel.shape[-1] - 1) // 2
    for (f, i, j), (f2, i2, j2) in (((0, 0, 0), (1, 0, 2)), ((1, 2, 1), (2, 2, 3)),
                                    ((2, 3, 3), (0, 1, 0))):
        want = layer.rel[:, f2 - f + off_f, i2 - i + off_s, j2 - j + off_s]
        assert torch.equal(bias[:, idx(f, i, j), idx(f2, i2, j2)], want)
    # the first two pairs share the offset (+1 frame, +0 rows, +2 columns): the same logit
    assert torch.equal(bias[:, idx(0, 0, 0), idx(1, 0, 2)], bias[:, idx(1, 2, 1), idx(2, 2, 3)])
    # a strong bias for that offset routes frame 0's tokens to their partner in frame 1
    with torch.no_grad():
        layer.rel.zero_()
        layer.rel[:, off_f + 1, off_s, off_s + 2] = 50.0
        layer.qkv.weight.zero_()  # queries and keys 0: the bias alone decides
        layer.qkv.bias.zero_()
        layer.proj.weight.copy_(torch.eye(16))
        layer.proj.bias.zero_()
        layer.norm = torch.nn.Identity()
        layer.pos.zero_(), layer.row.zero_(), layer.col.zero_()
        h = torch.randn(frames, 16, hh, ww)
        v = h  # with qkv's value weights at zero the values are 0: use an identity value map
        layer.qkv.weight[32:].copy_(torch.eye(16))
        out = layer(h, frames) - h  # the attended values
    torch.testing.assert_close(out[0, :, 1, 0], v[1, :, 1, 2], atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="larger than"):
        layer.bias(2, 9, 9)


def test_video_loss_ignores_the_given_first_frame_and_weights_high_noise() -> None:
    from diffusion_notes.video import noise_weight, video_loss

    schedule = make_schedule("linear", 1000)
    x0 = make_clips(4, 3, seed=1).frames
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([10, 300, 700, 990])
    calls = []

    def net(xt, tt):  # a model that is wrong on frame 0 only
        calls.append((xt.clone(), tt.clone()))
        out = eps.clone()
        out[:, 0] += 1.0
        return out

    given = torch.tensor([True, True, False, False])
    loss = video_loss(net, x0, schedule, t, eps, None, given)
    # clips 2 and 3 pay for frame 0 (1 of 3 frames, error 1 per pixel); clips 0 and 1 do not
    torch.testing.assert_close(loss, torch.tensor(2 * (1 / 3) / 4, dtype=loss.dtype))
    xt, tt = calls[-1]
    assert torch.equal(xt[:2, 0], x0[:2, 0]) and torch.all(tt[:2, 0] == 0)
    assert torch.all(tt[2:, 0] == t[2:])
    # the high-noise weight: 1 where snr >= 1, 1 / snr above, capped
    w = noise_weight(schedule, t, 50.0)
    snr = schedule.snr[t]
    assert w[0] == 1.0 and w[3] == 50.0
    torch.testing.assert_close(w[2], min(1 / snr[2], torch.tensor(50.0, dtype=snr.dtype)))


# --- the autoregressive frame model: previous frames as extra input channels (MCVD) ---


def _previous_model(moved: bool) -> PreviousFramesUNet:
    model = PreviousFramesUNet(_perturbed_unet(), context=2)
    if moved:  # the context input off its zero initialisation
        torch.manual_seed(3)
        with torch.no_grad():
            model.inp_context.weight.normal_(0, 0.2)
    return model.eval()


def test_previous_frames_model_at_init_is_the_image_model_whatever_the_context() -> None:
    image = _perturbed_unet()
    model = _previous_model(moved=False)
    x = torch.randn(5, 1, 16, 16)
    t = torch.tensor([0, 3, 400, 700, 999])
    with torch.no_grad():
        want = image(x, t)
        for seed in (0, 1):  # two unrelated contexts, same output: exactly the image model's
            ctx = torch.randn(5, 4, 16, 16, generator=torch.Generator().manual_seed(seed))
            assert torch.equal(model(x, t, ctx), want)
    moved = _previous_model(moved=True)
    with torch.no_grad():  # once trained, the context matters
        a = moved(x, t, torch.zeros(5, 4, 16, 16))
        b = moved(x, t, torch.ones(5, 4, 16, 16))
    assert (a - b).abs().max() > 1e-3
    with pytest.raises(ValueError, match="previous_frames"):
        moved(x, t, torch.zeros(5, 2, 16, 16))


def test_previous_frames_gives_the_two_frames_before_with_their_masks() -> None:
    from diffusion_notes.models.video import all_previous_frames, previous_frames

    clips = make_clips(3, 5, seed=2).frames
    zero, one = torch.zeros_like(clips[:, 0]), torch.ones_like(clips[:, 0])
    assert torch.equal(previous_frames(clips, 0, 2), torch.cat([zero, zero, zero, zero], 1))
    assert torch.equal(previous_frames(clips, 1, 2), torch.cat([clips[:, 0], zero, one, zero], 1))
    assert torch.equal(previous_frames(clips, 4, 2),
                       torch.cat([clips[:, 3], clips[:, 2], one, one], 1))
    # causal: frame j's context never reads frames j, j+1, ...
    later = clips.clone()
    later[:, 3:] = torch.randn_like(later[:, 3:])
    assert torch.equal(previous_frames(later, 3, 2), previous_frames(clips, 3, 2))
    # the frame just after the clip (what a sampler continues from)
    assert torch.equal(previous_frames(clips, 5, 2), torch.cat([clips[:, 4], clips[:, 3], one, one], 1))
    stacked = all_previous_frames(clips, 2)
    assert stacked.shape == (3, 5, 4, 16, 16)
    assert all(torch.equal(stacked[:, j], previous_frames(clips, j, 2)) for j in range(5))
    with pytest.raises(ValueError, match="outside"):
        previous_frames(clips, 6, 2)


def test_previous_frames_loss_is_teacher_forced_per_frame() -> None:
    """Each frame is noised to its own t and shown the clean frames before it."""
    from diffusion_notes.diffusion import q_sample
    from diffusion_notes.models.video import previous_frames
    from diffusion_notes.video import noise_weight, previous_frames_loss

    schedule = make_schedule("linear", 1000)
    x0 = make_clips(2, 3, seed=1).frames
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([[10, 500, 990], [300, 20, 700]])
    seen = {}

    class Spy(torch.nn.Module):
        context = 2

        def forward(self, xt, tt, ctx):
            seen.update(xt=xt.clone(), tt=tt.clone(), ctx=ctx.clone())
            out = eps.flatten(0, 1).clone()
            out[1::3] += 1.0  # wrong on frame 1 of each clip only
            return out

    loss = previous_frames_loss(Spy(), x0, schedule, t, eps)
    torch.testing.assert_close(loss, torch.tensor(1 / 3, dtype=loss.dtype))  # 2 of 6 frames
    for b in range(2):
        for j in range(3):
            row = 3 * b + j
            assert seen["tt"][row] == t[b, j]
            want_xt = q_sample(schedule, x0[b:b + 1, j], t[b, j:j + 1], eps[b:b + 1, j])
            torch.testing.assert_close(seen["xt"][row:row + 1], want_xt)
            assert torch.equal(seen["ctx"][row:row + 1], previous_frames(x0[b:b + 1], j, 2))
    weighted = previous_frames_loss(Spy(), x0, schedule, t, eps, cap=50.0)
    w = noise_weight(schedule, t.reshape(-1), 50.0)
    torch.testing.assert_close(weighted, (w[1] + w[4]).to(weighted) / 6)
    with pytest.raises(ValueError, match="one timestep per frame"):
        previous_frames_loss(Spy(), x0, schedule, t[:, 0], eps)


@pytest.mark.parametrize("prediction", ["x0", "v"])
def test_previous_frames_loss_targets_the_chosen_prediction(prediction: str) -> None:
    from diffusion_notes.diffusion import v_from_x0_eps
    from diffusion_notes.video import previous_frames_loss

    schedule = make_schedule("linear", 1000)
    x0 = make_clips(2, 3, seed=1).frames
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([[10, 500, 990], [300, 20, 700]])
    frames, tt = x0.flatten(0, 1), t.reshape(-1)
    target = frames if prediction == "x0" else v_from_x0_eps(schedule, frames, tt, eps.flatten(0, 1))

    class Exact(torch.nn.Module):  # outputs the right target for every frame
        context = 2

        def forward(self, xt, tt_, ctx):
            return target.clone()

    assert previous_frames_loss(Exact(), x0, schedule, t, eps, prediction=prediction) < 1e-12
    # the same output scored as another parametrisation is wrong
    assert previous_frames_loss(Exact(), x0, schedule, t, eps, prediction="eps") > 0.1


def _autoregressive_setup(frames: int, given: int, steps: int):
    """A moved "previous" model, its schedule, DDIM pairs, seeded noise for two clips of
    ``frames`` frames, and the first ``given`` frames of two real clips."""
    noise = torch.randn(2, frames, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    first = make_clips(2, frames, seed=4).frames[:, :given]
    return (_previous_model(moved=True), make_schedule("linear", 1000),
            timestep_pairs(1000, steps), noise, first)


def test_autoregressive_sampling_keeps_given_frames_and_runs_forward_in_time() -> None:
    from diffusion_notes.video import sample_previous

    model, schedule, pairs, noise, first = _autoregressive_setup(frames=5, given=2, steps=5)
    with torch.no_grad():
        out = sample_previous(model, schedule, noise, pairs, known=first, progress=False)
        assert torch.equal(out[:, :2], first)  # the given frames come back exactly
        # frame 2 is what DDIM draws from its own noise with frames 0 and 1 as context
        from diffusion_notes.models.video import previous_frames
        from diffusion_notes.samplers import sample_ddim

        den = Denoiser(model, schedule, cond=previous_frames(first, 2, 2))
        torch.testing.assert_close(out[:, 2], sample_ddim(den, noise[:, 2], pairs, progress=False))
        # forward in time: another noise for frame 4 leaves frames 0..3 alone ...
        noise2 = noise.clone()
        noise2[:, 4] = torch.randn_like(noise2[:, 4])
        out2 = sample_previous(model, schedule, noise2, pairs, known=first, progress=False)
        assert torch.equal(out2[:, :4], out[:, :4])
        # ... and another frame 1 changes the frames made after it
        other = first.clone()
        other[:, 1] = make_clips(2, 5, seed=9).frames[:, 1]
        out3 = sample_previous(model, schedule, noise, pairs, known=other, progress=False)
        assert (out3[:, 2:] - out[:, 2:]).abs().max() > 1e-3
        uncond = sample_previous(model, schedule, noise, pairs, progress=False)
    assert uncond.shape == noise.shape
    with pytest.raises(ValueError, match="do not fit"):
        sample_previous(model, schedule, noise, pairs, known=first[:1], progress=False)


@pytest.mark.parametrize("freeze", [True, False])
def test_previous_frames_model_trains_its_context_input(freeze: bool) -> None:
    from dataclasses import replace

    cfg = replace(_tiny_config(freeze), temporal="previous")
    image = _perturbed_unet()
    before = build_video_model(cfg, image).state_dict()
    trained, losses, _ = train_video(cfg, image, make_schedule_for(cfg.image),
                                     device=torch.device("cpu"), progress=False)
    after = trained.state_dict()
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))
    assert not torch.equal(before["inp_context.weight"], after["inp_context.weight"])
    spatial_same = all(torch.equal(before[k], after[k]) for k in before if k.startswith("spatial."))
    assert spatial_same == freeze
    with pytest.raises(ValueError, match="first_frame_rate"):
        replace(cfg, first_frame_rate=0.5)
    # a joint model starts as the image model, so it keeps its output; "previous" may change it
    assert replace(cfg, prediction="v").prediction == "v"
    with pytest.raises(ValueError, match="only temporal='previous'"):
        replace(cfg, temporal="spacetime", prediction="v")


def test_stochastic_autoregressive_sampling_draws_ddim_noise_from_its_generator() -> None:
    from diffusion_notes.models.video import previous_frames
    from diffusion_notes.samplers import sample_ddim
    from diffusion_notes.video import sample_previous

    model, schedule, pairs, noise, first = _autoregressive_setup(frames=4, given=1, steps=4)

    def draw(eta: float, seed: int) -> torch.Tensor:
        return sample_previous(model, schedule, noise, pairs, known=first, eta=eta,
                               generator=torch.Generator().manual_seed(seed), progress=False)

    with torch.no_grad():
        a, b, c = draw(1.0, 5), draw(1.0, 5), draw(1.0, 6)
        assert torch.equal(a, b)  # one generator seed, one set of clips
        assert torch.equal(a[:, :1], first)  # the given frame is kept at any eta
        assert (a[:, 1:] - c[:, 1:]).abs().max() > 1e-3  # another seed, other DDIM noise
        # frame 1 is DDIM at eta = 1 from its own noise, the generator's first draws
        den = Denoiser(model, schedule, cond=previous_frames(first, 1, 2))
        want = sample_ddim(den, noise[:, 1], pairs, eta=1.0,
                           generator=torch.Generator().manual_seed(5), progress=False)
        torch.testing.assert_close(a[:, 1], want)
        # eta = 0 is deterministic DDIM whatever the generator, and differs from eta = 1
        d0, d1 = draw(0.0, 5), draw(0.0, 6)
        assert torch.equal(d0, d1)
        assert (d0[:, 1:] - a[:, 1:]).abs().max() > 1e-3


def test_comparison_samples_both_models_at_the_given_eta_reproducibly() -> None:
    from diffusion_notes.video import compare_with_baseline

    class Ink(torch.nn.Module):  # a stand-in classifier: the class is the crop's ink level
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            level = ((x.mean((1, 2, 3)) + 1) * 5).clamp(0, 9.99).floor().long()
            return torch.nn.functional.one_hot(level, 10).float() + self.w

    schedule = make_schedule("linear", 1000)

    image = _perturbed_unet(1)

    def run(model: torch.nn.Module, eta: float, global_seed: int):
        torch.manual_seed(global_seed)  # the clips must not depend on torch's global RNG
        with torch.no_grad():
            return compare_with_baseline(model, image, schedule, Ink(), n_clips=2, frames=3,
                                         n_steps=3, seed=0, eta=eta, progress=False)

    for model in (_previous_model(moved=True), build_video_model(
            VideoConfig(image=preset("digits_frames"), temporal="conv"), _perturbed_unet(2))):
        a, b, c = run(model, 1.0, 1), run(model, 1.0, 2), run(model, 0.0, 1)
        for name in ("clips_video", "clips_baseline", "clips_i2v", "clips_baseline_i2v"):
            x, y, z = getattr(a, name), getattr(b, name), getattr(c, name)
            assert torch.equal(x, y), name  # seeded: the same clips twice
            assert (x[:, 1:] - z[:, 1:]).abs().max() > 1e-3, name  # eta reaches every sampler
        assert torch.equal(a.clips_i2v[:, :1], a.first_frames)


def test_linear_lr_schedule_decays_to_zero_and_training_follows_it() -> None:
    from dataclasses import replace

    from diffusion_notes.video import video_lr_at

    cfg = VideoConfig(steps=1000, lr=1e-3, warmup_steps=50)
    lin = replace(cfg, lr_schedule="linear")
    assert video_lr_at(cfg, 500) == pytest.approx(1e-3)  # constant after the warm-up
    assert video_lr_at(lin, 0) == pytest.approx(1e-3 / 50)  # warm-up step 1 of 50, no decay yet
    assert video_lr_at(lin, 49) == pytest.approx(1e-3 * 951 / 1000)
    assert video_lr_at(lin, 500) == pytest.approx(0.5e-3)
    assert video_lr_at(lin, 999) == pytest.approx(1e-6)  # the last step: lr / steps
    with pytest.raises(ValueError, match="lr_schedule 'cosine'"):
        replace(cfg, lr_schedule="cosine")
    # training reads the schedule: step 0 is the same, step 1 runs at half the rate
    tiny = replace(_tiny_config(False), temporal="previous", warmup_steps=1)
    image = _perturbed_unet()
    out = {}
    for schedule in ("constant", "linear"):
        model, _, _ = train_video(replace(tiny, lr_schedule=schedule), image,
                                  make_schedule_for(tiny.image), device=torch.device("cpu"),
                                  progress=False)
        out[schedule] = model.state_dict()["inp_context.weight"]
    assert not torch.equal(out["constant"], out["linear"])
