"""Tiny networks: denoisers for 2-D points and small images, and the digit classifier."""

from diffusion_notes.models.classifier import DigitClassifier
from diffusion_notes.models.embeddings import TimeEmbedding, timestep_embedding
from diffusion_notes.models.mlp import MLPDenoiser
from diffusion_notes.models.unet import UNet

__all__ = ["DigitClassifier", "MLPDenoiser", "TimeEmbedding", "UNet", "timestep_embedding"]
