"""Phase 2 of an import: the authors of each paper, from ``authors.json``.

A record is used only when its title clearly matches the entry's
(:func:`~diffusion_notes.bib.keys.clear_title_match`; a matching source repository is evidence
for an arXiv id, not for authors). Names are repaired where the source mangled them, and every
repair is a flag: invisible characters (U+FE0F, zero-width spaces) removed and a name fused
around them split; a stray ``and`` inside a name removed; lower-case names capitalised
(``weijia Mao``); team names braced (``{Aether Team}``) so that BibTeX does not read "Team" as
a surname. Tiers: ``first_author_only`` -> "First and others"; ``truncated`` -> "... and
others"; ``heuristic``, ``web_page`` and doubtful flags -> a flag (shown by ``cite``).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from diffusion_notes.bib.ids import Record
from diffusion_notes.bib.keys import clear_title_match
from diffusion_notes.bib.metadata import Metadata
from diffusion_notes.bib.store import is_corporate

# Lower-case words that belong inside a name (von/van particles), never capitalised.
PARTICLES = frozenset("von van der den de da di du del della dos das la le ter zu y".split())


def is_invisible(c: str) -> bool:
    """Format characters and variation selectors (U+200B, U+FE0F, ...): never part of a name."""
    return unicodedata.category(c) == "Cf" or 0xFE00 <= ord(c) <= 0xFE0F


@dataclass(frozen=True)
class AuthorDecision:
    """The authors of one record, and what the importer noted while choosing them."""

    names: tuple[str, ...]  # plain "First Last"; "others" last when known incomplete
    tier: str | None  # authors.json tier used; None when no record was used
    flags: tuple[str, ...]  # written into the entry's flags
    note: str | None  # a line for the report (doubtful, partial or refused record)


def clean_names(raw: list[str]) -> tuple[list[str], bool, list[str]]:
    """(names, truncated, repairs) for a source's author list (see module docstring)."""
    out: list[str] = []
    truncated = False
    repairs: list[str] = []
    for n in raw:
        text = unicodedata.normalize("NFC", str(n))
        parts = [text]
        if any(is_invisible(c) for c in text):
            visible = "".join(" " if is_invisible(c) else c for c in text)
            parts = [p for p in re.split(r"\s+and\s+|\s*\band\s*$", visible) if p.strip()]
            codes = ", ".join(sorted({f"U+{ord(c):04X}" for c in text if is_invisible(c)}))
            shown = " ".join(visible.split())
            repairs.append(f"author '{shown}' held invisible {codes}; read as {parts}")
        for p in parts:
            p = re.sub(r"\s+", " ", p).strip()
            if not p:
                continue
            if p.lower() in ("others", "et al.", "et al"):
                truncated = True
                continue
            nick = re.sub(r"\s*(?:“[^”]*”|\"[^\"]*\"|\([^)]*\))\s*", " ", p).strip()
            if nick != p:  # Zhangyang “Atlas” Wang: BibTeX would abbreviate the quote
                repairs.append(f"author name {p!r} read without its nickname as {nick!r}")
                p = nick
            if re.search(r"\band\b", p):
                fixed = re.sub(r"\s*\band\b\s*", " ", p).strip()
                repairs.append(f"author name {p!r} read as {fixed!r}")
                p = fixed
            if not is_corporate(p):
                words = p.split(" ")
                cap = [
                    w if (not w[:1].islower() or (w in PARTICLES and 0 < i < len(words) - 1))
                    else w[:1].upper() + w[1:]
                    for i, w in enumerate(words)
                ]  # fmt: skip
                if cap != words:
                    repairs.append(f"author name {p!r} capitalised")
                    p = " ".join(cap)
            out.append(p)
    return out, truncated, repairs


def decide_authors(rec: Record, meta: Metadata) -> AuthorDecision:
    """The authors of ``rec`` (empty when there is no clearly matching record)."""
    aid = rec.arxiv_id
    data = meta.authors.get(aid) if aid else None
    if not data:
        return AuthorDecision((), None, (), None)
    titles = [it.title for it in rec.items]
    if not any(clear_title_match(str(data.get("title") or ""), t) for t in titles):
        flag = f"authors.json record for {aid} names another title; authors left out"
        note = (
            f"{aid} '{rec.title[:50]}': authors.json record is for "
            f"'{str(data.get('title'))[:50]}'; authors left out"
        )
        return AuthorDecision((), None, (flag,), note)
    names, truncated, flags = clean_names(list(data.get("authors", [])))
    if not names:
        return AuthorDecision((), None, tuple(flags), None)
    tier = str(data.get("tier", "unknown"))
    if tier == "first_author_only" or data.get("first_author_only"):
        names, truncated = names[:1], True
        flags.append("only the first author is known")
    elif tier == "heuristic":
        flags.append(f"authors read heuristically from {data.get('source', '?')}: unverified")
    elif tier == "web_page":
        flags.append(f"authors from a web page ({str(data.get('source', '?'))[:80]})")
    if data.get("truncated"):
        truncated = True
        flags.append("the source's author list ends with 'and others'")
    doubts = [
        k
        for k in ("title_mismatch", "id_shared_by_different_entries", "alt_id_only",
                  "bib_eprint_differs")
        if data.get(k)
    ]  # fmt: skip
    if doubts:
        flags.append(f"author match flagged {', '.join(doubts)}; accepted: the titles match")
    note = None
    if flags and (tier != "bibtex_or_list" or doubts):
        note = f"{aid} '{rec.title[:50]}': {'; '.join(flags)}"
    return AuthorDecision(
        tuple(names + (["others"] if truncated else [])), tier, tuple(flags), note
    )
