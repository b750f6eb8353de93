"""Where code runs and how big it runs: device choice and smoke mode.

* ``DIFFUSION_NOTES_DEVICE`` overrides the device (``cpu``, ``cuda``, ``cuda:1`` ...).
* ``DIFFUSION_NOTES_SMOKE=1`` asks labs and benchmarks for tiny step counts, so that tests
  can execute every lab in seconds. The site build runs with it unset (full settings).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import torch

T = TypeVar("T")


def get_device(preference: str = "auto") -> torch.device:
    """Pick ``cuda`` when present, else ``cpu``; the environment variable wins over 'auto'."""
    import torch  # here, not at module level: the site build imports this module without torch

    if preference == "auto":
        preference = os.environ.get("DIFFUSION_NOTES_DEVICE", "auto")
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(preference)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {preference!r} was asked for but CUDA is not available here; "
            "use 'cpu' or 'auto' (or unset DIFFUSION_NOTES_DEVICE)"
        )
    return device


def is_smoke() -> bool:
    """True when ``DIFFUSION_NOTES_SMOKE`` is set to a true value (1, true, yes)."""
    return os.environ.get("DIFFUSION_NOTES_SMOKE", "").strip().lower() in {"1", "true", "yes"}


def pick(full: T, smoke: T) -> T:
    """Return ``smoke`` in smoke mode, else ``full`` (for step counts and sample sizes)."""
    return smoke if is_smoke() else full
