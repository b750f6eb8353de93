"""A factorised space-time denoiser: an image UNet applied to every frame, plus temporal layers.

Video Diffusion Models [@ho2022video] factorise the 3-D UNet: every spatial layer works on each
frame separately (the frames are folded into the batch), and after each spatial block a
*temporal* layer mixes the features of one pixel across the frames of a clip. Make-A-Video
[@singer2023makeavideo] and AnimateDiff [@guo2023animatediff] start the spatial part from a trained
image model and initialise the temporal layers so that they do nothing: the video model then
starts out as the image model applied frame by frame, and training only has to learn motion.
AnimateDiff goes one step further and freezes the image layers, training only the temporal
("motion") modules; :meth:`VideoUNet.freeze_spatial` does that.

Layout: clips are ``(B, F, C, H, W)`` (batch, frames, channels, height, width).

* :class:`TemporalAttention`: self-attention over the F frames at each pixel, with a learned
  embedding of the frame index (so order is known), a residual path and a zero-initialised
  output projection: ``h + proj(attn(norm(h) + pos))`` with ``proj = 0`` is exactly ``h``.
* :class:`TemporalConv`: a residual 1-D convolution over the frames (kernel 3 in time, 1x1 in
  space), also zero-initialised: the cheaper, local alternative.
* :class:`SpaceTimeConv`: a residual 3-D convolution (3 frames x 3 x 3 pixels), zero-initialised:
  it sees a pixel's neighbours in the previous and next frame, so one layer can carry a feature
  one pixel (one cell of the feature map) along a path, the way a 3-D UNet's convolutions do.
* :class:`SpaceTimeAttention`: attention over all frames and positions of small feature maps;
  :class:`SpaceTimeRelAttention` adds a learned bias per head for every offset in frames, rows
  and columns between query and key (relative position, as Video Diffusion Models use in their
  temporal attention [@ho2022video]), so "look ``v`` pixels further on, one frame later" is one
  parameter shared by every position instead of a pattern learned position by position.

:class:`PreviousFramesUNet` is the other family: an *autoregressive* frame model. It denoises one
frame at a time and sees the previous ``context`` frames, clean, as extra input channels of the
image UNet, the way MCVD [@voleti2022mcvd] concatenates past frames to the noisy ones. Written as
a sum, ``inp([x_t, c]) = inp_x(x_t) + inp_c(c)``, a convolution over concatenated channels is the
image model's input convolution plus a new one over the context; the new one starts at zero, so
the model starts as the image model, whatever the context.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal, get_args

import torch
from torch import nn
from torch.nn import functional as F

from diffusion_notes.models.unet import UNet, _norm

TemporalKind = Literal["attention", "conv", "conv3d", "spacetime", "spacetime_rel"]
TEMPORAL_KINDS: tuple[str, ...] = get_args(TemporalKind)
MAX_FRAMES = 32
MAX_SIDE = 64  # largest feature-map side the space-time layer has position embeddings for
FULL_TOKENS = 64  # the space-time layer attends over all F*H*W tokens where H*W <= this


class TemporalAttention(nn.Module):
    """Multi-head self-attention across frames, independently at every pixel (residual)."""

    def __init__(self, channels: int, head_dim: int = 16, max_frames: int = MAX_FRAMES) -> None:
        super().__init__()
        self.heads = max(1, channels // head_dim)
        self.norm = _norm(channels)
        self.pos = nn.Parameter(torch.randn(max_frames, channels) * 0.02)  # frame index
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)
        nn.init.zeros_(self.proj.weight)  # the layer starts as the identity
        nn.init.zeros_(self.proj.bias)

    def forward(self, h: torch.Tensor, frames: int) -> torch.Tensor:
        bf, c, hh, ww = h.shape
        b = bf // frames
        # (B*F, C, H, W) -> (B, H*W, F, C): one sequence of F tokens per pixel
        z = self.norm(h).reshape(b, frames, c, hh * ww).permute(0, 3, 1, 2)
        z = z + self.pos[:frames]
        q, k, v = self.qkv(z).reshape(b, hh * ww, frames, 3, self.heads, c // self.heads).unbind(3)
        # softmax(q k^T / sqrt(d)) v over the F frames, per head: (B, HW, heads, F, d)
        out = F.scaled_dot_product_attention(q.transpose(2, 3), k.transpose(2, 3), v.transpose(2, 3))
        out = self.proj(out.transpose(2, 3).reshape(b, hh * ww, frames, c))
        return h + out.permute(0, 2, 3, 1).reshape(bf, c, hh, ww)


class TemporalConv(nn.Module):
    """norm -> SiLU -> conv over frames (kernel 3, zero padding at the clip's ends), residual.

    ``space`` is the kernel's extent in rows and columns: 1 mixes one pixel across frames, 3 also
    its neighbours (:class:`SpaceTimeConv`). The kernel starts at zero: the layer starts as the
    identity."""

    def __init__(self, channels: int, space: int = 1) -> None:
        super().__init__()
        self.norm = _norm(channels)
        self.conv = nn.Conv3d(channels, channels, (3, space, space),
                              padding=(1, space // 2, space // 2))
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, h: torch.Tensor, frames: int) -> torch.Tensor:
        bf, c, hh, ww = h.shape
        z = F.silu(self.norm(h)).reshape(bf // frames, frames, c, hh, ww).transpose(1, 2)
        out = self.conv(z).transpose(1, 2).reshape(bf, c, hh, ww)
        return h + out


class SpaceTimeConv(TemporalConv):
    """:class:`TemporalConv` with a (3, 3, 3) kernel: 3 frames x 3 x 3 pixels."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels, space=3)


class SpaceTimeAttention(TemporalAttention):
    """Self-attention over every frame *and* every position of a clip, on small feature maps.

    Per-pixel temporal attention only mixes what sits at the same place in every frame, so a
    moving object is seen by it as different parts of itself; carrying the object along its path
    is left to the spatial convolutions around it. Here, on a feature map of at most
    ``FULL_TOKENS`` positions (the 8x8 and 4x4 levels of the 16x16 UNet), each of the ``F*H*W``
    tokens attends to all the others, with learned frame, row and column embeddings, so one
    layer can copy a feature from frame ``j`` at position ``p`` to frame ``k`` at ``p + v(k-j)``:
    the full space-time attention of latent video transformers, on a miniature. On larger maps,
    where the cost grows as ``(F*H*W)^2``, the layer falls back to per-pixel attention over the
    frames. The output projection starts at zero, so the layer starts as the identity.
    """

    def __init__(self, channels: int, head_dim: int = 16, max_frames: int = MAX_FRAMES) -> None:
        super().__init__(channels, head_dim, max_frames)
        self.row = nn.Parameter(torch.randn(MAX_SIDE, channels) * 0.02)
        self.col = nn.Parameter(torch.randn(MAX_SIDE, channels) * 0.02)

    def forward(self, h: torch.Tensor, frames: int) -> torch.Tensor:
        bf, c, hh, ww = h.shape
        if hh * ww > FULL_TOKENS:
            return super().forward(h, frames)
        if max(hh, ww) > MAX_SIDE:
            raise ValueError(f"feature map {hh}x{ww} is larger than {MAX_SIDE} per side")
        b = bf // frames
        # (B*F, C, H, W) -> (B, F, H, W, C) + frame, row and column embeddings -> (B, F*H*W, C)
        z = self.norm(h).reshape(b, frames, c, hh, ww).permute(0, 1, 3, 4, 2)
        z = (z + self.pos[:frames, None, None] + self.row[:hh, None] + self.col[:ww]).reshape(
            b, frames * hh * ww, c)
        q, k, v = self.qkv(z).reshape(b, -1, 3, self.heads, c // self.heads).unbind(2)
        mask = self.bias(frames, hh, ww)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                             attn_mask=None if mask is None else mask.to(q.dtype))
        out = self.proj(out.transpose(1, 2).reshape(b, frames, hh, ww, c))
        return h + out.permute(0, 1, 4, 2, 3).reshape(bf, c, hh, ww)

    def bias(self, frames: int, hh: int, ww: int) -> torch.Tensor | None:
        """Additive attention logits for the ``frames * hh * ww`` tokens: none here."""
        return None


class SpaceTimeRelAttention(SpaceTimeAttention):
    """:class:`SpaceTimeAttention` plus a learned relative-position bias: the attention logit of
    a query at (frame, row, col) ``(f, i, j)`` for a key at ``(f', i', j')`` gains
    ``b[head, f' - f, i' - i, j' - j]``. The table starts at zero (and the output projection
    too), so the layer still starts as the identity. Per-pixel fallback on large maps as in
    the parent class."""

    def __init__(self, channels: int, head_dim: int = 16, max_frames: int = MAX_FRAMES) -> None:
        super().__init__(channels, head_dim, max_frames)
        self.max_frames = max_frames
        side = int(FULL_TOKENS**0.5)  # the largest square map that gets full attention
        self.rel = nn.Parameter(torch.zeros(self.heads, 2 * max_frames - 1, 2 * side - 1, 2 * side - 1))

    def bias(self, frames: int, hh: int, ww: int) -> torch.Tensor:
        """(heads, N, N) additive logits for the ``N = frames * hh * ww`` tokens."""
        side = (self.rel.shape[-1] + 1) // 2
        if max(hh, ww) > side:
            raise ValueError(f"feature map {hh}x{ww} is larger than {side} per side")
        df, di, dj = _offset_indices(frames, hh, ww, self.max_frames, side)
        return self.rel[:, df.to(self.rel.device), di.to(self.rel.device), dj.to(self.rel.device)]


@lru_cache(maxsize=16)
def _offset_indices(
    frames: int, hh: int, ww: int, max_frames: int, side: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(N, N) indices into a relative-bias table of every (key - query) offset in frames, rows
    and columns, shifted to start at 0; built once per clip shape, not at every forward."""
    f, i, j = torch.meshgrid(torch.arange(frames), torch.arange(hh), torch.arange(ww),
                             indexing="ij")
    f, i, j = (a.reshape(-1) for a in (f, i, j))
    return ((f[None, :] - f[:, None]) + max_frames - 1, (i[None, :] - i[:, None]) + side - 1,
            (j[None, :] - j[:, None]) + side - 1)


class VideoUNet(nn.Module):
    """An image :class:`~diffusion_notes.models.unet.UNet` run on every frame, with a temporal
    layer after each of its ResBlocks. ``model(xt, t)`` takes clips ``(B, F, C, H, W)`` and one
    timestep per clip ``(B,)`` (every frame of a clip has the same noise level), or one per
    frame ``(B, F)``: a clean context frame is given at timestep 0 while the others are noisy
    (image-to-video, :class:`diffusion_notes.video.KnownFramesDenoiser` with ``clean=True``)."""

    def __init__(self, spatial: UNet, temporal: TemporalKind = "attention") -> None:
        super().__init__()
        if temporal not in TEMPORAL_KINDS:
            raise ValueError(f"temporal {temporal!r}: choose one of {', '.join(TEMPORAL_KINDS)}")
        self.spatial = spatial
        self.temporal_kind = temporal
        make = {"attention": TemporalAttention, "conv": TemporalConv, "conv3d": SpaceTimeConv,
                "spacetime": SpaceTimeAttention, "spacetime_rel": SpaceTimeRelAttention}[temporal]
        self.temporal = nn.ModuleList(make(c) for c in spatial.block_channels)

    def freeze_spatial(self) -> VideoUNet:
        """AnimateDiff's recipe: the image layers keep their weights; only motion layers train."""
        self.spatial.requires_grad_(False)
        return self

    def forward(
        self, xt: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        if xt.ndim != 5:
            raise ValueError(f"clips must have shape (batch, frames, C, H, W), got {tuple(xt.shape)}")
        b, f = xt.shape[:2]
        if f > MAX_FRAMES:
            raise ValueError(f"at most {MAX_FRAMES} frames per clip, got {f}")
        if t.ndim == 0:
            t = t.expand(b)
        if t.ndim == 2:  # one timestep per frame (clean context frames sit at t = 0)
            if tuple(t.shape) != (b, f):
                raise ValueError(f"per-frame timesteps must have shape {(b, f)}, got {tuple(t.shape)}")
            tt = t.reshape(-1)
        else:
            tt = t.repeat_interleave(f)  # the clip's timestep for each of its frames
        yy = None if y is None else y.repeat_interleave(f)
        out = self.spatial(xt.flatten(0, 1), tt, yy, mix=lambda k, h: self.temporal[k](h, f))
        return out.reshape(xt.shape)


class PreviousFramesUNet(nn.Module):
    """An image :class:`~diffusion_notes.models.unet.UNet` that also sees the previous
    ``context`` frames of the clip, clean, as extra input channels (MCVD's conditioning
    [@voleti2022mcvd]; see the module docstring).

    ``model(xt, t, context)`` takes one noisy frame per row, ``xt`` ``(N, C, H, W)`` with
    ``t`` ``(N,)``, and ``context`` ``(N, 2 * context * C, H, W)`` from :func:`previous_frames`:
    the previous frames, then one mask plane per frame saying whether it exists (the first
    frames of a clip have fewer predecessors; missing ones are zeros with mask 0). Without
    context (the first frame) it is an unconditional image model.
    """

    def __init__(self, spatial: UNet, context: int = 2) -> None:
        super().__init__()
        if context < 1:
            raise ValueError(f"context must be >= 1 previous frame, got {context}")
        self.spatial = spatial
        self.context = context
        c_in = spatial.in_channels
        self.inp_context = nn.Conv2d(2 * context * c_in, spatial.inp.out_channels, 3, padding=1)
        nn.init.zeros_(self.inp_context.weight)  # starts as the image model
        nn.init.zeros_(self.inp_context.bias)

    def freeze_spatial(self) -> PreviousFramesUNet:
        """Keep the image layers; train only the context input (AnimateDiff's recipe)."""
        self.spatial.requires_grad_(False)
        return self

    def forward(self, xt: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        want = 2 * self.context * self.spatial.in_channels
        if context.shape[0] != xt.shape[0] or context.shape[1] != want or context.shape[2:] != xt.shape[2:]:
            raise ValueError(f"context of shape {tuple(context.shape)} does not fit frames "
                             f"{tuple(xt.shape)}: need (N, {want}, H, W) from previous_frames()")
        return self.spatial(xt, t, inp_extra=self.inp_context(context))


def previous_frames(clips: torch.Tensor, j: int, context: int) -> torch.Tensor:
    """The context of frame ``j`` of ``(B, F, C, H, W)`` clips: frames ``j-1 .. j-context``
    (zeros before the clip starts), then a mask plane per frame, 1 where it exists:
    ``(B, 2 * context * C, H, W)``. Frames from ``j`` on are never read, so ``j`` may be the
    frame just after the last one given."""
    if clips.shape[1] < 1 or not 0 <= j <= clips.shape[1]:
        raise ValueError(f"frame {j} is outside clips of {clips.shape[1]} frames (need 0 <= j <= frames)")
    frame0 = clips[:, 0]
    parts, masks = [], []
    for d in range(1, context + 1):
        have = j - d >= 0
        parts.append(clips[:, j - d] if have else torch.zeros_like(frame0))
        masks.append(torch.full_like(frame0, float(have)))
    return torch.cat(parts + masks, dim=1)


def all_previous_frames(clips: torch.Tensor, context: int) -> torch.Tensor:
    """:func:`previous_frames` of every frame: ``(B, F, 2 * context * C, H, W)``."""
    return torch.stack([previous_frames(clips, j, context) for j in range(clips.shape[1])], dim=1)
