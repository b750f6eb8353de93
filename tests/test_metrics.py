"""Digits FD, precision/recall and the digit classifier behind them."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from diffusion_notes.metrics import (
    digit_features,
    features_fd,
    frechet_distance,
    gaussian_fit,
    get_digit_classifier,
    precision_recall,
    real_data_floor,
    real_halves,
    score_digits,
    split_indices,
    sqrtm_psd,
)

EPS64 = float(np.finfo(np.float64).eps)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory):
    """Trained from scratch in a private cache (about 5 s on 2 cores), then loaded back."""
    root = tmp_path_factory.mktemp("cache")
    model, info = get_digit_classifier(root=root)
    again, info2 = get_digit_classifier(root=root)
    assert not info.from_cache and info2.from_cache and info2.accuracy == info.accuracy
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                  again.state_dict().values(), strict=True))
    return model, info


def test_classifier_held_out_accuracy(classifier) -> None:
    _, info = classifier
    assert info.n_train + info.n_held_out == 1797
    assert info.n_held_out == pytest.approx(0.2 * 1797, abs=10)  # rounded per class
    assert info.accuracy >= 0.97, f"held-out accuracy {info.accuracy:.3f} < 0.97"


def test_split_is_stratified_and_disjoint() -> None:
    labels = torch.arange(10).repeat_interleave(50)
    tr, te = split_indices(labels, 0.2, seed=0)
    assert set(tr.tolist()).isdisjoint(te.tolist()) and len(tr) + len(te) == 500
    assert torch.equal(torch.bincount(labels[te]), torch.full((10,), 10))


def test_sqrtm_psd_squares_back() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20, 20, generator=g, dtype=torch.float64)
    s = a @ a.T
    r = sqrtm_psd(s)
    # float64 eigen-decomposition: backward error ~ n * eps * |S|
    assert torch.allclose(r @ r, s, rtol=0, atol=20 * 20 * EPS64 * s.norm().item())
    assert torch.allclose(r, r.T)


def test_frechet_distance_matches_scipy_on_non_commuting_covariances() -> None:
    g = torch.Generator().manual_seed(1)
    a, b = (torch.randn(6, 6, generator=g, dtype=torch.float64) for _ in range(2))
    s1, s2 = a @ a.T + 0.1 * torch.eye(6), b @ b.T + 0.1 * torch.eye(6)
    mu1, mu2 = torch.randn(6, generator=g, dtype=torch.float64), torch.zeros(6, dtype=torch.float64)
    covmean = scipy.linalg.sqrtm(s1.numpy() @ s2.numpy()).real  # general (non-symmetric) sqrtm
    ref = float(((mu1 - mu2) ** 2).sum() + torch.trace(s1) + torch.trace(s2) - 2 * np.trace(covmean))
    # both are float64 computations of the same number; scipy's Schur sqrtm loses a few digits
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-9)


def test_frechet_distance_of_diagonal_gaussians_is_closed_form() -> None:
    # diagonal: FD = |mu1 - mu2|^2 + sum (sqrt(a_i) - sqrt(b_i))^2
    a = torch.tensor([1.0, 4.0, 9.0], dtype=torch.float64)
    b = torch.tensor([4.0, 4.0, 1.0], dtype=torch.float64)
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    expected = 1.0 + 4.0 + (1 - 2) ** 2 + 0 + (3 - 1) ** 2
    assert frechet_distance(mu1, a.diag(), mu2, b.diag()) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="shape mismatch"):
        frechet_distance(mu1, a.diag(), mu2[:2], b.diag()[:2, :2])


def test_fd_of_a_set_with_itself_is_zero(classifier) -> None:
    model, _ = classifier
    a, _ = real_halves()
    f = digit_features(model, a)
    d = f.shape[1]
    _, s = gaussian_fit(f)
    lam_max = torch.linalg.eigvalsh(s).max().item()
    fd = features_fd(f, f)
    # Exactly 0 in exact arithmetic: S^{1/2} S S^{1/2} = S^2, whose root is S. In float64, the
    # eigenvalues of S^2 carry absolute errors ~ d * eps * lam_max^2; taking sqrt of the
    # (near-)zero ones (ReLU features have null directions) turns that into ~ sqrt(d*eps)*lam_max
    # each, and there are at most d of them: |FD| <= d^1.5 * sqrt(eps) * lam_max.
    # (Measured: |FD| ~ 1e-5 with tr S ~ 1e3, lam_max ~ 2e2.)
    bound = d**1.5 * EPS64**0.5 * lam_max
    assert abs(fd) <= bound, (fd, bound)
    assert abs(fd) < 1e-6 * torch.trace(s).item()


def test_fd_grows_with_added_noise(classifier) -> None:
    model, _ = classifier
    a, b = real_halves()
    fa = digit_features(model, a)
    noise = torch.randn(b.shape, generator=torch.Generator().manual_seed(0))
    stds = [0.0, 0.1, 0.2, 0.4, 0.8]
    fds = [features_fd(digit_features(model, b + s * noise), fa) for s in stds]
    # strictly increasing (measured: about 11, 11.4, 17, 66, 270)
    assert all(x < y for x, y in zip(fds, fds[1:], strict=False)), fds
    assert fds[0] == pytest.approx(real_data_floor(model))  # std 0 is the floor itself
    assert fds[-1] > 10 * fds[0]


def test_precision_recall_behaviour() -> None:
    g = torch.Generator().manual_seed(0)
    real = torch.randn(500, 4, generator=g, dtype=torch.float64)
    same = torch.randn(500, 4, generator=g, dtype=torch.float64)
    pr = precision_recall(real, same)
    assert pr.precision > 0.8 and pr.recall > 0.8
    # a collapsed generator (all samples near one real point): precise but no recall
    collapsed = real[:1] + 0.01 * torch.randn(500, 4, generator=g, dtype=torch.float64)
    pr = precision_recall(real, collapsed)
    assert pr.precision == 1.0 and pr.recall < 0.05
    # samples far from the data: no precision
    far = same + 10.0
    assert precision_recall(real, far).precision == 0.0
    with pytest.raises(ValueError, match="k must be"):
        precision_recall(real[:3], same[:3], k=3)


def test_score_digits_on_real_data(classifier) -> None:
    model, _ = classifier
    _, other = real_halves()
    score = score_digits(other, model)
    assert score.fd == pytest.approx(score.floor)  # the other half *is* the floor's set
    assert sum(score.label_counts) == len(other) and len(score.label_counts) == 10
    assert min(score.label_counts) > 0.07 * len(other)  # the real digits are balanced
    assert score.precision > 0.8 and score.recall > 0.8


def test_floor_is_size_matched(classifier) -> None:
    model, _ = classifier
    _, other = real_halves()
    small = score_digits(other[:200], model)
    full = score_digits(other, model)
    assert small.fd == pytest.approx(small.floor)  # same 200 real digits both times
    # fewer samples -> larger plug-in FD (bias ~ tr(S)/n): the floor must follow
    assert small.floor > full.floor


def test_held_out_split_is_the_classifiers_and_disjoint() -> None:
    from diffusion_notes.data.digits import digits_split, load_digits_tensor

    train, held = digits_split()
    assert (len(train.images), len(held.images)) == (1438, 359)
    all_digits = load_digits_tensor()
    tr, te = split_indices(all_digits.labels, 0.2, seed=0)  # the classifier's own split
    assert torch.equal(all_digits.images[te], held.images)
    flat = {tuple(v.tolist()) for v in train.images.reshape(len(train.images), -1)}
    overlap = sum(tuple(v.tolist()) in flat for v in held.images.reshape(len(held.images), -1))
    assert overlap <= 2  # sklearn's digits hold a couple of exact duplicate images, no more
    counts = torch.bincount(held.labels, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # stratified: ~20 % of each class


def test_held_out_score_of_real_training_digits_sits_at_the_floor(classifier) -> None:
    clf, _ = classifier
    from diffusion_notes.data.digits import digits_split
    from diffusion_notes.metrics import score_digits_held_out

    train, held = digits_split()
    real = score_digits_held_out(train.images[-400:], clf, seed=1)
    noise = score_digits_held_out(torch.rand(400, 1, 8, 8) * 2 - 1, clf)
    assert real.n_reference == 359
    assert real.fd < 2.0 * real.floor  # real digits score like the floor
    assert noise.fd > 10.0 * noise.floor  # and noise far above it


def test_class_accuracy_counts_matching_predictions() -> None:
    """A stub classifier that reads the label off the first pixel: accuracy = share of matches."""
    import torch
    from torch import nn

    from diffusion_notes.metrics import class_accuracy

    class FirstPixel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.dummy = nn.Parameter(torch.zeros(()))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            k = ((x[:, 0, 0, 0] + 1) * 4.5).round().long()  # [-1, 1] -> 0..9
            return nn.functional.one_hot(k, 10).float()

    labels = torch.arange(10)
    x = torch.full((10, 1, 8, 8), -1.0)
    x[:, 0, 0, 0] = labels / 4.5 - 1
    assert class_accuracy(x, labels, FirstPixel()) == 1.0
    assert class_accuracy(x, labels.roll(1), FirstPixel()) == 0.0
    assert class_accuracy(x, torch.where(labels < 3, labels, 0), FirstPixel()) == 0.3
    with pytest.raises(ValueError, match="10 samples but 9 labels"):
        class_accuracy(x, labels[:9], FirstPixel())
