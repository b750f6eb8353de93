"""The training loop: learning, reproducible batches, bitwise resume, checkpoint errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from diffusion_notes.checkpoints import CheckpointError, atomic_save, load_checkpoint
from diffusion_notes.train import (
    CHECKPOINT_NAME,
    TrainConfig,
    batch_indices,
    ema_decay_at,
    load_trained,
    make_batch,
    preset,
    train,
)

# a UNet small enough for a few CPU steps per second-fraction
TINY_DIGITS = TrainConfig(data="digits", model="unet", steps=8, batch_size=16, width=8,
                          depth=1, warmup_steps=2, ema_decay=0.9, lr=1e-3)


def _state_equal(a: dict, b: dict) -> bool:
    """Recursive bitwise equality of (nested) state dicts."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_state_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_state_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_loss_decreases_on_a_tiny_run(tmp_path: Path) -> None:
    config = preset("toy2d", steps=300, width=64, depth=2, batch_size=128)
    result = train(config, out_dir=tmp_path, progress=False)
    assert result.steps == 300 and len(result.losses) == 300
    first, last = result.losses[:30], result.losses[-30:]
    # eps-prediction MSE starts near E|eps|^2 / d = 1 (the net starts as the zero predictor)
    assert sum(first) / 30 == pytest.approx(1.0, abs=0.15)
    # measured: ~0.26 after 300 steps; 0.5 leaves room for other CPUs' float differences
    assert sum(last) / 30 < 0.5


def test_batch_stream_is_a_function_of_seed_and_step() -> None:
    data = torch.arange(50, dtype=torch.float32)[:, None].repeat(1, 2)
    config = TrainConfig(data="swiss_roll", model="mlp", batch_size=20, seed=3)
    a, b = make_batch(config, data, None, 7), make_batch(config, data, None, 7)
    assert torch.equal(a.x0, b.x0) and torch.equal(a.t, b.t) and torch.equal(a.eps, b.eps)
    c = make_batch(config, data, None, 8)
    assert not torch.equal(a.eps, c.eps) and not torch.equal(a.t, c.t)
    other_seed = make_batch(TrainConfig(data="swiss_roll", model="mlp", batch_size=20, seed=4),
                            data, None, 7)
    assert not torch.equal(a.eps, other_seed.eps)
    # 5 steps of 20 = two epochs of 50: each epoch visits every example exactly once
    stream = torch.cat([batch_indices(3, s, 20, 50) for s in range(5)])
    assert torch.equal(stream[:50].sort().values, torch.arange(50))
    assert torch.equal(stream[50:].sort().values, torch.arange(50))
    assert not torch.equal(stream[:50], stream[50:])  # a fresh order per epoch


def test_label_dropout_uses_the_null_token() -> None:
    config = TrainConfig(data="digits", model="unet", batch_size=400, class_conditional=True,
                         label_dropout=0.25)
    images, labels = torch.zeros(1797, 1, 8, 8), torch.arange(1797) % 10
    y = make_batch(config, images, labels, 0).y
    frac = (y == 10).double().mean().item()
    # Binomial(400, 0.25): std 0.022, so 0.25 +- 0.09 is a 4-sigma band
    assert abs(frac - 0.25) < 0.09
    assert ((y >= 0) & (y <= 10)).all()


class _Interrupt(Exception):
    pass


def test_interrupted_and_resumed_run_is_bitwise_identical(tmp_path: Path) -> None:
    config = TINY_DIGITS.__class__(**{**TINY_DIGITS.__dict__, "checkpoint_every": 3})
    straight = train(config, out_dir=tmp_path / "a", progress=False)

    def crash(step: int, _ema: torch.nn.Module) -> None:
        if step == 5:  # after the checkpoint at step 3, before the one at 6
            raise _Interrupt

    with pytest.raises(_Interrupt):
        train(config, out_dir=tmp_path / "b", progress=False, callback=crash, sample_every=1)
    assert load_checkpoint(tmp_path / "b" / CHECKPOINT_NAME)["step"] == 3
    resumed = train(config, out_dir=tmp_path / "b", progress=False)
    assert resumed.resumed_from == 3 and resumed.steps == 8
    assert resumed.losses == straight.losses
    a = load_checkpoint(tmp_path / "a" / CHECKPOINT_NAME)
    b = load_checkpoint(tmp_path / "b" / CHECKPOINT_NAME)
    for key in ("model", "ema", "optimizer"):
        assert _state_equal(a[key], b[key]), f"{key} differs after resume"
    # and the run did move the weights (a test that would pass on a no-op loop is no test)
    init = train(config.__class__(**{**config.__dict__, "steps": 1}), out_dir=tmp_path / "c",
                 progress=False)
    c = load_checkpoint(init.checkpoint)
    assert not _state_equal(a["model"], c["model"])


