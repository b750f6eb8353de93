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
