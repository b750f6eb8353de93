"""``diffusion-notes train`` and ``diffusion-notes sample`` end to end (tiny runs)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from diffusion_notes import train_cli


def run(argv: list[str]) -> int:
    """Parse and dispatch like ``diffusion-notes`` (independently of cli.COMMAND_MODULES)."""
    parser = argparse.ArgumentParser(prog="diffusion-notes")
    train_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("toy")
    assert run(["train", "toy2d", "--dataset", "moons", "--steps", "40", "--device", "cpu",
                "--out", str(out), "--no-progress", "--sample-every", "20"]) == 0
    return out


def test_train_writes_checkpoint_and_png(toy_run: Path, capsys: pytest.CaptureFixture) -> None:
    assert (toy_run / "checkpoint.pt").is_file()
    assert (toy_run / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the periodic sample callback wrote one grid per 20 steps
    assert sorted(p.name for p in toy_run.glob("samples-step*.png")) == [
        "samples-step20.png", "samples-step40.png"]


def test_train_digits_and_sample_every_sampler(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert run(["train", "digits", "--steps", "3", "--batch-size", "8", "--out", str(out),
                "--device", "cpu", "--no-progress"]) == 0
    for sampler in ("ddpm", "ddim", "dpm"):
        png = tmp_path / f"{sampler}.png"
        assert run(["sample", str(out / "checkpoint.pt"), "--sampler", sampler, "--steps", "5",
                    "--n", "4", "--out", str(png), "--no-progress"]) == 0
        assert png.read_bytes()[:4] == b"\x89PNG"


def test_sample_toy_checkpoint(toy_run: Path, tmp_path: Path) -> None:
    png = tmp_path / "points.png"
    assert run(["sample", str(toy_run / "checkpoint.pt"), "--sampler", "ddim", "--steps", "5",
                "--out", str(png), "--no-progress"]) == 0
    assert png.is_file()


def test_missing_checkpoint_is_one_line_and_exit_2(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    assert run(["sample", str(tmp_path / "none.pt"), "--out", str(tmp_path / "g.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "none.pt" in err and "no such checkpoint" in err


def test_corrupt_checkpoint_is_one_line_and_exit_2(toy_run: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes((toy_run / "checkpoint.pt").read_bytes()[:300])
    assert run(["sample", str(bad), "--out", str(tmp_path / "g.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad.pt" in err and "delete it or retrain" in err
    assert not (tmp_path / "g.png").exists()


@pytest.mark.parametrize("argv", [
    ["train", "digits", "--bogus"],
    ["train", "cifar"],
    ["train", "digits", "--steps", "0"],
    ["sample", "x.pt", "--sampler", "euler"],
])
def test_bad_options_are_argparse_errors(argv: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        run(argv)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_label_on_unconditional_model_is_a_clean_error(toy_run: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    assert run(["sample", str(toy_run / "checkpoint.pt"), "--label", "3",
                "--out", str(tmp_path / "g.png")]) == 2
    assert "class-conditional" in capsys.readouterr().err


def test_console_script_when_registered() -> None:
    """Through the real entry point, once cli.COMMAND_MODULES lists diffusion_notes.train_cli."""
    from diffusion_notes import cli

    if "diffusion_notes.train_cli" not in cli.COMMAND_MODULES:
        pytest.skip("diffusion_notes.train_cli is not registered in cli.COMMAND_MODULES yet")
    proc = subprocess.run([sys.executable, "-m", "diffusion_notes.cli", "sample", "/nonexistent.pt"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "no such checkpoint" in proc.stderr
