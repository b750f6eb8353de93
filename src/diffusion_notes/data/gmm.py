"""Gaussian mixtures: a target whose noised density, score and denoiser are known in closed form.

If ``x0 ~ sum_k w_k N(m_k, S_k)`` then, for the VP forward process, ``x_t = a x0 + s eps`` with
``a = sqrt(abar_t)``, ``s = sqrt(1 - abar_t)`` is again a mixture with the same weights:

    q(x_t) = sum_k w_k N(a m_k, C_k),   C_k = a^2 S_k + s^2 I.

Hence the exact score ``grad log q(x_t) = -sum_k r_k(x_t) C_k^{-1} (x_t - a m_k)`` (``r_k`` the
responsibilities under ``q(x_t)``), the exact noise prediction ``eps* = -s * score``, and the exact
denoiser ``E[x0 | x_t] = sum_k r_k (m_k + a S_k C_k^{-1} (x_t - a m_k))`` (Gaussian conditioning).
That makes a perfect "model" to test samplers against, in any dimension.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from diffusion_notes.diffusion import Prediction, check_prediction, v_at
from diffusion_notes.schedules import Schedule

_F64 = torch.float64


class GaussianMixture:
    """``sum_k w_k N(means[k], covs[k])`` in ``d`` dimensions, float64 internally.

    Args:
        means: ``(K, d)``; covs: ``(K, d, d)`` symmetric positive definite; weights: ``(K,)``,
        non-negative, summing to 1.
    """

    def __init__(self, means: torch.Tensor, covs: torch.Tensor, weights: torch.Tensor) -> None:
        means = torch.as_tensor(means, dtype=_F64)
        covs = torch.as_tensor(covs, dtype=_F64)
        weights = torch.as_tensor(weights, dtype=_F64)
        if means.ndim != 2:
            raise ValueError(f"means must have shape (K, d), got {tuple(means.shape)}")
        K, d = means.shape
        if covs.shape != (K, d, d):
            raise ValueError(
                f"covs must have shape (K, d, d) = {(K, d, d)}, got {tuple(covs.shape)}"
            )
        if weights.shape != (K,):
            raise ValueError(f"weights must have shape (K,) = {(K,)}, got {tuple(weights.shape)}")
        if bool((weights < 0).any()) or abs(float(weights.sum()) - 1.0) > 1e-6:
            raise ValueError(f"weights must be non-negative and sum to 1, got {weights.tolist()}")
        weights = weights / weights.sum()  # exact in float64 after a float32 input
        if not torch.allclose(covs, covs.transpose(-1, -2)):
            raise ValueError("covs must be symmetric")
        chol, info = torch.linalg.cholesky_ex(covs)
        if bool((info != 0).any()):
            raise ValueError(f"covs[{int(info.nonzero()[0])}] is not positive definite")
        self.means, self.covs, self.weights, self._chol = means, covs, weights, chol
        self._cache: dict[tuple[float, float], tuple[torch.Tensor, ...]] = {}

    @property
    def K(self) -> int:
        return int(self.means.shape[0])

    @property
    def d(self) -> int:
        return int(self.means.shape[1])

    def mean(self) -> torch.Tensor:
        """Mixture mean ``sum_k w_k m_k``."""
        return self.weights @ self.means

    def covariance(self) -> torch.Tensor:
        """Mixture covariance ``sum_k w_k (S_k + m_k m_k^T) - m m^T``."""
        m = self.mean()
        second = torch.einsum(
            "k,kij->ij", self.weights, self.covs + self.means[:, :, None] * self.means[:, None, :]
        )
        return second - torch.outer(m, m)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples, shape ``(n, d)``, float64 (components drawn by their weights)."""
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.d, generator=generator, dtype=_F64)
        return self.means[k] + torch.einsum("nij,nj->ni", self._chol[k], z)

    # -- densities -------------------------------------------------------------------------
    # Arrays are laid out (K, d, n), points last: reductions over the short K and d axes are then
    # fast vector adds (reducing a length-2 innermost axis is slow on CPU).
    def _component_terms(self, pts_t: torch.Tensor, a: float, s2: float):
        """For q(x_t) = sum_k w_k N(a m_k, C_k), C_k = a^2 S_k + s2 I, at points ``pts_t`` (d, n):
        log w_k N_k (K, n) and C_k^{-1} (x - a m_k) (K, d, n). Matrices are cached per (a, s2)."""
        key = (a, s2)
        if key not in self._cache:
            C = a * a * self.covs + s2 * torch.eye(self.d, dtype=_F64)
            L = torch.linalg.cholesky(C)
            C_inv = torch.cholesky_inverse(L)
            logdet = 2.0 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
            const = torch.log(self.weights) - 0.5 * (logdet + self.d * math.log(2 * math.pi))
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[key] = (C_inv, const[:, None])
        C_inv, const = self._cache[key]
        diff = pts_t[None] - (a * self.means)[:, :, None]  # (K, d, n)
        sol = torch.bmm(C_inv, diff)  # C^{-1} (x - a m)
        log_wn = const - 0.5 * (diff * sol).sum(1)  # (K, n)
        return log_wn, sol

    def _as_points(self, x: torch.Tensor) -> torch.Tensor:
        """Points as a float64 CPU array of shape (d, n)."""
        x = torch.as_tensor(x)
        if x.shape[-1] != self.d:
            raise ValueError(
                f"points must have last dimension d={self.d}, got shape {tuple(x.shape)}"
            )
        return x.detach().reshape(-1, self.d).to(device="cpu", dtype=_F64).T.contiguous()

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log p(x)``, shape ``x.shape[:-1]``, float64."""
        log_wn, _ = self._component_terms(self._as_points(x), 1.0, 0.0)
        return torch.logsumexp(log_wn, dim=0).reshape(x.shape[:-1])

    def responsibilities(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior component probabilities ``r_k(x) = w_k N_k(x) / p(x)``, shape ``(n, K)``.
        Their mean over samples of p is exactly ``w`` (a check of mixture weights)."""
        log_wn, _ = self._component_terms(self._as_points(x), 1.0, 0.0)
        return torch.softmax(log_wn, dim=0).T

    def noised(self, schedule: Schedule, t: int) -> GaussianMixture:
        """The exact marginal ``q(x_t)`` as a new mixture: means ``a m_k``, covs ``a^2 S_k + s^2 I``."""
        ab = float(schedule.alpha_bar[int(t)])
        covs = ab * self.covs + (1.0 - ab) * torch.eye(self.d, dtype=_F64)
        return GaussianMixture(math.sqrt(ab) * self.means, covs, self.weights)

    # -- exact score / denoiser -----------------------------------------------------------
    def _posterior(self, xt: torch.Tensor, t: torch.Tensor | int, schedule: Schedule):
        """Exact (score, E[x0 | x_t], eps) at points ``xt`` (..., d) and timesteps t (int or (n,)),
        each float64 of shape (n, d)."""
        pts = self._as_points(xt)  # (d, n)
        tt = torch.as_tensor(t).reshape(-1).cpu()
        if tt.numel() == 1 or bool((tt == tt[0]).all()):
            groups = [(int(tt[0]), slice(None))]
        else:
            if tt.numel() != pts.shape[1]:
                raise ValueError(f"t has {tt.numel()} entries for {pts.shape[1]} points")
            groups = [(int(v), (tt == v).nonzero().reshape(-1)) for v in torch.unique(tt)]
        out = torch.empty(3, self.d, pts.shape[1], dtype=_F64)  # score, x0, eps
        for tv, idx in groups:
            ab = schedule.alpha_bar_list[tv]
            a, s = math.sqrt(ab), math.sqrt(1.0 - ab)
            p = pts[:, idx]
            log_wn, sol = self._component_terms(p, a, 1.0 - ab)
            r = torch.softmax(log_wn, dim=0)[:, None, :]  # responsibilities at x_t, (K, 1, n)
            score = -(r * sol).sum(0)
            # E[x0 | x_t, k] = m_k + a S_k C_k^{-1} (x_t - a m_k)   (Gaussian conditioning)
            x0 = (r * (self.means[:, :, None] + a * torch.bmm(self.covs, sol))).sum(0)
            out[0][:, idx], out[1][:, idx] = score, x0
            out[2][:, idx] = (p - a * x0) / s  # eps = -s * score, stable at any s
        return out.transpose(1, 2)  # (3, n, d)

    def score(self, xt: torch.Tensor, t: torch.Tensor | int, schedule: Schedule) -> torch.Tensor:
        """Exact ``grad log q(x_t)``, shaped and typed like ``xt``."""
        return (
            self._posterior(xt, t, schedule)[0]
            .reshape(xt.shape)
            .to(device=xt.device, dtype=xt.dtype)
        )

    def denoise(self, xt: torch.Tensor, t: torch.Tensor | int, schedule: Schedule) -> torch.Tensor:
        """Exact ``E[x0 | x_t]``, shaped and typed like ``xt``."""
        return (
            self._posterior(xt, t, schedule)[1]
            .reshape(xt.shape)
            .to(device=xt.device, dtype=xt.dtype)
        )

    def eps_model(
        self, schedule: Schedule, prediction: Prediction = "eps"
    ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """A perfect network ``model(xt, t)``: the exact eps (= -s * score), x0 (= E[x0 | x_t]) or
        ``v = a eps - s x0``, computed in float64 and returned in ``xt``'s dtype and device."""
        check_prediction(prediction)
        sqrt_ab, sigma = schedule.sqrt_alpha_bar, schedule.sigma

        def model(xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            _, x0, eps = self._posterior(xt, t, schedule)
            if prediction == "x0":
                out = x0
            elif prediction == "eps":
                out = eps
            else:  # v = a eps - s x0 (Salimans & Ho 2022)
                tt = torch.as_tensor(t).reshape(-1).cpu()
                out = v_at(x0, eps, sqrt_ab[tt].reshape(-1, 1), sigma[tt].reshape(-1, 1))
            return out.reshape(xt.shape).to(device=xt.device, dtype=xt.dtype)

        return model


def ring_mixture(k: int = 8, radius: float = 2.0, std: float = 0.25) -> GaussianMixture:
    """K isotropic components on a circle, equal weights (a standard 2-D test target)."""
    angles = torch.arange(k, dtype=_F64) * (2 * math.pi / k)
    means = radius * torch.stack([angles.cos(), angles.sin()], dim=1)
    covs = (std**2) * torch.eye(2, dtype=_F64).expand(k, 2, 2).clone()
    return GaussianMixture(means, covs, torch.full((k,), 1.0 / k, dtype=_F64))


class LabelledMixture(GaussianMixture):
    """A Gaussian mixture whose components carry class labels: an exact toy for guidance.

    With ``y(k)`` the label of component ``k`` and ``p(y) = sum_{k: y(k) = y} w_k``:

    * the **conditional** ``p(x | y)`` is the mixture of the components labelled ``y`` with
      weights ``w_k / p(y)`` (:meth:`conditional`), so its noised marginal and score are exact
      too;
    * the **noisy classifier** is Bayes' rule on the noised mixture,
      ``p(y | x_t) = sum_{k: y(k) = y} w_k N(x_t; a m_k, C_k) / q(x_t)``
      (:meth:`log_classifier`, differentiable, so autograd can take its gradient);
    * its gradient is a difference of two exact scores,
      ``grad log p(y | x_t) = grad log q(x_t | y) - grad log q(x_t)`` (:meth:`classifier_score`).

    Args:
        labels: ``(K,)`` integers in ``0 .. num_classes - 1``; every class needs a component.
    """

    def __init__(
        self,
        means: torch.Tensor,
        covs: torch.Tensor,
        weights: torch.Tensor,
        labels: torch.Tensor | list[int],
    ) -> None:
        super().__init__(means, covs, weights)
        labels = torch.as_tensor(labels, dtype=torch.long)
        if labels.shape != (self.K,):
            raise ValueError(f"labels must have shape (K,) = {(self.K,)}, got {tuple(labels.shape)}")
        n = int(labels.max()) + 1
        missing = sorted(set(range(n)) - set(labels.tolist()))
        if int(labels.min()) < 0 or missing:
            raise ValueError(
                f"labels must cover 0 .. num_classes - 1 with no gaps; got {labels.tolist()} "
                f"(missing {missing})" if missing else f"labels must be >= 0, got {labels.tolist()}"
            )
        self.labels = labels
        self.num_classes = n
        self._conditionals: dict[int, GaussianMixture] = {}

    def check_class(self, y: int) -> int:
        """``y`` as an int, or a ValueError naming the valid classes."""
        if not isinstance(y, int | torch.Tensor) or (
            isinstance(y, torch.Tensor) and y.numel() != 1
        ):
            raise ValueError(f"class must be one integer, got {y!r}")
        y = int(y)
        if not 0 <= y < self.num_classes:
            raise ValueError(f"unknown class {y}: this mixture has classes 0 .. {self.num_classes - 1}")
        return y

    def class_prior(self) -> torch.Tensor:
        """``p(y)``, shape ``(num_classes,)``, float64."""
        return torch.zeros(self.num_classes, dtype=_F64).index_add_(0, self.labels, self.weights)

    def conditional(self, y: int) -> GaussianMixture:
        """``p(x | y)``: the components labelled ``y``, their weights renormalised."""
        y = self.check_class(y)
        if y not in self._conditionals:
            keep = self.labels == y
            w = self.weights[keep]
            self._conditionals[y] = GaussianMixture(self.means[keep], self.covs[keep], w / w.sum())
        return self._conditionals[y]

    def sample_labelled(
        self, n: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` pairs ``(x, y)`` from ``p(x, y)``: points ``(n, d)`` float64 and labels ``(n,)``."""
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.d, generator=generator, dtype=_F64)
        return self.means[k] + torch.einsum("nij,nj->ni", self._chol[k], z), self.labels[k]

    def log_classifier(self, xt: torch.Tensor, t: int, schedule: Schedule) -> torch.Tensor:
        """``log p(y | x_t)`` for every class, shape ``(n, num_classes)``, float64, differentiable.

        Bayes' rule on the exact noised mixture: component log-densities
        ``log w_k N(x_t; a m_k, a^2 S_k + s^2 I)`` are pooled per label by logsumexp and
        normalised over all components. ``t = -1`` means clean data (``a = 1, s = 0``).
        """
        ab = 1.0 if int(t) < 0 else schedule.alpha_bar_list[int(t)]
        a = math.sqrt(ab)
        x = xt.to(_F64).reshape(-1, self.d)
        C = ab * self.covs + (1.0 - ab) * torch.eye(self.d, dtype=_F64)
        L = torch.linalg.cholesky(C)  # (K, d, d)
        diff = x[None] - (a * self.means)[:, None, :]  # (K, n, d)
        z = torch.linalg.solve_triangular(L, diff.transpose(1, 2), upper=False)  # (K, d, n)
        logdet = 2.0 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
        log_wn = (torch.log(self.weights) - 0.5 * (logdet + self.d * math.log(2 * math.pi)))[
            :, None
        ] - 0.5 * (z * z).sum(1)  # (K, n)
        per_class = torch.stack(
            [torch.logsumexp(log_wn[self.labels == c], dim=0) for c in range(self.num_classes)], 1
        )
        return per_class - torch.logsumexp(log_wn, dim=0)[:, None]

    def classifier_score(
        self, xt: torch.Tensor, t: int, schedule: Schedule, y: int
    ) -> torch.Tensor:
        """``grad_x log p(y | x_t) = score of q(x_t | y) - score of q(x_t)``, shaped like ``xt``."""
        return self.conditional(y).score(xt, t, schedule) - self.score(xt, t, schedule)

    def guided_score(
        self, xt: torch.Tensor, t: int, schedule: Schedule, y: int, gamma: float
    ) -> torch.Tensor:
        """``grad log q(x_t) + gamma grad log p(y | x_t)``: what guidance with scale ``gamma``
        follows (classifier guidance with an exact classifier, or CFG with exact scores)."""
        return self.score(xt, t, schedule) + gamma * self.classifier_score(xt, t, schedule, y)

    def tilted_log_density(self, x: torch.Tensor, y: int, gamma: float) -> torch.Tensor:
        """``log p(x) + gamma log p(y | x)`` (unnormalised) at clean points ``x`` (..., d):
        the density guidance is often said to sample, ``p(x) p(y | x)^gamma``."""
        y = self.check_class(y)
        log_py_x = self.log_classifier(x.reshape(-1, self.d), -1, _UNIT_SCHEDULE)[:, y]
        return self.log_prob(x) + gamma * log_py_x.reshape(x.shape[:-1])

    def noised_tilted_score(
        self,
        xt: torch.Tensor,
        t: int,
        schedule: Schedule,
        y: int,
        gamma: float,
        *,
        half_width: float = 5.0,
        n_grid: int = 301,
    ) -> torch.Tensor:
        """Score of the *noised tilted* density ``q~_t = (p p(y|.)^gamma) * N(0, s^2)`` (scaled
        by ``a``), by quadrature on an ``n_grid^2`` grid over ``[-half_width, half_width]^2``.

        ``q~_t(x) ~ sum_g p~(g) N(x; a g, s^2 I)`` so its score is
        ``sum_g r_g(x) (a g - x) / s^2`` with ``r_g`` the normalised grid weights. For
        ``gamma = 1`` this is the score of ``q(x_t | y)``; for other gamma it differs from
        :meth:`guided_score` (the tilted noised score), which is the point of the guidance lab.
        Accurate while ``s`` is several grid spacings (checked against gamma = 1 in the tests).
        """
        if self.d != 2:
            raise ValueError("noised_tilted_score works on 2-D mixtures only")
        ab = schedule.alpha_bar_list[int(t)]
        a, s2 = math.sqrt(ab), 1.0 - ab
        g1 = torch.linspace(-half_width, half_width, n_grid, dtype=_F64)
        grid = torch.stack(torch.meshgrid(g1, g1, indexing="ij"), -1).reshape(-1, 2)
        log_w = self.tilted_log_density(grid, y, gamma)  # (G,)
        x = xt.to(_F64).reshape(-1, 2)
        out = torch.empty_like(x)
        for i in range(0, len(x), 64):  # (64, G) blocks keep memory small
            xb = x[i : i + 64]
            d2 = torch.cdist(xb, a * grid).pow(2)
            r = torch.softmax(log_w[None] - 0.5 * d2 / s2, dim=1)
            out[i : i + 64] = (r @ (a * grid) - xb) / s2
        return out.reshape(xt.shape).to(xt.dtype)

    def cond_eps_model(
        self, schedule: Schedule
    ) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
        """A perfect class-conditional noise predictor ``net(x_t, t, y)``: the exact eps of
        ``q(x_t | y)`` for ``y < num_classes`` and of ``q(x_t)`` for ``y = num_classes`` (the
        "no label" token of classifier-free guidance). ``y`` is an int or ``(B,)`` labels."""
        models = [self.conditional(c).eps_model(schedule) for c in range(self.num_classes)]
        models.append(self.eps_model(schedule))

        def net(xt: torch.Tensor, t: torch.Tensor, y: torch.Tensor | int) -> torch.Tensor:
            yy = torch.as_tensor(y, device=xt.device).reshape(-1).expand(xt.shape[0])
            if bool(((yy < 0) | (yy > self.num_classes)).any()):
                raise ValueError(
                    f"labels must lie in 0 .. {self.num_classes} ({self.num_classes} = no label)"
                )
            tt = torch.as_tensor(t).reshape(-1).expand(xt.shape[0])
            out = torch.empty_like(xt)
            for c in yy.unique().tolist():
                rows = (yy == c).nonzero().reshape(-1)
                out[rows] = models[c](xt[rows], tt[rows.cpu()])
            return out

        return net


class _UnitSchedule:
    """Stand-in for a schedule at clean data (only ``t = -1`` is ever asked of it)."""

    alpha_bar_list: list[float] = []


_UNIT_SCHEDULE: Schedule = _UnitSchedule()  # type: ignore[assignment]


def labelled_mixture() -> LabelledMixture:
    """The guidance lab's toy: three classes in 2-D, two of them made of two components, and
    classes that overlap, so that p(y | x) is soft and guidance has something to sharpen."""
    means = torch.tensor(
        [[-1.6, 0.6], [-0.4, 1.8], [0.6, 1.1], [0.3, -1.0], [1.7, -1.4]], dtype=_F64
    )
    s = [0.35, 0.3, 0.45, 0.4, 0.3]
    covs = torch.stack([v * v * torch.eye(2, dtype=_F64) for v in s])
    covs[2] = torch.tensor([[0.3, 0.12], [0.12, 0.15]], dtype=_F64)
    weights = torch.tensor([0.2, 0.15, 0.3, 0.2, 0.15], dtype=_F64)
    return LabelledMixture(means, covs, weights, labels=[0, 0, 1, 2, 2])
