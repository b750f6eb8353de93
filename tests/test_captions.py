"""Captions of the digits: vocabulary, tokenizer, errors, and agreement with measured strokes."""

from __future__ import annotations

import pytest
import torch

from diffusion_notes.data.captions import (
    DIGIT_WORDS,
    MAX_TOKENS,
    NULL_ID,
    PAD_ID,
    VOCAB,
    caption_digits,
    fit_terciles,
    make_caption,
    null_tokens,
    padding_mask,
    parse_caption,
    tokenize,
    training_terciles,
)
from diffusion_notes.data.digits import digits_split
from diffusion_notes.data.strokes import measure


def test_caption_grammar_and_round_trip() -> None:
    assert make_caption(3) == "a three"
    assert make_caption(3, thickness="thin", size="large", slant="tilted right") == \
        "a thin large three, tilted right"
    for digit in range(10):
        for th in ("thin", "", "thick"):
            for sl in ("tilted left", "", "tilted right"):
                c = make_caption(digit, thickness=th, size="small", slant=sl)
                p = parse_caption(c)
                assert (p.digit, p.thickness, p.size, p.slant) == (digit, th, "small", sl)
    assert parse_caption("").digit is None


def test_tokenizer_pads_and_the_empty_caption_is_null() -> None:
    tok = tokenize(["a thin small seven, tilted left", "a seven", ""])
    assert tok.shape == (3, MAX_TOKENS) and tok.dtype == torch.long
    assert [VOCAB[i] for i in tok[0] if i != PAD_ID] == \
        ["a", "thin", "small", "seven", ",", "tilted", "left"]
    assert padding_mask(tok).sum(1).tolist() == [1, 6, 7]
    assert tok[2, 0] == NULL_ID and torch.equal(tok[2], null_tokens(1)[0])
    assert tokenize(["a seven"], length=4).tolist() == [[VOCAB.index("a"), VOCAB.index("seven"),
                                                        PAD_ID, PAD_ID]]


def test_bad_captions_raise_naming_the_word_and_vocabulary() -> None:
    with pytest.raises(ValueError, match=r"unknown word 'bold'.*'thick'"):
        tokenize(["a bold seven"])
    with pytest.raises(ValueError, match=r"unknown word '<pad>'"):
        tokenize(["<pad> seven"])
    with pytest.raises(ValueError, match="at most 3"):
        tokenize(["a thick seven, tilted left"], length=3)
    with pytest.raises(ValueError, match="list of captions"):
        tokenize("a seven")
    with pytest.raises(ValueError, match=r"unknown slant word 'tilted'"):
        make_caption(1, slant="tilted")
    with pytest.raises(ValueError, match="exactly one digit"):
        parse_caption("a seven three")


def test_caption_words_agree_with_measured_properties() -> None:
    """Every caption of the training split names its label and the terciles its measured
    properties fall in; each word covers (about) a third of the images."""
    train = digits_split()[0]
    terc = training_terciles()
    caps = caption_digits(train.images, train.labels, terc)
    p = measure(train.images)
    counts = {w: 0 for w in ("thin", "thick", "small", "large", "tilted left", "tilted right")}
    for i, c in enumerate(caps):
        parsed = parse_caption(c)
        assert parsed.digit == int(train.labels[i]) and DIGIT_WORDS[parsed.digit] in c
        for word, value, (lo, hi), low, high in (
                (parsed.thickness, p.thickness[i], terc.thickness, "thin", "thick"),
                (parsed.size, p.size[i], terc.size, "small", "large"),
                (parsed.slant, p.slant[i], terc.slant, "tilted left", "tilted right")):
            expected = low if value < lo else high if value > hi else ""
            assert word == expected, (c, float(value), lo, hi)
            if word:
                counts[word] += 1
    n = len(caps)
    # terciles: a third each, up to ties of the 8x8 images' discrete values (at most 3 %)
    for word, k in counts.items():
        assert abs(k / n - 1 / 3) < 0.03, (word, k / n)
    assert len({len(c.split()) for c in caps}) >= 4  # captions vary in length


def test_terciles_are_ordered_and_fit_on_the_given_images() -> None:
    images = digits_split()[0].images
    terc = fit_terciles(images)
    assert terc.thickness[0] < terc.thickness[1] and terc.size[0] < terc.size[1]
    assert terc.slant[0] < 0 < terc.slant[1]  # the slant is centred near 0 (mean -0.04)
    thick = measure(images).thickness
    assert abs(float((thick < terc.thickness[0]).double().mean()) - 1 / 3) < 0.01
