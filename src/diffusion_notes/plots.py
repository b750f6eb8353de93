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


# ------------------------------------------------------------------ alt text for the site
# A lab figure on the site is an <img>; its alt text is what a screen reader says and what a
# reader without images sees. By default it is derived from the figure's own titles and axis
# labels (so a new lab gets it without doing anything); `describe(fig, "...")` states it.
_ALT_ATTR = "_diffusion_notes_alt"


def describe(fig, alt: str):
    """Set the alt text the site shows for ``fig`` (instead of the one derived from its titles)."""
    if not alt.strip():
        raise ValueError("describe(fig, alt): alt text must say what the figure shows")
    setattr(fig, _ALT_ATTR, alt.strip())
    return fig


def figure_alt(fig) -> str:
    """Alt text of a figure: the text given to :func:`describe`, else its titles and labels."""
    from diffusion_notes.site.plaintext import tex_to_text

    explicit = getattr(fig, _ALT_ATTR, None)
    if explicit:
        return explicit
    panels = [ax for ax in fig.axes if not hasattr(ax, "_colorbar") and ax.get_visible()]
    described = []
    for ax in panels:
        title = ax.get_title() or ax.get_title("left") or ax.get_title("right")
        axes_text = [f"{name}: {label}" for name, label in
                     (("x", ax.get_xlabel()), ("y", ax.get_ylabel())) if label]
        if title or axes_text:
            described.append(tex_to_text(title or "untitled panel")
                             + (f" ({tex_to_text('; '.join(axes_text))})" if axes_text else ""))
    suptitle = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) else ""
    head = tex_to_text(suptitle) if suptitle else "Figure"
    n = len(panels)
    text = f"{head}: {n} panel{'s' if n != 1 else ''}"
    if described:
        text += ": " + "; ".join(described)
    return text + "."


def install_alt_text() -> None:
    """In a Jupyter kernel: every figure the inline backend shows carries ``alt`` metadata.

    The site build starts each lab's kernel with this hook (``execute_lab``); the build then
    writes that text into the page's ``<img alt>``.
    """
    from matplotlib_inline import backend_inline

    original = backend_inline._fetch_figure_metadata
    if getattr(original, "diffusion_notes_alt", False):
        return

    def with_alt(fig):
        metadata = dict(original(fig) or {})
        metadata["alt"] = figure_alt(fig)
        return metadata

    with_alt.diffusion_notes_alt = True  # type: ignore[attr-defined]
    backend_inline._fetch_figure_metadata = with_alt


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
