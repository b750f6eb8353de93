"""The denoiser: parametrisations agree, post-processing keeps (x0, eps) consistent, conditioning
reaches the network, options are checked."""

from __future__ import annotations

import pytest
import torch

from diffusion_notes.denoiser import Denoised, Denoiser, dynamic_threshold
from diffusion_notes.diffusion import q_sample, v_from_x0_eps
from diffusion_notes.schedules import make_schedule

F64 = torch.float64


def _truth(t: int):
    s = make_schedule("linear", 1000)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(16, 3, generator=g, dtype=F64)
    eps = torch.randn(16, 3, generator=g, dtype=F64)
    xt = q_sample(s, x0, t, eps)
    return s, x0, eps, xt


@pytest.mark.parametrize("t", [0, 10, 500, 999])
@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_each_parametrisation_recovers_x0_and_eps(prediction: str, t: int) -> None:
    s, x0, eps, xt = _truth(t)
    target = {"eps": eps, "x0": x0, "v": v_from_x0_eps(s, x0, t, eps)}[prediction]
    den = Denoiser(lambda x, tt: target, s, prediction=prediction)
    d = den(xt, t)
    assert isinstance(d, Denoised)
    # float64 round trip through a, s in (0, 1): error of a few ulps times 1/a (<= 160 at t=999)
    torch.testing.assert_close(d.x0, x0, rtol=0, atol=1e-11)
    torch.testing.assert_close(d.eps, eps, rtol=0, atol=1e-11)


def test_clipping_recomputes_eps_for_the_same_xt() -> None:
    s, x0, eps, xt = _truth(300)
    den = Denoiser(lambda x, tt: 3.0 * x, s, prediction="x0", clip_x0=True)
    d = den(xt, 300)
    assert d.x0.abs().max() <= 1.0
    a, sig = den.coefficients(300)
    torch.testing.assert_close(a * d.x0 + sig * d.eps, xt, rtol=0, atol=1e-12)
    kept = den.replace(recompute_eps=False)(xt, 300)
    torch.testing.assert_close(kept.eps, (xt - a * 3.0 * xt) / sig)


def test_threshold_matches_dynamic_threshold() -> None:
    s, _, _, xt = _truth(100)
    den = Denoiser(lambda x, tt: 4.0 * x, s, prediction="x0", threshold=0.9)
    torch.testing.assert_close(den(xt, 100).x0, dynamic_threshold(4.0 * xt, 0.9))


def test_cond_is_passed_to_the_net_and_only_when_set() -> None:
    s, _, _, xt = _truth(5)
    seen = []

    def net(x, t, *cond):
        seen.append(cond)
        return torch.zeros_like(x)

    den = Denoiser(net, s)
    den(xt, 5)
    den.with_cond(torch.tensor([3]))(xt, 5)
    assert seen[0] == () and int(seen[1][0]) == 3


def test_alpha_bar_override_is_used_for_the_conversion() -> None:
    s, _, _, xt = _truth(0)
    den = Denoiser(lambda x, tt: torch.ones_like(x), s)
    torch.testing.assert_close(den(xt, 0, alpha_bar=1.0).x0, xt)  # s = 0: x0 = x_t exactly


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"prediction": "score"}, "allowed: eps, x0, v"),
        ({"clip_x0": True, "threshold": 0.99}, "choose one"),
        ({"threshold": 1.5}, "quantile"),
        ({"clip_range": 0.0}, "clip_range"),
    ],
)
def test_bad_options_name_the_fix(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Denoiser(lambda x, t: x, make_schedule("linear", 10), **kwargs)


def test_output_shape_is_checked() -> None:
    den = Denoiser(lambda x, t: x[:, :1], make_schedule("linear", 10))
    with pytest.raises(ValueError, match="expected"):
        den(torch.zeros(2, 3), 4)
