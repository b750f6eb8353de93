"""What every benchmark records about the machine it ran on (so a figure says where it came from)."""

from __future__ import annotations

import os
import platform
import sys

import torch


def machine_info(device: torch.device, load_before: float) -> dict:
    """Device, CPU count, torch threads and versions, and the load average when the run began."""
    return {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "load_average_at_start": load_before,
    }
