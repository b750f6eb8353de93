"""Sample-quality measures for the digits: "digits FD", precision and recall.

* A small CNN (:class:`~diffusion_notes.models.DigitClassifier`) is trained here on a
  stratified 80 % of scikit-learn's digits; its accuracy on the other 20 % is reported.
* **Digits FD** is the Fréchet distance between Gaussian fits of its penultimate features,
  the recipe of FID (Heusel et al. 2017) with a digit network in place of Inception:
  ``FD = |mu_1 - mu_2|^2 + tr(S_1 + S_2 - 2 (S_1^{1/2} S_2 S_1^{1/2})^{1/2})``.
* **Precision / recall** follow Kynkäänniemi et al. 2019: each set is covered by balls
  around its points with radius the distance to the k-th nearest neighbour in the same set;
  precision is the share of generated points inside the real cover, recall the share of real
  points inside the generated cover.
* **The floor**: FD between two disjoint halves of the real digits. A model cannot be expected
  to score below what finite real samples score against each other; report it beside every FD.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from diffusion_notes.cache import cache_root, config_hash, load_or_build
from diffusion_notes.checkpoints import load_checkpoint, save_checkpoint
from diffusion_notes.data.digits import digits_split, load_digits_tensor, split_indices
from diffusion_notes.models.classifier import DigitClassifier

_CLASSIFIER_SETTINGS = {"feature_dim": 64, "epochs": 40, "batch_size": 64, "lr": 2e-3,
                        "held_out": 0.2, "shift": 1, "seed": 0}


@dataclass(frozen=True)
class ClassifierInfo:
    accuracy: float  # held-out accuracy, fraction in [0, 1]
    n_train: int
    n_held_out: int
    path: Path | None  # cache file, None when not cached
    from_cache: bool


@dataclass(frozen=True)
class PrecisionRecall:
    precision: float
    recall: float
    k: int


@dataclass(frozen=True)
class DigitsScore:
    """A generated set of digits scored against real ones (see the module docstring)."""

    fd: float  # digits FD of the samples against the reference half of the real data
    floor: float  # digits FD between the two halves of the real data
    precision: float
    recall: float
    n_samples: int
    n_reference: int
    label_counts: tuple[int, ...]  # classifier's predicted label histogram on the samples


def _random_shift(x: torch.Tensor, max_shift: int, g: torch.Generator) -> torch.Tensor:
    """Translate each image by up to ``max_shift`` pixels (zero = background -1 padding)."""
    if max_shift == 0:
        return x
    b, _, h, w = x.shape
    pad = F.pad(x, (max_shift,) * 4, value=-1.0)
    dx = torch.randint(0, 2 * max_shift + 1, (b,), generator=g)
    dy = torch.randint(0, 2 * max_shift + 1, (b,), generator=g)
    rows = (dy[:, None] + torch.arange(h)[None, :])  # (b, h)
    cols = (dx[:, None] + torch.arange(w)[None, :])  # (b, w)
    bi = torch.arange(b)[:, None, None]
    return pad[bi, 0, rows[:, :, None], cols[:, None, :]][:, None]


def train_digit_classifier(
    *, seed: int = 0, epochs: int | None = None, device: str | torch.device = "cpu"
) -> tuple[DigitClassifier, ClassifierInfo]:
    """Train the digit classifier on a stratified 80 % split; report held-out accuracy.

    Deterministic for a given seed on CPU (its own generators; the global RNG is restored).
    """
    s = dict(_CLASSIFIER_SETTINGS, seed=seed)
    if epochs is not None:
        s["epochs"] = epochs
    digits = load_digits_tensor()
    train_idx, test_idx = split_indices(digits.labels, s["held_out"], seed)
    x_tr, y_tr = digits.images[train_idx].to(device), digits.labels[train_idx].to(device)
    x_te, y_te = digits.images[test_idx].to(device), digits.labels[test_idx].to(device)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # initial weights and dropout masks
        model = DigitClassifier(feature_dim=s["feature_dim"]).to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=s["lr"], weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, T_max=s["epochs"] * -(-len(x_tr) // s["batch_size"])
        )
        model.train()
        for _ in range(s["epochs"]):
            perm = torch.randperm(len(x_tr), generator=g)
            for i in range(0, len(perm), s["batch_size"]):
                b = perm[i : i + s["batch_size"]]
                xb = _random_shift(x_tr[b].cpu(), s["shift"], g).to(device)
                loss = F.cross_entropy(model(xb), y_tr[b])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    model.eval()
    with torch.no_grad():
        acc = (model(x_te).argmax(1) == y_te).double().mean().item()
    return model, ClassifierInfo(acc, len(train_idx), len(test_idx), None, False)


def get_digit_classifier(
    *, device: str | torch.device = "cpu", root: str | os.PathLike[str] | None = None
) -> tuple[DigitClassifier, ClassifierInfo]:
    """The digit classifier from the model cache, trained (a few seconds) when missing, through
    the same load-or-train path as the diffusion models (:func:`~diffusion_notes.cache.load_or_build`)."""
    root = Path(root) if root is not None else cache_root()
    path = root / "models" / f"digit-classifier-{config_hash(_CLASSIFIER_SETTINGS)}.pt"

    def load(p: Path) -> tuple[DigitClassifier, dict]:
        ckpt = load_checkpoint(p, kind="digit-classifier")
        model = DigitClassifier(feature_dim=int(ckpt["feature_dim"]))
        model.load_state_dict(ckpt["model"])
        return model, ckpt

    def build(folder: Path) -> Path:
        model, info = train_digit_classifier(seed=_CLASSIFIER_SETTINGS["seed"])
        return save_checkpoint("digit-classifier", {
            "model": model.state_dict(), "feature_dim": model.feature_dim,
            "accuracy": info.accuracy, "n_train": info.n_train, "n_held_out": info.n_held_out,
        }, folder / path.name)

    (model, ckpt), from_cache = load_or_build(path, load, build)
    info = ClassifierInfo(float(ckpt["accuracy"]), int(ckpt["n_train"]), int(ckpt["n_held_out"]),
                          path, from_cache)
    return model.to(device).eval(), info


@torch.no_grad()
def digit_features(
    classifier: DigitClassifier, images: torch.Tensor, batch_size: int = 1024
) -> torch.Tensor:
    """Penultimate features (float64, on CPU) of images in [-1, 1], shape (N, feature_dim)."""
    device = next(classifier.parameters()).device
    was_training = classifier.training
    classifier.eval()
    out = [classifier.features(images[i : i + batch_size].to(device, torch.float32)).cpu()
           for i in range(0, len(images), batch_size)]
    classifier.train(was_training)
    return torch.cat(out).to(torch.float64)


def gaussian_fit(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (unbiased) covariance of (N, d) features, in float64."""
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"need features of shape (N >= 2, d), got {tuple(features.shape)}")
    f = features.to(torch.float64)
    return f.mean(0), torch.cov(f.T).reshape(f.shape[1], f.shape[1])


