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
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from diffusion_notes.train import TrainConfig

SAMPLERS = ("ddpm", "ddim", "dpm")
_DEFAULT_STEPS = {"ddpm": 1000, "ddim": 50, "dpm": 20}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` and ``sample`` commands to the top-level parser."""
    from diffusion_notes.data.toy2d import TOY2D_NAMES

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


def save_samples_figure(samples: torch.Tensor, path: str | Path, *, title: str = "",
                        reference: torch.Tensor | None = None) -> Path:
    """A grid of images (B, 1, H, W) in [-1, 1], or a scatter plot of 2-D points (B, 2)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = samples.detach().float().cpu()
    if x.ndim == 2:
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        if reference is not None:
            ref = reference.detach().float().cpu().numpy()
            ax.scatter(ref[:, 0], ref[:, 1], s=2, c="0.8", label="data")
        pts = x.numpy()
        ax.scatter(pts[:, 0], pts[:, 1], s=2, c="C0", label="samples")
        ax.set_aspect("equal")
        ax.legend(loc="upper right", markerscale=4)
    else:
        n = x.shape[0]
        cols = min(n, 8)
        rows = -(-n // cols)
        h, w = x.shape[-2:]
        grid = torch.full((rows * (h + 1) - 1, cols * (w + 1) - 1), -0.5)  # light grey gaps
        for i in range(n):
            r, c = divmod(i, cols)
            grid[r * (h + 1): r * (h + 1) + h, c * (w + 1): c * (w + 1) + w] = x[i, 0]
        fig, ax = plt.subplots(figsize=(cols * 0.6 + 0.4, rows * 0.6 + 0.4))
        ax.imshow(grid.clamp(-1, 1).numpy(), cmap="gray_r", vmin=-1, vmax=1, interpolation="nearest")
        ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def draw_samples(
    model: torch.nn.Module, config: TrainConfig, *, sampler: str, steps: int, n: int, seed: int,
    device: torch.device, label: int | None = None, progress: bool = True,
) -> torch.Tensor:
    """Sample ``n`` items from a trained model with the named sampler (noise from ``seed``)."""
    from diffusion_notes.denoiser import Denoiser
    from diffusion_notes.samplers import sample_ddim, sample_ddpm, sample_dpm_solver_pp
    from diffusion_notes.timesteps import timestep_pairs
    from diffusion_notes.train import make_schedule_for

    if sampler not in SAMPLERS:
        raise ValueError(f"sampler {sampler!r}: choose one of {', '.join(SAMPLERS)}")
    schedule = make_schedule_for(config)
    shape = (n, 2) if config.model == "mlp" else (
        (n, 1, 8, 8) if config.data in ("digits", "digits_train") else (n, 1, 16, 16))
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g).to(device)
    den = Denoiser(model, schedule, prediction=config.prediction)
    if config.class_conditional:
        if label is not None and not 0 <= label <= 9:
            raise ValueError(f"label must be a digit 0..9, got {label}")
        y = (torch.full((n,), label) if label is not None else torch.arange(n) % 10).to(device)
        den = den.with_cond(y)
    elif label is not None:
        raise ValueError("--label needs a class-conditional model")
    T = schedule.T
    steps = min(steps, T)
    with torch.no_grad():
        if sampler == "ddpm":
            pairs = None if steps == T else timestep_pairs(T, steps, "trailing")
            out = sample_ddpm(den, x, pairs, generator=g, progress=progress)
        elif sampler == "ddim":
            out = sample_ddim(den, x, timestep_pairs(T, steps, "trailing"), progress=progress)
        else:
            out = sample_dpm_solver_pp(den, x, timestep_pairs(T, steps, "trailing"), order=2,
                                       progress=progress)
    return out


def cmd_train(args: argparse.Namespace) -> int:
    from diffusion_notes.cache import CheckpointError
    from diffusion_notes.runtime import get_device
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
    from diffusion_notes.cache import CheckpointError
    from diffusion_notes.runtime import get_device
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
