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