def sqrtm_psd(s: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix by eigen-decomposition.

    ``S = Q diag(l) Q^T  =>  S^{1/2} = Q diag(sqrt(max(l, 0))) Q^T``; negative eigenvalues can
    only be rounding error for a PSD input, so they are clipped to zero.
    """
    s = s.to(torch.float64)
    s = 0.5 * (s + s.T)  # remove asymmetric rounding noise before eigh
    evals, evecs = torch.linalg.eigh(s)
    return (evecs * evals.clamp_min(0).sqrt()) @ evecs.T


def frechet_distance(
    mu1: torch.Tensor, s1: torch.Tensor, mu2: torch.Tensor, s2: torch.Tensor
) -> float:
    """Fréchet (2-Wasserstein squared) distance between N(mu1, s1) and N(mu2, s2).

    ``tr((S1 S2)^{1/2})`` is computed as ``tr((S1^{1/2} S2 S1^{1/2})^{1/2})``: the two matrices
    are similar, so they share eigenvalues, and the second is symmetric PSD, so ``eigvalsh``
    applies (no general, complex-valued ``sqrtm`` needed).
    """
    mu1, mu2, s1, s2 = (a.to(torch.float64) for a in (mu1, mu2, s1, s2))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.numel(), mu1.numel()):
        raise ValueError(
            f"shape mismatch: mu {tuple(mu1.shape)} / {tuple(mu2.shape)}, "
            f"S {tuple(s1.shape)} / {tuple(s2.shape)}"
        )
    r1 = sqrtm_psd(s1)
    m = r1 @ s2 @ r1
    m = 0.5 * (m + m.T)
    tr_sqrt = torch.linalg.eigvalsh(m).clamp_min(0).sqrt().sum()
    fd = (mu1 - mu2).pow(2).sum() + torch.trace(s1) + torch.trace(s2) - 2 * tr_sqrt
    return float(fd)


def features_fd(f1: torch.Tensor, f2: torch.Tensor) -> float:
    """Fréchet distance between Gaussian fits of two feature sets."""
    return frechet_distance(*gaussian_fit(f1), *gaussian_fit(f2))


def _kth_nn_radius(f: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each point to its k-th nearest neighbour in the same set (self excluded)."""
    d = torch.cdist(f, f)
    return d.kthvalue(k + 1, dim=1).values  # the 1st smallest is the point itself (0)


def precision_recall(
    real: torch.Tensor, fake: torch.Tensor, k: int = 3
) -> PrecisionRecall:
    """Improved precision and recall (Kynkäänniemi et al. 2019) on feature vectors."""
    if k < 1 or k >= min(len(real), len(fake)):
        raise ValueError(f"k must be in 1..{min(len(real), len(fake)) - 1}, got {k}")
    real, fake = real.to(torch.float64), fake.to(torch.float64)
    r_real, r_fake = _kth_nn_radius(real, k), _kth_nn_radius(fake, k)
    d = torch.cdist(fake, real)  # (n_fake, n_real)
    precision = (d <= r_real[None, :]).any(1).double().mean().item()
    recall = (d.T <= r_fake[None, :]).any(1).double().mean().item()
    return PrecisionRecall(precision, recall, k)


def real_halves(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The 1797 real digits split by a seeded shuffle into two disjoint halves (898 / 899)."""
    x = load_digits_tensor().images
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    half = len(x) // 2
    return x[perm[:half]], x[perm[half:]]


def real_data_floor(classifier: DigitClassifier, seed: int = 0) -> float:
    """Digits FD between the two real halves: the score of a perfect sampler at this size."""
    a, b = real_halves(seed)
    return features_fd(digit_features(classifier, a), digit_features(classifier, b))


def score_digits(
    samples: torch.Tensor, classifier: DigitClassifier, *, seed: int = 0, k: int = 3
) -> DigitsScore:
    """Digits FD, its floor, precision/recall and the predicted-label histogram of ``samples``.

    Samples (8x8 or 16x16, in [-1, 1]) are compared with the first real half. The floor is
    ``min(n_samples, 899)`` digits of the second half against the same first half, so both
    FDs are estimated from sets of the same sizes: the plug-in Fréchet estimate is biased
    upwards by roughly ``tr(S) / n`` per set, so only size-matched FDs compare.
    """
    if samples.ndim != 4 or samples.shape[0] < 2:
        raise ValueError(f"samples must be images (N >= 2, 1, H, W), got {tuple(samples.shape)}")
    ref, other = real_halves(seed)
    other = other[: min(len(samples), len(other))]
    f_ref = digit_features(classifier, ref)
    f_fake = digit_features(classifier, samples.clamp(-1, 1))
    f_other = digit_features(classifier, other)
    pr = precision_recall(f_ref, f_fake, min(k, len(samples) - 1))
    with torch.no_grad():
        device = next(classifier.parameters()).device
        pred = classifier(samples.clamp(-1, 1).to(device)).argmax(1).cpu()
    counts = torch.bincount(pred, minlength=10)
    return DigitsScore(
        fd=features_fd(f_fake, f_ref),
        floor=features_fd(f_other, f_ref),
        precision=pr.precision,
        recall=pr.recall,
        n_samples=len(samples),
        n_reference=len(ref),
        label_counts=tuple(int(c) for c in counts),
    )


def score_digits_held_out(
    samples: torch.Tensor, classifier: DigitClassifier, *, k: int = 3, seed: int = 0
) -> DigitsScore:
    """Like :func:`score_digits`, but against the held-out fifth of the digits (never seen in
    training by the classifier or by a model trained on ``digits_train``).

    The reference is the 359 held-out digits; the floor is ``min(n_samples, 1438)`` training
    digits (a seeded draw) against the same reference, so sample and floor FDs are estimated
    from sets of equal size and compare one to one.
    """
    if samples.ndim != 4 or samples.shape[0] < 2:
        raise ValueError(f"samples must be images (N >= 2, 1, H, W), got {tuple(samples.shape)}")
    upscale = samples.shape[-1] // 8
    train, held = digits_split(upscale=upscale)
    perm = torch.randperm(len(train.images), generator=torch.Generator().manual_seed(seed))
    other = train.images[perm[: min(len(samples), len(perm))]]
    f_ref = digit_features(classifier, held.images)
    f_fake = digit_features(classifier, samples.clamp(-1, 1))
    f_other = digit_features(classifier, other)
    pr = precision_recall(f_ref, f_fake, min(k, len(samples) - 1))
    with torch.no_grad():
        device = next(classifier.parameters()).device
        pred = classifier(samples.clamp(-1, 1).to(device)).argmax(1).cpu()
    counts = torch.bincount(pred, minlength=10)
    return DigitsScore(
        fd=features_fd(f_fake, f_ref),
        floor=features_fd(f_other, f_ref),
        precision=pr.precision,
        recall=pr.recall,
        n_samples=len(samples),
        n_reference=len(held.images),
        label_counts=tuple(int(c) for c in counts),
    )


def label_entropy(counts: tuple[int, ...] | np.ndarray) -> float:
    """Entropy (bits) of a label histogram; log2(10) ~ 3.32 for perfectly balanced digits."""
    p = np.asarray(counts, dtype=np.float64)
    p = p[p > 0] / p.sum()
    return float(-(p * np.log2(p)).sum())


@torch.no_grad()
def class_accuracy(
    samples: torch.Tensor, labels: torch.Tensor, classifier: DigitClassifier
) -> float:
    """Share of conditional samples that the digit classifier assigns to the label they were
    generated for (the classifier's own held-out accuracy is the ceiling to compare with)."""
    if len(samples) != len(labels):
        raise ValueError(f"{len(samples)} samples but {len(labels)} labels")
    device = next(classifier.parameters()).device
    pred = classifier(samples.clamp(-1, 1).to(device, torch.float32)).argmax(1).cpu()
    return float((pred == labels.cpu()).double().mean())
