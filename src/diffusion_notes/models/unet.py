"""A small UNet for 8x8 and 16x16 single-channel images, with time and optional labels.

The shape follows the DDPM network (Ho et al. 2020, app. B) at toy size: ResNet blocks
with group normalisation, the timestep embedding added inside every block, a self-attention
block at the lowest resolution, and skip connections that concatenate the encoder's features
into the decoder. An 8x8 input runs at resolutions 8 -> 4; a 16x16 input at 16 -> 8 -> 4.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from diffusion_notes.models.embeddings import TimeEmbedding


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels), channels)


class ResBlock(nn.Module):
    """norm -> SiLU -> conv, add the embedding, norm -> SiLU -> conv, plus a skip path."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int) -> None:
        super().__init__()
        self.norm1 = _norm(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2 = _norm(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(F.silu(emb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Single-head self-attention over the pixels of a feature map, with a residual path."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = _norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).unbind(1)
        # softmax(Q^T K / sqrt(c)) over the h*w positions
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2)[:, None], k.transpose(1, 2)[:, None], v.transpose(1, 2)[:, None]
        )[:, 0]
        return x + self.proj(out.transpose(1, 2).reshape(b, c, h, w))


class UNet(nn.Module):
    """Denoiser for (B, C, H, W) images with H = W in {8, 16} (any size divisible by the
    total downsampling factor works).

    ``model(xt, t)`` or, with ``num_classes``, ``model(xt, t, y)`` where ``y == num_classes``
    is the "no label" token. ``channel_mult`` sets the levels: (1, 2) gives 8 -> 4.
    ``guidance_embedding=True`` (a consistency student) adds the input ``w``:
    ``model(xt, t, y, w)``; without it the parameters are exactly those of earlier versions.
    """

    def __init__(
        self,
        in_channels: int = 1,
        base_channels: int = 32,
        channel_mult: tuple[int, ...] = (1, 2),
        num_res_blocks: int = 1,
        attention: bool = True,
        num_classes: int | None = None,
        freq_dim: int = 64,
        guidance_embedding: bool = False,
    ) -> None:
        super().__init__()
        if not channel_mult or any(m < 1 for m in channel_mult):
            raise ValueError(f"channel_mult must be positive integers, got {channel_mult}")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.factor = 2 ** (len(channel_mult) - 1)
        emb_dim = 4 * base_channels
        self.embed = TimeEmbedding(freq_dim, emb_dim, num_classes,
                                   guidance_embedding=guidance_embedding)
        self.inp = nn.Conv2d(in_channels, base_channels, 3, padding=1)

        chans = [base_channels]  # channels of every skip connection, in push order
        c = base_channels
        self.down = nn.ModuleList()
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                self.down.append(ResBlock(c, base_channels * mult, emb_dim))
                c = base_channels * mult
                chans.append(c)
            if level < len(channel_mult) - 1:
                self.down.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                chans.append(c)
        self.mid1 = ResBlock(c, c, emb_dim)
        self.attn = SelfAttention(c) if attention else nn.Identity()
        self.mid2 = ResBlock(c, c, emb_dim)
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            for _ in range(num_res_blocks + 1):
                self.up.append(ResBlock(c + chans.pop(), base_channels * mult, emb_dim))
                c = base_channels * mult
            if level > 0:
                self.up.append(nn.Upsample(scale_factor=2, mode="nearest"))
                self.up.append(nn.Conv2d(c, c, 3, padding=1))
        self.out_norm = _norm(c)
        self.out = nn.Conv2d(c, in_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @property
    def block_channels(self) -> list[int]:
        """Output channels of every ResBlock in the order ``forward`` runs them (down, mid, up):
        the feature maps that ``mix`` sees."""
        blocks = [*self.down, self.mid1, self.mid2, *self.up]
        return [b.conv2.out_channels for b in blocks if isinstance(b, ResBlock)]

    def forward(
        self,
        xt: torch.Tensor,
        t: torch.Tensor,
        y: torch.Tensor | None = None,
        w: torch.Tensor | float | None = None,
        *,
        mix: Callable[[int, torch.Tensor], torch.Tensor] | None = None,
        inp_extra: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``mix(k, h)``, when given, replaces the output ``h`` of the k-th ResBlock (in the
        order of :attr:`block_channels`): the hook through which a video model inserts layers
        that mix information across the frames of a clip. ``inp_extra`` (B, base_channels, H, W),
        when given, is added to the input convolution's output: the hook through which a video
        model feeds other frames in as extra input channels."""
        if xt.ndim != 4 or xt.shape[1] != self.in_channels:
            raise ValueError(
                f"xt must have shape (batch, {self.in_channels}, H, W), got {tuple(xt.shape)}"
            )
        if xt.shape[2] % self.factor or xt.shape[3] % self.factor:
            raise ValueError(
                f"image size {tuple(xt.shape[2:])} must be divisible by {self.factor}"
            )
        if t.ndim == 0:
            t = t.expand(xt.shape[0])
        emb = self.embed(t, y, None if w is None else torch.as_tensor(w))
        k = 0

        def block(layer: ResBlock, h: torch.Tensor) -> torch.Tensor:
            nonlocal k
            h = layer(h, emb)
            if mix is not None:
                h = mix(k, h)
            k += 1
            return h

        h = self.inp(xt)
        if inp_extra is not None:
            h = h + inp_extra
        skips = [h]
        for layer in self.down:
            h = block(layer, h) if isinstance(layer, ResBlock) else layer(h)
            skips.append(h)
        h = block(self.mid2, self.attn(block(self.mid1, h)))
        for layer in self.up:
            if isinstance(layer, ResBlock):
                h = block(layer, torch.cat([h, skips.pop()], dim=1))
            else:
                h = layer(h)
        return self.out(F.silu(self.out_norm(h)))
