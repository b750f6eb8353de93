"""Samplers: pure functions ``sample_*(den, x, pairs, ...) -> x0 samples``.

``den`` is a :class:`~diffusion_notes.denoiser.Denoiser` (the network with its parametrisation,
x0 post-processing and conditioning; the schedule is ``den.schedule``); ``pairs`` comes from
:mod:`diffusion_notes.timesteps`. Multistep history lives in local variables;
``callback(i, t, x, x0_pred)`` sees the state after each step.
"""

from diffusion_notes.samplers.consistency import consistency_scalings, sample_lcm, sample_tcd
from diffusion_notes.samplers.ddim import ddim_invert, ddim_sigma, sample_ddim
from diffusion_notes.samplers.ddpm import sample_ddpm
from diffusion_notes.samplers.dpm_solver import sample_dpm_solver_pp
from diffusion_notes.samplers.multistep import sample_dpm_solver_pp_3m, sample_exp_adams
from diffusion_notes.samplers.ode import sample_euler, sample_heun

__all__ = [
    "consistency_scalings",
    "ddim_invert",
    "ddim_sigma",
    "sample_ddim",
    "sample_ddpm",
    "sample_dpm_solver_pp",
    "sample_dpm_solver_pp_3m",
    "sample_exp_adams",
    "sample_euler",
    "sample_heun",
    "sample_lcm",
    "sample_tcd",
]
