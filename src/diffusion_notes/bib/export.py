"""One entry in the formats a reader cites from: BibTeX, BibLaTeX and CSL-JSON.

* ``bibtex``: the entry as in ``papers.bib`` without the project's own fields (sections,
  links, flags, ...), so that Zotero, JabRef or biber import nothing foreign.
* ``biblatex``: ``year``/``month`` become ``date``, ``journal`` becomes ``journaltitle``, an
  arXiv preprint is a ``@misc`` with ``eprinttype = {arxiv}`` and ``eprintclass`` (biblatex prints
  the id from these), ``archivePrefix``/``primaryClass`` are renamed accordingly.
* ``csl-json``: what pandoc and Zotero read: ``type`` (``article`` for a preprint, as Zotero
  exports arXiv preprints, ``paper-conference``, ``article-journal``), names split into
  ``family``/``given`` (a braced team name stays a ``literal``), ``issued``, ``DOI``, ``URL``,
  ``number = arXiv:ID`` and ``publisher = arXiv`` for a preprint.
"""

from __future__ import annotations

import json
from typing import Literal

from diffusion_notes.bib.latex import to_text
from diffusion_notes.bib.store import (
    INTERNAL_FIELDS,
    Paper,
    _split_top_level,
    format_bibtex,
    name_last,
    split_names,
)

Format = Literal["bibtex", "biblatex", "csl-json"]
FORMATS: tuple[Format, ...] = ("bibtex", "biblatex", "csl-json")
_MONTHS = "jan feb mar apr may jun jul aug sep oct nov dec".split()


def _month(p: Paper) -> int | None:
    m = p.fields.get("month", "").strip().lower()[:3]
    return _MONTHS.index(m) + 1 if m in _MONTHS else None


def is_preprint(p: Paper) -> bool:
    """An arXiv paper without a venue (or whose venue is "arXiv preprint ...")."""
    venue = p.fields.get("booktitle") or p.fields.get("journal") or ""
    return bool(p.eprint) and (not venue or venue.startswith("arXiv"))


def to_biblatex(p: Paper) -> str:
    """The entry in BibLaTeX's data model (see module docstring)."""
    fields = {k: v for k, v in p.fields.items() if k not in INTERNAL_FIELDS}
    entry_type = p.entry_type
    if is_preprint(p):
        entry_type = "misc" if entry_type in ("article", "misc", "unpublished") else entry_type
        fields.pop("howpublished", None)
        if fields.get("journal", "").startswith("arXiv"):
            fields.pop("journal")
    if "journal" in fields:
        fields["journaltitle"] = fields.pop("journal")
    if "year" in fields:
        month = _month(p)
        fields["date"] = fields.pop("year") + (f"-{month:02d}" if month else "")
        fields.pop("month", None)
    if "archiveprefix" in fields:
        fields["eprinttype"] = fields.pop("archiveprefix").lower()
    if "primaryclass" in fields:
        fields["eprintclass"] = fields.pop("primaryclass")
    return format_bibtex(Paper(p.key, entry_type, fields))


def csl_name(name: str) -> dict[str, str]:
    """One BibTeX name as a CSL name (``{"family", "given"}``, or ``{"literal"}`` for a team)."""
    if name.startswith("{") and name.endswith("}"):
        return {"literal": to_text(name)}
    parts = _split_top_level(name, ",")
    if len(parts) >= 2:
        return {"family": to_text(parts[0]), "given": to_text(parts[-1])}
    family = name_last(name)
    given = to_text(name)[: -len(family)].strip() if family else ""
    return {"family": family, "given": given} if given else {"family": family}


def to_csl(p: Paper) -> dict:
    """The entry as one CSL-JSON item (see module docstring)."""
    item: dict = {"id": p.key, "title": p.title}
    names = [n for n in split_names(p.fields.get("author", "")) if n.lower() != "others"]
    if names:
        item["author"] = [csl_name(n) for n in names]
    if is_preprint(p):
        item.update(type="article", publisher="arXiv", number=f"arXiv:{p.eprint}")
    elif p.entry_type == "inproceedings":
        item["type"] = "paper-conference"
    elif p.entry_type == "article":
        item["type"] = "article-journal"
    else:
        item["type"] = "document"
    if p.venue and not is_preprint(p):
        item["container-title"] = p.venue
    if p.year and p.year.isdigit():
        month = _month(p)
        item["issued"] = {"date-parts": [[int(p.year), month] if month else [int(p.year)]]}
    for src, dst in (("doi", "DOI"), ("url", "URL"), ("volume", "volume"), ("pages", "page")):
        if p.fields.get(src):
            item[dst] = to_text(p.fields[src]) if src in ("volume", "pages") else p.fields[src]
    return item


def render(papers: list[Paper], fmt: Format) -> str:
    """The papers in one format (CSL-JSON: one JSON array)."""
    if fmt == "bibtex":
        return "\n".join(format_bibtex(p) for p in papers)
    if fmt == "biblatex":
        return "\n".join(to_biblatex(p) for p in papers)
    if fmt == "csl-json":
        return json.dumps([to_csl(p) for p in papers], ensure_ascii=False, indent=2) + "\n"
    raise ValueError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
