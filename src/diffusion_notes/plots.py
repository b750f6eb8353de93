"""Figures that more than one lab draws (matplotlib; each returns its figure)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch


def plot_loss_curve(losses: Sequence[float], title: str, *, window: int | None = None):
    """Per-step training loss (faint) with its running mean, on a log scale."""
    values = torch.as_tensor(list(losses), dtype=torch.float64)
    if values.numel() == 0:
        raise ValueError("no losses to plot: was the model trained for zero steps?")
    window = window or max(1, min(100, values.numel() // 10))
    smooth = values.unfold(0, window, 1).mean(1)  # running mean over `window` steps
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    ax.plot(values, lw=0.5, alpha=0.4, label="per step")
    ax.plot(torch.arange(window - 1, values.numel()), smooth, label=f"mean of {window}")
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel(r"$L_\mathrm{simple}$")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


def show_grid(images: torch.Tensor, ax, title: str = "", *, cols: int = 8) -> None:
    """Images (N, 1, H, W) in [-1, 1] as one grid with thin grey gaps (ink dark, paper white)."""
    images = images.detach().cpu().clamp(-1, 1)
    n, _, h, w = images.shape
    rows = -(-n // cols)
    grid = torch.full((rows * (h + 1) - 1, cols * (w + 1) - 1), -0.5)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        grid[r * (h + 1): r * (h + 1) + h, c * (w + 1): c * (w + 1) + w] = im[0]
    ax.imshow(grid, cmap="gray_r", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def clips_gif(clips: torch.Tensor, *, ncols: int = 8, scale: int = 4, ms_per_frame: int = 180,
              pad: int = 1) -> bytes:
    """(N, F, 1, H, W) clips in [-1, 1] -> an animated GIF (looping) of the N clips in a grid.

    Written with Pillow (no ffmpeg); embed it with :func:`gif_html`."""
    import io

    from PIL import Image

    n, f, _, h, w = clips.shape
    rows = -(-n // ncols)
    cols = min(ncols, n)
    grid = torch.full((f, rows * (h + pad) + pad, cols * (w + pad) + pad), 0.35)
    img = ((clips[:, :, 0].detach().cpu().float().clamp(-1, 1) + 1) / 2)  # (N, F, H, W) in [0, 1]
    for i in range(n):
        r, c = divmod(i, ncols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[:, y:y + h, x:x + w] = img[i]
    pix = (grid * 255).round().to(torch.uint8).repeat_interleave(scale, 1).repeat_interleave(scale, 2)
    frames = [Image.fromarray(p.numpy(), mode="L") for p in pix]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:],
                   duration=ms_per_frame, loop=0)
    return buf.getvalue()


def gif_html(data: bytes, alt: str) -> str:
    """An ``<img>`` tag holding the GIF as a data URI (shown by the notebook and the site)."""
    import base64
    import html

    b64 = base64.b64encode(data).decode("ascii")
    return (f'<img src="data:image/gif;base64,{b64}" alt="{html.escape(alt)}" '
            'style="image-rendering: pixelated; max-width: 100%">')
