"""Citation keys and paper identity.

Keys are readable and minted once: ``<first author's last name><year><first title word>``
(``ho2020denoising``), or ``<first title word><year><second title word>`` when no author is
known (``helios2026real``). A collision gets a letter (``...b``, ``...c``). The importer never
re-mints a key for a paper it already knows: it finds the paper by identity (arXiv id, else its
link, else its normalised title) and reuses the key. Keys are compared case-insensitively, as
BibTeX does.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable

from diffusion_notes.bib.store import name_last

STOPWORDS = frozenset(
    "a an the on of for to in into with without via from by and or is are be your you our we "
    "towards toward at as its it this that can do does how what when why beyond through "
    "using under over than".split()
)


def ascii_fold(text: str) -> str:
    """``Señorita`` -> ``Senorita``; letters without an ASCII base are dropped."""
    t = (
        text.replace("ß", "ss")
        .replace("ø", "o")
        .replace("Ø", "O")
        .replace("ł", "l")
        .replace("Ł", "L")
    )
    t = (
        t.replace("æ", "ae")
        .replace("Æ", "AE")
        .replace("œ", "oe")
        .replace("²", "2")
        .replace("³", "3")
    )
    return unicodedata.normalize("NFKD", t).encode("ascii", "ignore").decode("ascii")


def norm_title(title: str) -> str:
    """Lower-case ASCII words of a title, single-spaced (for identity and comparison)."""
    return re.sub(r"[^a-z0-9]+", " ", ascii_fold(title).lower()).strip()


def title_words(title: str) -> list[str]:
    """Significant words of a title for keys: hyphenated words joined, stopwords dropped."""
    words = []
    for raw in ascii_fold(title).split():
        w = re.sub(r"[^A-Za-z0-9]", "", raw).lower()
        if w and w not in STOPWORDS:
            words.append(w)
    return words


def same_title(a: str, b: str) -> bool:
    """Whether two titles name the same paper (renamed versions and short forms included).

    True for ``"Allegro"`` vs ``"Allegro: Open the Black Box ..."`` (one is the other's name
    part), for re-cased or re-punctuated titles, and for titles sharing most words
    (difflib ratio >= 0.6 or word overlap >= 0.6 of the shorter one). Measured on the list
    and ``authors.json``: renamed papers score >= 0.7, different papers sharing an id <= 0.4.
    """
    na, nb = norm_title(a), norm_title(b)
    if not na or not nb:
        return False
    if na == nb:
        return True
    name_a = norm_title(a.split(":")[0]) if ":" in a else na
    name_b = norm_title(b.split(":")[0]) if ":" in b else nb
    if (":" in a or ":" in b) and name_a == name_b and len(name_a) >= 3:
        return True
    if difflib.SequenceMatcher(None, na, nb).ratio() >= 0.6:
        return True
    wa = set(na.split()) - STOPWORDS
    wb = set(nb.split()) - STOPWORDS
    if wa and wb and len(wa & wb) / min(len(wa), len(wb)) >= 0.6 and min(len(wa), len(wb)) >= 2:
        return True
    return False


def norm_url(url: str | None) -> str | None:
    """A link reduced for identity: scheme, ``www.``, query, fragment and trailing ``/`` dropped."""
    if not url:
        return None
    u = url.strip().lower()
    u = re.sub(r"^[a-z]+://", "", u)
    u = re.sub(r"^www\.", "", u)
    u = re.split(r"[?#]", u)[0]
    return u.rstrip("/") or None


def _suffixes() -> Iterable[str]:
    letters = "bcdefghijklmnopqrstuvwxyz"
    yield from letters
    for a in "abcdefghijklmnopqrstuvwxyz":
        for b in "abcdefghijklmnopqrstuvwxyz":
            yield a + b


def base_key(first_author: str | None, year: str | int | None, title: str) -> str:
    """The key before collision handling (see module docstring)."""
    words = title_words(title) or ["paper"]
    y = str(year) if year else ""
    if first_author:
        last = re.sub(r"[^a-z]", "", ascii_fold(name_last(first_author)).lower())
        if last:
            return f"{last}{y}{words[0]}"
    second = words[1] if len(words) > 1 else ""
    return f"{words[0]}{y}{second}"


def mint_key(first_author: str | None, year: str | int | None, title: str, taken: set[str]) -> str:
    """A new key not in ``taken`` (compared lower-case); the caller adds it to ``taken``."""
    base = base_key(first_author, year, title)[:48]
    if base.lower() not in taken:
        return base
    for suffix in _suffixes():
        key = base + suffix
        if key.lower() not in taken:
            return key
    raise ValueError(f"no free key for {base!r}")  # 700 collisions on one base: cannot happen
