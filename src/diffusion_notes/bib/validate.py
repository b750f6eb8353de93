"""``papers check``: validate ``papers.bib`` and every ``[@key]`` citation of the notes and labs.

The file must parse with bibtexparser (:func:`~diffusion_notes.bib.store.load_library`: every
malformed entry, duplicate key... with its line) and with pybtex in strict mode
(:func:`~diffusion_notes.bib.rules.strict_parse`), and pass the entry rules of
:mod:`~diffusion_notes.bib.rules` (authors, dates, links, preprints; the metadata folder, when
given, adds the checks against ``authors.json``). Citations are found with
:func:`diffusion_notes.bib.citations.scan_source`, the scanner the site build uses, so that the
check and the build agree on the syntax (``[@key]``, ``[@a; @b]``; fenced and inline code
skipped; in a jupytext lab only its markdown cells).
"""

from __future__ import annotations

import datetime
from pathlib import Path

from diffusion_notes.bib.citations import scan_source, unknown_keys_message
from diffusion_notes.bib.metadata import Metadata
from diffusion_notes.bib.rules import RULES, strict_parse
from diffusion_notes.bib.store import BibError, Library, load_library
from diffusion_notes.site.sources import walk_docs


def check_citations(library: Library, docs: Path) -> list[str]:
    """One line per unknown key: ``<file>:<line>: unknown citation key '<k>' (did you mean ...)``."""
    problems: list[str] = []
    for source in walk_docs(docs):  # the site build's own walk: same notes, same labs
        citations = scan_source(source.text, is_lab=source.is_lab)
        message = unknown_keys_message(str(source.path), citations, library)
        if message:
            problems.extend(message.splitlines())
    return problems


def check_bib(
    bib: Path, meta: Metadata | None = None, today: datetime.date | None = None
) -> tuple[Library | None, list[str]]:
    """Both parsers and every entry rule on ``bib``; returns (library or None, problems)."""
    try:
        lib = load_library(bib)
    except BibError as exc:
        problems = list(exc.problems)
        text = bib.read_text(encoding="utf-8", errors="replace") if bib.is_file() else None
        return None, problems + (strict_parse(text, str(bib)) if text is not None else [])
    problems = strict_parse(bib.read_text(encoding="utf-8"), str(bib))
    for name, rule in RULES.items():
        problems += rule(lib, meta, today) if name == "dates" else rule(lib, meta)
    return lib, problems


def check_all(
    bib: Path, docs: Path, meta: Metadata | None = None
) -> tuple[Library | None, list[str]]:
    """:func:`check_bib`, then the citations under ``docs``; returns (library or None, problems)."""
    lib, problems = check_bib(bib, meta)
    if lib is not None and docs.is_dir():
        problems += check_citations(lib, docs)
    return lib, problems
