"""The package's UNet conditioned on a caption through cross-attention (text-to-image).

:class:`TextUNet` composes, without changing it, the :class:`~diffusion_notes.models.unet.UNet`
(built without labels) with a :class:`~diffusion_notes.models.text_encoder.TextEncoder` and one
:class:`~diffusion_notes.models.text_encoder.CrossAttention` after every ResBlock, inserted
through the UNet's ``mix`` hook. This is the latent diffusion recipe of Rombach et al.
[@rombach2022high, sec. 3.3]: ``eps_theta(z_t, t, tau(y))`` with the condition ``tau(y)`` read
by cross-attention inside the denoiser; the timestep still enters through the UNet's own
embedding. ``model(z_t, t, tokens)`` takes caption ids from
:func:`diffusion_notes.data.captions.tokenize`.
"""

from __future__ import annotations

import torch
from torch import nn

from diffusion_notes.data.captions import MAX_TOKENS, PAD_ID, VOCAB
from diffusion_notes.models.text_encoder import CrossAttention, TextEncoder
from diffusion_notes.models.unet import UNet


class TextUNet(nn.Module):
    """``eps_theta(x_t, t, tokens)``: UNet + text encoder + cross-attention after each ResBlock."""

    def __init__(self, in_channels: int = 2, base_channels: int = 32,
                 channel_mult: tuple[int, ...] = (1, 2), text_dim: int = 64,
                 text_layers: int = 1, heads: int = 1, vocab_size: int = len(VOCAB),
                 max_len: int = MAX_TOKENS) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.unet = UNet(in_channels, base_channels, channel_mult)
        self.text = TextEncoder(vocab_size, text_dim, max_len, text_layers, pad_id=PAD_ID)
        self.cross = nn.ModuleList(CrossAttention(c, text_dim, heads)
                                   for c in self.unet.block_channels)

    def forward(self, xt: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.ndim != 2 or tokens.shape[0] != xt.shape[0]:
            raise ValueError(f"tokens must have shape (batch={xt.shape[0]}, length), got "
                             f"{tuple(tokens.shape)}")
        context, pad = self.text(tokens.to(xt.device))
        return self.unet(xt, t, mix=lambda k, h: self.cross[k](h, context, pad))

    def keep_attention(self, on: bool = True) -> None:
        """Make every cross-attention layer keep its latest weights (``layer.last_weights``)."""
        for layer in self.cross:
            layer.keep_weights = on
            layer.last_weights = None
