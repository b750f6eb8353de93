"""Does the text-to-image miniature follow its captions? Measurements shared by lab and bench.

* :func:`caption_accuracy`: generate one digit per caption and count how often the held-out
  digit classifier (:func:`diffusion_notes.metrics.get_digit_classifier`) reads the caption's
  digit.
* :func:`word_effect`: for one property (thickness, size or slant), generate same-seed pairs
  whose captions differ only in that word ("a thin three" / "a thick three") for every digit,
  measure the property of both with :mod:`diffusion_notes.data.strokes`, and report the mean
  per word and the share of pairs in which the word moved the property its way.
* :func:`digit_swap`: same-seed pairs that differ only in the digit word.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from diffusion_notes.data.captions import SIZE_WORDS, SLANT_WORDS, THICKNESS_WORDS, make_caption
from diffusion_notes.data.strokes import measure
from diffusion_notes.metrics import class_accuracy
from diffusion_notes.models.classifier import DigitClassifier
from diffusion_notes.schedules import Schedule
from diffusion_notes.text2image import generate

PROPERTIES = {"thickness": THICKNESS_WORDS, "size": SIZE_WORDS, "slant": SLANT_WORDS}


def caption_accuracy(model: torch.nn.Module, schedule: Schedule, vae: torch.nn.Module,
                     captions: list[str], digits: torch.Tensor, classifier: DigitClassifier, *,
                     scale: float, n_steps: int = 20, seed: int = 0) -> tuple[float, torch.Tensor]:
    """Share of samples of ``captions`` that the classifier reads as ``digits``; and the samples."""
    images = generate(model, schedule, captions, vae=vae, scale=scale, n_steps=n_steps, seed=seed)
    return class_accuracy(images, digits, classifier), images


@dataclass(frozen=True)
class WordEffect:
    """Same-seed pairs differing in one property word, over all digits and seeds.

    ``means`` maps each word (``""``: no word, the middle third) to the mean measured
    property of its samples; ``agreement`` is the share of pairs where the high word's
    sample measures more than the low word's; ``boundaries`` the training terciles."""

    prop: str
    low: str
    high: str
    means: dict[str, float]
    agreement: float
    n_pairs: int
    boundaries: tuple[float, float]


def _captions(prop: str, word: str, digits: list[int]) -> list[str]:
    return [make_caption(d, **{prop: word}) for d in digits]


def word_effect(model: torch.nn.Module, schedule: Schedule, vae: torch.nn.Module, prop: str, *,
                boundaries: tuple[float, float], n_seeds: int, scale: float, n_steps: int = 20,
                seed: int = 0) -> tuple[WordEffect, dict[str, torch.Tensor]]:
    """The effect of ``prop``'s low word against its high word (and against no word): every
    digit 0-9, ``n_seeds`` starting noises each, the same noises for every word."""
    if prop not in PROPERTIES:
        raise ValueError(f"unknown property {prop!r}; choose one of {list(PROPERTIES)}")
    low, mid, high = PROPERTIES[prop]
    digits = [d for d in range(10) for _ in range(n_seeds)]
    images, values = {}, {}
    for word in (low, mid, high):
        x = generate(model, schedule, _captions(prop, word, digits), vae=vae, scale=scale,
                     n_steps=n_steps, seed=seed)
        images[word] = x
        values[word] = getattr(measure(x), prop)
    agree = float((values[high] > values[low]).double().mean())
    means = {w: float(v.mean()) for w, v in values.items()}
    return WordEffect(prop, low, high, means, agree, len(digits), boundaries), images


@dataclass(frozen=True)
class DigitSwap:
    """Same-seed pairs "a <d>" -> "a <d'>": how often the classifier follows the new word."""

    accuracy_before: float
    accuracy_after: float
    n_pairs: int


def digit_swap(model: torch.nn.Module, schedule: Schedule, vae: torch.nn.Module,
               classifier: DigitClassifier, *, n_seeds: int, scale: float, n_steps: int = 20,
               seed: int = 0) -> tuple[DigitSwap, torch.Tensor, torch.Tensor]:
    """Digit d, then d + 5 (mod 10), with the same starting noise, for every d and seed."""
    before = torch.tensor([d for d in range(10) for _ in range(n_seeds)])
    after = (before + 5) % 10
    xb = generate(model, schedule, [make_caption(int(d)) for d in before], vae=vae, scale=scale,
                  n_steps=n_steps, seed=seed)
    xa = generate(model, schedule, [make_caption(int(d)) for d in after], vae=vae, scale=scale,
                  n_steps=n_steps, seed=seed)
    return (DigitSwap(class_accuracy(xb, before, classifier), class_accuracy(xa, after, classifier),
                      len(before)), xb, xa)
