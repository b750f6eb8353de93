"""Sampling a trained model: :func:`draw_samples` and the sample figure.

The counterpart of :mod:`diffusion_notes.train` (as nanoGPT has ``sample.py`` beside
``train.py``): a checkpoint's config names the dataset (shape, classes) and the schedule, the
network is wrapped in a :class:`~diffusion_notes.denoiser.Denoiser`, and one of the samplers of
:mod:`diffusion_notes.samplers` runs on ``trailing`` pairs. ``diffusion-notes sample`` calls it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from diffusion_notes.denoiser import Denoiser
from diffusion_notes.samplers import sample_ddim, sample_ddpm, sample_dpm_solver_pp
from diffusion_notes.timesteps import timestep_pairs

if TYPE_CHECKING:  # train is imported when sampling, not when the CLI builds its parser
    from diffusion_notes.train import TrainConfig

SAMPLERS = ("ddpm", "ddim", "dpm")


def draw_samples(
    model: torch.nn.Module, config: TrainConfig, *, sampler: str, steps: int, n: int, seed: int,
    device: torch.device, label: int | None = None, progress: bool = True,
) -> torch.Tensor:
    """Sample ``n`` items from a trained model with the named sampler (noise from ``seed``).

    The sample shape and the classes come from the dataset registry; a class-conditional
    model draws ``label`` (default: the classes in turn) through the denoiser's ``cond``.
    """
    from diffusion_notes.train import make_schedule_for

    if sampler not in SAMPLERS:
        raise ValueError(f"sampler {sampler!r}: choose one of {', '.join(SAMPLERS)}")
    ds = config.dataset
    schedule = make_schedule_for(config)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((n, *ds.shape), generator=g).to(device)
    den = Denoiser(model, schedule, prediction=config.prediction)
    if config.class_conditional:
        k = ds.null_label  # = the number of classes
        if label is not None and not 0 <= label < k:
            raise ValueError(f"label must be a class 0..{k - 1} of {config.data!r}, got {label}")
        y = (torch.full((n,), label) if label is not None else torch.arange(n) % k).to(device)
        den = den.with_cond(y)
    elif label is not None:
        raise ValueError("--label needs a class-conditional model")
    T = schedule.T
    steps = min(steps, T)
    with torch.no_grad():
        if sampler == "ddpm":
            pairs = None if steps == T else timestep_pairs(T, steps, "trailing")
            return sample_ddpm(den, x, pairs, generator=g, progress=progress)
        if sampler == "ddim":
            return sample_ddim(den, x, timestep_pairs(T, steps, "trailing"), progress=progress)
        return sample_dpm_solver_pp(den, x, timestep_pairs(T, steps, "trailing"), order=2,
                                    progress=progress)


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
