"""Pieces every sampler shares: validation, the noise levels of the pairs, noise, progress.

The network, its parametrisation and the x0 post-processing are the
:class:`~diffusion_notes.denoiser.Denoiser`'s business; a sampler only precomputes its per-step
coefficients as Python floats (from the float64 schedule, as named tuples) so that a step is a
handful of tensor operations in the sample's own dtype.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from tqdm import tqdm  # text bars: no ipywidgets needed in notebooks

from diffusion_notes.denoiser import Denoiser
from diffusion_notes.schedules import alpha_bar_at
from diffusion_notes.timesteps import check_pairs

Callback = Callable[[int, int, torch.Tensor, torch.Tensor], None]  # (i, t, x, x0_pred)


def validate(
    den: Denoiser, pairs: Sequence[tuple[int, int]], name: str, *, eps_needs_signal: bool = True
) -> list[tuple[int, int]]:
    """Check the pairs; refuse eps-prediction at a timestep ``t`` where alpha_bar = 0 (unless
    ``eps_needs_signal=False``: the sampler never converts at ``t`` itself)."""
    if not isinstance(den, Denoiser):
        raise TypeError(
            f"{name}: the first argument must be a Denoiser, got {type(den).__name__}; wrap the "
            "network: Denoiser(net, schedule, prediction=...)"
        )
    pairs = check_pairs(pairs, den.schedule.T)
    if eps_needs_signal and den.prediction == "eps":
        ab = den.schedule.alpha_bar_list
        bad = [t for t, _ in pairs if ab[t] == 0.0]
        if bad:
            raise ValueError(
                f"{name}: eps-prediction is undefined at t={bad[0]}, where alpha_bar = 0 (zero "
                "terminal SNR): x0 = (x_t - sqrt(1 - alpha_bar) eps) / sqrt(alpha_bar) divides by 0. "
                "This happens whenever the pairs visit t = T-1 of a zero-terminal-SNR schedule, i.e. "
                "'trailing' or 'linspace' spacing (or 'leading' with n_steps = T). Use a v-prediction "
                "(or x0-prediction) model, as Lin et al. 2023 do with trailing spacing; 'leading' "
                "spacing avoids t = T-1 but then never starts from pure noise."
            )
    return pairs


def abar_pairs(
    den: Denoiser, pairs: Sequence[tuple[int, int]], set_alpha_to_one: bool
) -> list[tuple[float, float]]:
    """``(alpha_bar[t], alpha_bar[t_prev])`` per pair, with the set_alpha_to_one choice at -1."""
    s = den.schedule
    return [
        (alpha_bar_at(s, t), alpha_bar_at(s, tp, set_alpha_to_one=set_alpha_to_one))
        for t, tp in pairs
    ]


def draw_noise(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise shaped like ``x``, drawn as diffusers' randn_tensor draws it (so a
    seeded generator gives both libraries the same values); a CPU generator is moved over."""
    if generator is not None and generator.device.type != x.device.type:
        return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=generator.device).to(
            x.device
        )
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)


def steps(
    pairs: list[tuple[int, int]], progress: bool, desc: str
) -> Iterable[tuple[int, tuple[int, int]]]:
    """Enumerate the pairs behind a tqdm bar (off with progress=False)."""
    if not progress:
        return enumerate(pairs)
    return enumerate(tqdm(pairs, desc=desc, leave=False))
