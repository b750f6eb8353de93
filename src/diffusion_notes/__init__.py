"""diffusion_notes: the code companion of the diffusion-notes knowledge base."""

from diffusion_notes.runtime import get_device, is_smoke, pick

__all__ = ["get_device", "is_smoke", "pick"]
__version__ = "0.1.0"
