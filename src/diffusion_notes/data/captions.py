"""Captions for the 8x8 digits, made from each digit's label and its measured strokes.

The text-to-image miniature needs image-caption pairs. Nobody wrote captions for scikit-learn's
digits, so they are synthesised: the label gives the digit word, and the stroke properties of
:mod:`diffusion_notes.data.strokes` give adjectives, each property cut at its **terciles** on
the training split (the 1/3 and 2/3 quantiles):

* thickness: lowest third "thin", highest third "thick";
* size: lowest third "small", highest third "large";
* slant: lowest third "tilted left", highest third "tilted right".

The middle third gets no word, so captions vary in length and a missing word means "ordinary":
"a seven", "a thick seven", "a thin small zero, tilted left". The vocabulary is fixed and small
(:data:`VOCAB`, 22 tokens); :func:`tokenize` turns captions into padded integer ids, and the empty caption
``""`` is the null condition of classifier-free guidance (the token ``<null>``, as the class
model's "no label").

    >>> make_caption(7, thickness="thick")
    'a thick seven'
    >>> make_caption(0, size="small", slant="tilted left")
    'a small zero, tilted left'
    >>> tokenize(["a seven", ""]).tolist()
    [[2, 11, 0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0, 0]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from diffusion_notes.data.strokes import measure

PAD, NULL = "<pad>", "<null>"
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
THICKNESS_WORDS = ("thin", "", "thick")  # lowest, middle, highest tercile
SIZE_WORDS = ("small", "", "large")
SLANT_WORDS = ("tilted left", "", "tilted right")
VOCAB: tuple[str, ...] = (PAD, NULL, "a", ",", *DIGIT_WORDS,
                          "thin", "thick", "small", "large", "tilted", "left", "right", "an")
WORD_ID = {w: i for i, w in enumerate(VOCAB)}
PAD_ID, NULL_ID = WORD_ID[PAD], WORD_ID[NULL]
MAX_TOKENS = 8  # the longest caption, "a thin small seven , tilted left", has 7


@dataclass(frozen=True)
class Terciles:
    """The 1/3 and 2/3 quantiles ``(lo, hi)`` of each property on the images they were fit on."""

    thickness: tuple[float, float]
    size: tuple[float, float]
    slant: tuple[float, float]


def fit_terciles(images: torch.Tensor) -> Terciles:
    """Tercile boundaries of thickness, size and slant over ``images`` (N, 1, 8, 8) in [-1, 1]."""
    p = measure(images)
    q = torch.tensor([1 / 3, 2 / 3], dtype=torch.float64)

    def cut(v: torch.Tensor) -> tuple[float, float]:
        lo, hi = torch.quantile(v.double(), q).tolist()
        return float(lo), float(hi)

    return Terciles(cut(p.thickness), cut(p.size), cut(p.slant))


def training_terciles() -> Terciles:
    """The terciles of the 80 % training split (``digits_split()[0]``): the captions' cuts."""
    from diffusion_notes.data.digits import digits_split

    return fit_terciles(digits_split()[0].images)


def _bin(v: torch.Tensor, cuts: tuple[float, float]) -> torch.Tensor:
    """0 below the first cut, 2 above the second, 1 in between."""
    return (v >= cuts[0]).long() + (v > cuts[1]).long()


def make_caption(digit: int, *, thickness: str = "", size: str = "", slant: str = "") -> str:
    """``"a [thickness] [size] <digit>[, <slant>]"``, empty words left out."""
    if not 0 <= int(digit) <= 9:
        raise ValueError(f"digit must be 0..9, got {digit}")
    for name, word, allowed in (("thickness", thickness, THICKNESS_WORDS),
                                ("size", size, SIZE_WORDS), ("slant", slant, SLANT_WORDS)):
        if word not in allowed:
            raise ValueError(f"unknown {name} word {word!r}; allowed: {list(allowed)}")
    ws = [w for w in (thickness, size, DIGIT_WORDS[int(digit)]) if w]
    text = " ".join(["an" if ws[0] == "eight" else "a", *ws])
    return f"{text}, {slant}" if slant else text


def caption_digits(images: torch.Tensor, labels: torch.Tensor, terciles: Terciles) -> list[str]:
    """One caption per image from its label and its measured properties' terciles."""
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    p = measure(images)
    bins = zip(_bin(p.thickness, terciles.thickness).tolist(), _bin(p.size, terciles.size).tolist(),
               _bin(p.slant, terciles.slant).tolist(), strict=True)
    return [make_caption(int(y), thickness=THICKNESS_WORDS[a], size=SIZE_WORDS[b],
                         slant=SLANT_WORDS[c])
            for y, (a, b, c) in zip(labels.tolist(), bins, strict=True)]


@dataclass(frozen=True)
class ParsedCaption:
    """What a caption says: the digit (None for the empty caption) and the property words."""

    digit: int | None
    thickness: str = ""
    size: str = ""
    slant: str = ""


def words(caption: str) -> list[str]:
    """The caption's tokens as words: split at spaces, the comma a word of its own."""
    return caption.replace(",", " , ").split()


def parse_caption(caption: str) -> ParsedCaption:
    """Read a caption back into its digit and property words (the inverse of make_caption)."""
    ws = words(caption)
    check_words(ws, caption)
    if not ws:
        return ParsedCaption(None)
    digits = [w for w in ws if w in DIGIT_WORDS]
    if len(digits) != 1:
        raise ValueError(f"caption {caption!r} must name exactly one digit "
                         f"({', '.join(DIGIT_WORDS)}); found {digits}")
    slant = "tilted left" if "left" in ws else "tilted right" if "right" in ws else ""
    return ParsedCaption(DIGIT_WORDS.index(digits[0]),
                         next((w for w in ws if w in THICKNESS_WORDS[::2]), ""),
                         next((w for w in ws if w in SIZE_WORDS[::2]), ""), slant)


def check_words(ws: Sequence[str], caption: str) -> None:
    """Raise a ValueError naming the first word that is not in :data:`VOCAB`."""
    for w in ws:
        if w not in WORD_ID or w in (PAD, NULL):
            raise ValueError(f"unknown word {w!r} in caption {caption!r}; the vocabulary is "
                             f"{[v for v in VOCAB if v not in (PAD, NULL)]}")


def tokenize(captions: Sequence[str], length: int = MAX_TOKENS) -> torch.Tensor:
    """Captions as ids ``(N, length)``, padded with ``PAD_ID``; ``""`` is ``[NULL_ID, PAD...]``."""
    if isinstance(captions, str):
        raise ValueError(f"tokenize takes a list of captions, got the string {captions!r}")
    out = torch.full((len(captions), length), PAD_ID, dtype=torch.long)
    for i, caption in enumerate(captions):
        ws = words(caption)
        check_words(ws, caption)
        ids = [WORD_ID[w] for w in ws] or [NULL_ID]
        if len(ids) > length:
            raise ValueError(f"caption {caption!r} has {len(ids)} tokens; at most {length}")
        out[i, : len(ids)] = torch.tensor(ids)
    return out


def padding_mask(tokens: torch.Tensor) -> torch.Tensor:
    """``True`` where a token is padding (to be ignored by attention), shape of ``tokens``."""
    return tokens == PAD_ID


def null_tokens(n: int = 1, length: int = MAX_TOKENS) -> torch.Tensor:
    """The empty caption's ids, ``(n, length)``: the null condition for classifier-free guidance."""
    return tokenize([""] * n, length)
