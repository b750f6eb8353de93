"""A tiny text encoder and the cross-attention that lets an image network read its output.

Text-to-image diffusion models condition the denoiser on a *sequence* of token vectors from a
text encoder, read through cross-attention: queries from the image features, keys and values
from the tokens [@rombach2022high, sec. 3.3; @Saharia2022PhotorealisticTD]. GLIDE trains its
text transformer jointly with the diffusion model [@nichol2021glide]; this miniature does the
same with a one-layer transformer over a caption vocabulary of 20 words.

* :class:`TextEncoder`: token embedding + learned position embedding + pre-norm transformer
  layers whose self-attention ignores padding; returns ``(tokens (B, L, D), pad_mask (B, L))``.
* :class:`CrossAttention`: ``h + W_o softmax(Q K^T / sqrt(d)) V`` with ``Q = W_q norm(h)`` at every
  pixel and ``K = W_k c``, ``V = W_v c`` from the caption tokens, padding keys masked out. With a
  single unmasked token the softmax weight is 1 at every pixel, so the layer adds the same
  vector ``W_o (W_v c + b_v) + b_o`` everywhere: a per-token bias, which is how a class label
  enters a class-conditional network.
"""

from __future__ import annotations

import torch
from torch import nn


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, pad: torch.Tensor,
            heads: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-head ``softmax(q k^T / sqrt(d)) v`` over keys not marked in ``pad`` (B, Lk).

    q (B, Lq, D), k and v (B, Lk, D); returns the output (B, Lq, D) and the attention weights
    (B, heads, Lq, Lk)."""
    b, lq, d = q.shape
    if bool(pad.all(dim=1).any()):
        raise ValueError("every caption needs at least one non-padding token "
                         "(the empty caption is the <null> token, see data.captions.tokenize)")

    def split(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(b, x.shape[1], heads, d // heads).transpose(1, 2)

    qh, kh, vh = split(q), split(k), split(v)
    logits = qh @ kh.transpose(-1, -2) / (d // heads) ** 0.5
    logits = logits.masked_fill(pad[:, None, None, :], float("-inf"))
    weights = logits.softmax(dim=-1)
    out = (weights @ vh).transpose(1, 2).reshape(b, lq, d)
    return out, weights


class TextLayer(nn.Module):
    """Pre-norm transformer layer: ``x + SelfAttn(LN x)``, then ``x + MLP(LN x)``."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)
        x = x + self.proj(_attend(q, k, v, pad, self.heads)[0])
        return x + self.mlp(self.norm2(x))


class TextEncoder(nn.Module):
    """Token ids (B, L) -> token vectors (B, L, dim) and the padding mask (B, L).

    Padding tokens are masked out of every attention, so a caption's vectors do not depend on
    how much padding follows it (positions count from the first token)."""

    def __init__(self, vocab_size: int, dim: int = 64, max_len: int = 8, layers: int = 1,
                 heads: int = 4, pad_id: int = 0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.vocab_size, self.dim, self.max_len, self.pad_id = vocab_size, dim, max_len, pad_id
        self.token = nn.Embedding(vocab_size, dim)
        self.position = nn.Parameter(torch.zeros(max_len, dim))
        nn.init.normal_(self.position, std=0.02)
        self.layers = nn.ModuleList(TextLayer(dim, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if tokens.ndim != 2 or tokens.dtype != torch.long:
            raise ValueError(f"tokens must be a (batch, length) LongTensor, got "
                             f"{tuple(tokens.shape)} {tokens.dtype}")
        if tokens.shape[1] > self.max_len:
            raise ValueError(f"captions of {tokens.shape[1]} tokens; this encoder takes at "
                             f"most {self.max_len}")
        if bool(((tokens < 0) | (tokens >= self.vocab_size)).any()):
            raise ValueError(f"token ids must lie in 0..{self.vocab_size - 1}")
        pad = tokens == self.pad_id
        x = self.token(tokens) + self.position[: tokens.shape[1]]
        for layer in self.layers:
            x = layer(x, pad)
        return self.norm(x), pad


class CrossAttention(nn.Module):
    """Image features attend to caption tokens: ``h + W_o Attn(W_q GN(h), W_k c, W_v c)``.

    ``h`` (B, C, H, W) gives one query per pixel; ``c`` (B, L, D) the keys and values; keys
    where ``pad`` (B, L) is True get weight 0. ``W_o`` starts at zero, so a fresh layer is the
    identity. :attr:`last_weights` keeps the latest attention weights (B, heads, H*W, L) when
    ``keep_weights`` is set (for the lab's attention maps)."""

    def __init__(self, channels: int, context_dim: int, heads: int = 1) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels {channels} must be divisible by heads {heads}")
        self.heads = heads
        self.norm = nn.GroupNorm(min(8, channels), channels)
        self.q = nn.Linear(channels, channels)
        self.k = nn.Linear(context_dim, channels)
        self.v = nn.Linear(context_dim, channels)
        self.out = nn.Linear(channels, channels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.keep_weights = False
        self.last_weights: torch.Tensor | None = None

    def forward(self, h: torch.Tensor, context: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        b, c, hh, ww = h.shape
        q = self.q(self.norm(h).flatten(2).transpose(1, 2))  # (B, H*W, C)
        out, weights = _attend(q, self.k(context), self.v(context), pad, self.heads)
        if self.keep_weights:
            self.last_weights = weights.detach()
        return h + self.out(out).transpose(1, 2).reshape(b, c, hh, ww)