def test_stop_after_then_extend(tmp_path: Path) -> None:
    straight = train(TINY_DIGITS, out_dir=tmp_path / "a", progress=False)
    part = train(TINY_DIGITS, out_dir=tmp_path / "b", progress=False, stop_after=4)
    assert part.steps == 4 and len(part.losses) == 4
    rest = train(TINY_DIGITS, out_dir=tmp_path / "b", progress=False)
    assert rest.resumed_from == 4
    assert _state_equal(load_checkpoint(straight.checkpoint)["ema"],
                        load_checkpoint(rest.checkpoint)["ema"])


def test_resume_refuses_a_different_config(tmp_path: Path) -> None:
    train(TINY_DIGITS, out_dir=tmp_path, progress=False, stop_after=1)
    other = TINY_DIGITS.__class__(**{**TINY_DIGITS.__dict__, "lr": 5e-4})
    with pytest.raises(ValueError, match="different config"):
        train(other, out_dir=tmp_path, progress=False)


def test_ema_and_loaded_model(tmp_path: Path) -> None:
    assert ema_decay_at(TINY_DIGITS, 0) == pytest.approx(0.1)  # (1 + 0) / (10 + 0)
    assert ema_decay_at(TINY_DIGITS, 10_000) == TINY_DIGITS.ema_decay
    result = train(TINY_DIGITS, out_dir=tmp_path, progress=False)
    ckpt = load_checkpoint(result.checkpoint)
    assert not _state_equal(ckpt["model"], ckpt["ema"])
    model, _ = load_trained(result.checkpoint)
    assert not model.training
    assert _state_equal(model.state_dict(), ckpt["ema"])
    raw, _ = load_trained(result.checkpoint, ema=False)
    assert _state_equal(raw.state_dict(), ckpt["model"])
    # with decay 0 the average is the last weights themselves
    zero = TINY_DIGITS.__class__(**{**TINY_DIGITS.__dict__, "ema_decay": 0.0, "steps": 2})
    z = load_checkpoint(train(zero, out_dir=tmp_path / "z", progress=False).checkpoint)
    assert _state_equal(z["model"], z["ema"])


def test_checkpoint_is_plain_data_for_weights_only(tmp_path: Path) -> None:
    result = train(TINY_DIGITS, out_dir=tmp_path, progress=False, stop_after=2)
    ckpt = torch.load(result.checkpoint, weights_only=True)  # would raise on custom classes
    assert ckpt["config"]["data"] == "digits" and ckpt["step"] == 2
    assert isinstance(ckpt["rng"]["torch"], torch.Tensor)
    assert not list(tmp_path.glob(".*.tmp")), "temporary file left behind"


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "foreign", "pickle"])
def test_corrupt_checkpoint_gives_one_clear_error(tmp_path: Path, damage: str) -> None:
    result = train(TINY_DIGITS, out_dir=tmp_path, progress=False, stop_after=1)
    path = result.checkpoint
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00\x01not a zip at all" * 10)
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "foreign":
        torch.save({"weights": torch.zeros(3)}, path)  # a valid torch file, but not ours
    else:  # a pickle that weights_only refuses to unpickle
        path.write_bytes(pickle.dumps(Path("x")))
    for load in (lambda: load_trained(path), lambda: train(TINY_DIGITS, out_dir=tmp_path,
                                                            progress=False)):
        with pytest.raises(CheckpointError) as info:
            load()
        msg = str(info.value)
        assert str(path) in msg and "delete it or retrain" in msg
        assert "\n" not in msg
        # no chained torch traceback under the message
        assert info.value.__cause__ is None
        assert info.value.__context__ is None or info.value.__suppress_context__


def test_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_trained(tmp_path / "nope.pt")


def test_atomic_save_keeps_the_old_file_on_failure(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    atomic_save({"a": torch.ones(1)}, path)

    class Boom:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError, match="cannot pickle"):
        atomic_save({"a": Boom()}, path)
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.ones(1))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"data": "mnist"}, "choose one of digits, digits16"),
        ({"model": "transformer"}, "choose one of mlp, unet"),
        ({"data": "swiss_roll", "model": "unet"}, "does not fit data 'swiss_roll'.*use 'mlp'"),
        ({"prediction": "score"}, "choose one of eps, x0, v"),
        ({"steps": 0}, "steps must be >= 1"),
        ({"label_dropout": 0.1}, "needs class_conditional"),
    ],
)
def test_config_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)




def test_a_finished_run_is_left_alone(tmp_path: Path) -> None:
    done = train(TINY_DIGITS, out_dir=tmp_path, progress=False, stop_after=4)
    before = done.checkpoint.read_bytes()
    shorter = TINY_DIGITS.__class__(**{**TINY_DIGITS.__dict__, "steps": 3})
    again = train(shorter, out_dir=tmp_path, progress=False)
    assert again.steps == 4 and again.resumed_from == 4
    assert done.checkpoint.read_bytes() == before  # weights of step 4 are not relabelled 3
