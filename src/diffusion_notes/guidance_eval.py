"""Measuring guided digits: class accuracy, held-out digits FD, precision/recall, diversity.

One evaluation draws ``n_per_class`` samples for every digit class with a guided denoiser and
scores them with the held-out digit classifier of :mod:`diffusion_notes.metrics`:

* **accuracy**: the share of samples the classifier assigns to the class they were asked for;
* **FD, floor, precision, recall**: :func:`~diffusion_notes.metrics.score_digits_held_out`
  against the 359 held-out digits (the floor is real training digits of the same count);
* **diversity**: the mean pairwise distance between classifier features of samples asked for
  the same class, averaged over classes (:func:`within_class_diversity`); the held-out digits
  grouped by their true label give the reference value.

The labs and ``bench/guidance.py`` share this code, so their numbers are the same measurement.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from diffusion_notes.denoiser import Denoiser
from diffusion_notes.metrics import digit_features, score_digits_held_out
from diffusion_notes.models.classifier import DigitClassifier

Sampler = Callable[[Denoiser, torch.Tensor, torch.Generator], torch.Tensor]


@dataclass(frozen=True)
class GuidedEval:
    """The scores of one (method, scale, interval) setting."""

    method: str
    scale: float
    interval: tuple[float, float] | None
    accuracy: float
    fd: float
    floor: float
    precision: float
    recall: float
    diversity: float
    n_samples: int
    seconds_per_64: float


def within_class_diversity(
    images: torch.Tensor, labels: torch.Tensor, classifier: DigitClassifier
) -> float:
    """Mean pairwise feature distance within each label, averaged over the labels present."""
    f = digit_features(classifier, images.clamp(-1, 1))
    per_class = []
    for c in labels.unique().tolist():
        fc = f[labels == c]
        if len(fc) < 2:
            continue
        d = torch.cdist(fc, fc)
        per_class.append(float(d.sum() / (len(fc) * (len(fc) - 1))))  # off-diagonal mean
    if not per_class:
        raise ValueError("diversity needs at least two samples of some class")
    return sum(per_class) / len(per_class)


def class_labels(n_per_class: int, num_classes: int = 10) -> torch.Tensor:
    """``[0]*n, [1]*n, ...``: the labels a balanced evaluation asks for."""
    if n_per_class < 2:
        raise ValueError(f"n_per_class must be >= 2 (diversity needs pairs), got {n_per_class}")
    return torch.arange(num_classes).repeat_interleave(n_per_class)


def evaluate_guided(
    build: Callable[[torch.Tensor], Denoiser],
    sampler: Sampler,
    classifier: DigitClassifier,
    *,
    method: str,
    scale: float,
    interval: tuple[float, float] | None = None,
    n_per_class: int = 40,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> tuple[GuidedEval, torch.Tensor, torch.Tensor]:
    """Sample ``n_per_class`` digits of each class with ``build(labels)`` and score them.

    Returns the scores, the samples (on CPU) and the labels they were asked for. The same
    ``seed`` gives every setting the same starting noise, so curves compare like with like.
    """
    labels = class_labels(n_per_class)
    den = build(labels.to(device))
    g = torch.Generator().manual_seed(seed)
    x_T = torch.randn(len(labels), 1, 8, 8, generator=g).to(device)
    start = time.perf_counter()
    x = sampler(den, x_T, g).detach().cpu()
    seconds = time.perf_counter() - start
    clf_dev = next(classifier.parameters()).device
    with torch.no_grad():
        pred = classifier(x.clamp(-1, 1).to(clf_dev)).argmax(1).cpu()
    score = score_digits_held_out(x, classifier)
    result = GuidedEval(
        method=method, scale=float(scale), interval=interval,
        accuracy=float((pred == labels).double().mean()),
        fd=score.fd, floor=score.floor, precision=score.precision, recall=score.recall,
        diversity=within_class_diversity(x, labels, classifier),
        n_samples=len(x), seconds_per_64=seconds / len(x) * 64,
    )
    return result, x, labels


def format_table(rows: Sequence[GuidedEval]) -> str:
    """The rows as a fixed-width text table (what the labs print)."""
    head = (f"{'method':>9} {'scale':>6} {'interval':>13} | {'acc':>6} {'FD':>6} {'floor':>6} "
            f"{'prec':>5} {'rec':>5} {'div':>6} | {'s/64':>5}")
    lines = [head, "-" * len(head)]
    for r in rows:
        iv = "all" if r.interval is None else f"({r.interval[0]:g}, {r.interval[1]:g}]"
        lines.append(
            f"{r.method:>9} {r.scale:6.2f} {iv:>13} | {r.accuracy:6.1%} {r.fd:6.2f} "
            f"{r.floor:6.2f} {r.precision:5.2f} {r.recall:5.2f} {r.diversity:6.2f} | "
            f"{r.seconds_per_64:5.2f}")
    return "\n".join(lines)


def ddim_sampler(pairs: Sequence[tuple[int, int]]) -> Sampler:
    """Deterministic DDIM on ``pairs`` (the guided denoiser carries clipping and guidance)."""
    from diffusion_notes.samplers import sample_ddim

    def run(den: Denoiser, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return sample_ddim(den, x, pairs, eta=0.0, generator=generator, progress=False)

    return run


def plot_guidance_curves(rows: Sequence[GuidedEval], title: str = ""):
    """FD against class accuracy (the trade-off), and precision, recall, diversity per scale."""
    import matplotlib.pyplot as plt

    groups: dict[str, list[GuidedEval]] = {}
    for r in rows:
        key = r.method if r.interval is None else f"{r.method}, sigma in ({r.interval[0]:g}, " \
                                                  f"{r.interval[1]:g}]"
        groups.setdefault(key, []).append(r)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for (name, rs), marker in zip(groups.items(), "osd^v", strict=False):
        rs = sorted(rs, key=lambda r: r.scale)
        axes[0].plot([r.accuracy for r in rs], [r.fd for r in rs], marker=marker, label=name)
        for r in rs:
            axes[0].annotate(f"{r.scale:g}", (r.accuracy, r.fd), fontsize=7,
                             textcoords="offset points", xytext=(3, 3))
        axes[1].plot([r.scale for r in rs], [r.precision for r in rs], marker=marker,
                     label=f"{name}: precision")
        axes[1].plot([r.scale for r in rs], [r.recall for r in rs], marker=marker, ls="--",
                     label=f"{name}: recall")
        axes[2].plot([r.scale for r in rs], [r.diversity for r in rs], marker=marker, label=name)
    floor = sum(r.floor for r in rows) / len(rows)
    axes[0].axhline(floor, color="grey", ls=":", label=f"real-data floor ({floor:.2f})")
    axes[0].set_xlabel("class accuracy (held-out classifier)")
    axes[0].set_ylabel("digits FD vs held-out digits")
    axes[0].set_title("fidelity vs quality (numbers: scale)")
    axes[1].set_xlabel("guidance scale")
    axes[1].set_title("precision (solid) and recall (dashed)")
    axes[2].set_xlabel("guidance scale")
    axes[2].set_title("within-class diversity (feature distance)")
    for ax in axes:
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
