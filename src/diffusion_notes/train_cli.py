"""``diffusion-notes train`` and ``diffusion-notes sample``.

    diffusion-notes train digits --steps 3000 --out runs/digits
    diffusion-notes train toy2d --dataset moons --device cpu
    diffusion-notes sample runs/digits/checkpoint.pt --sampler ddim --steps 50 --out grid.png

``train`` also runs under ``torchrun --nproc_per_node N -m diffusion_notes.cli train ...``
(data parallel; see :mod:`diffusion_notes.train`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

_DEFAULT_STEPS = {"ddpm": 1000, "ddim": 50, "dpm": 20}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` and ``sample`` commands to the top-level parser."""
    from diffusion_notes.data.toy2d import TOY2D_NAMES
    from diffusion_notes.sample import SAMPLERS

    p = subparsers.add_parser(
        "train", help="train a DDPM on the digits or a 2-D toy set",
        description="Train a DDPM (AdamW, EMA, resumable checkpoints); writes "
                    "OUT/checkpoint.pt and OUT/samples.png.",
    )
    p.add_argument("target", choices=("digits", "digits16", "toy2d"),
                   help="8x8 digits, 16x16 digits, or a 2-D toy set (see --dataset)")
    p.add_argument("--dataset", choices=TOY2D_NAMES, default="swiss_roll",
                   help="the 2-D set for 'toy2d' (default: swiss_roll)")
    p.add_argument("--steps", type=_positive_int, default=None,
                   help="training steps (default: the preset's: 2500 for digits, 4000 for toy2d)")
    p.add_argument("--batch-size", type=_positive_int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ... (default auto)")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default: runs/TARGET); an existing checkpoint with "
                        "the same config is resumed")
    p.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    p.add_argument("--sample-every", type=_positive_int, default=None, metavar="N",
                   help="also write OUT/samples-stepN.png every N steps (DDIM-50, EMA weights)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    s = subparsers.add_parser(
        "sample", help="draw samples from a trained checkpoint",
        description="Sample from a checkpoint written by 'diffusion-notes train' and save a "
                    "grid (images) or a scatter plot (2-D points).",
    )
    s.add_argument("checkpoint", type=Path)
    s.add_argument("--sampler", choices=SAMPLERS, default="ddpm")
    s.add_argument("--steps", type=_positive_int, default=None,
                   help="sampling steps (default: ddpm 1000, ddim 50, dpm 20)")
    s.add_argument("--n", type=_positive_int, default=None,
                   help="number of samples (default: 64 images or 2000 points)")
    s.add_argument("--label", type=int, default=None,
                   help="digit to draw, for a class-conditional model (default: 0..9 in turn)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="auto")
    s.add_argument("--out", type=Path, default=Path("grid.png"))
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_sample)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _fail(message: str) -> int:
    print(f"diffusion-notes: error: {message}", file=sys.stderr)
    return 2


def cmd_train(args: argparse.Namespace) -> int:
    from diffusion_notes.checkpoints import CheckpointError
    from diffusion_notes.runtime import get_device
    from diffusion_notes.sample import draw_samples, save_samples_figure
    from diffusion_notes.train import load_data, load_trained, preset, train

    overrides: dict = {"seed": args.seed}
    if args.steps is not None:
        overrides["steps"] = args.steps
    if args.batch_size is not None:
        overrides["batch_size"] = args.batch_size
    if args.target == "toy2d":
        overrides["data"] = args.dataset
    try:
        device = get_device(args.device)
        config = preset(args.target, **overrides)
    except (ValueError, RuntimeError) as exc:
        return _fail(str(exc))
    out = args.out or Path("runs") / (args.dataset if args.target == "toy2d" else args.target)
    n = 64 if config.model == "unet" else 2000
    ref = load_data(config)[0][:2000] if config.model == "mlp" else None

    def periodic(step: int, ema: torch.nn.Module) -> None:
        samples = draw_samples(ema, config, sampler="ddim", steps=50, n=n, seed=config.seed,
                               device=device, progress=False)
        save_samples_figure(samples, out / f"samples-step{step}.png", reference=ref,
                            title=f"{config.data}: step {step}, DDIM-50 (EMA)")

    try:
        result = train(config, out_dir=out, device=device, resume=not args.fresh,
                       progress=not args.no_progress,
                       callback=periodic if args.sample_every else None,
                       sample_every=args.sample_every or 0)
    except (CheckpointError, ValueError) as exc:
        return _fail(str(exc))
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # under torchrun only rank 0 reports and draws
    print(f"trained {result.steps} steps ({result.steps_per_second:.1f} it/s on {device}); "
          f"checkpoint: {result.checkpoint}")
    model, _ = load_trained(result.checkpoint, device=device)
    samples = draw_samples(model, config, sampler="ddim", steps=50, n=n, seed=config.seed,
                           device=device, progress=False)
    png = save_samples_figure(samples, out / "samples.png", reference=ref,
                              title=f"{config.data}: {result.steps} steps, DDIM-50 (EMA)")
    print(f"samples: {png}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from diffusion_notes.checkpoints import CheckpointError
    from diffusion_notes.runtime import get_device
    from diffusion_notes.sample import draw_samples, save_samples_figure
    from diffusion_notes.train import TrainConfig, load_trained

    try:
        device = get_device(args.device)
        model, ckpt = load_trained(args.checkpoint, device=device)
    except (CheckpointError, ValueError, RuntimeError) as exc:
        return _fail(str(exc))
    config = TrainConfig.from_dict(dict(ckpt["config"]))
    steps = args.steps or _DEFAULT_STEPS[args.sampler]
    n = args.n or (64 if config.model == "unet" else 2000)
    start = time.perf_counter()
    try:
        samples = draw_samples(model, config, sampler=args.sampler, steps=steps, n=n,
                               seed=args.seed, device=device, label=args.label,
                               progress=not args.no_progress)
    except ValueError as exc:
        return _fail(str(exc))
    seconds = time.perf_counter() - start
    png = save_samples_figure(samples, args.out,
                              title=f"{args.sampler}, {min(steps, config.timesteps)} steps")
    print(f"{n} samples in {seconds:.1f} s -> {png}")
    return 0
