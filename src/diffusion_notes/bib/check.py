"""``papers check``: validate ``papers.bib`` and every ``[@key]`` citation of the notes and labs.

Citations are found with :func:`diffusion_notes.bib.citations.scan_source`, the scanner the
site build uses, so that the check and the build agree on the syntax (``[@key]``,
``[@a; @b]``; fenced and inline code skipped; in a jupytext lab only its markdown cells).
"""

from __future__ import annotations

from pathlib import Path

from diffusion_notes.bib.citations import scan_source, unknown_keys_message
from diffusion_notes.bib.store import BibError, Library, load_library


def check_citations(library: Library, docs: Path) -> list[str]:
    """One line per unknown key: ``<file>:<line>: unknown citation key '<k>' (did you mean ...)``."""
    problems: list[str] = []
    for f in sorted(list(docs.rglob("*.md")) + list(docs.rglob("*.py"))):
        text = f.read_text(encoding="utf-8", errors="replace")
        citations = scan_source(text, is_lab=f.suffix == ".py")
        message = unknown_keys_message(str(f), citations, library)
        if message:
            problems.extend(message.splitlines())
    return problems


def check_all(bib: Path, docs: Path) -> tuple[Library | None, list[str]]:
    """Load ``bib`` (every malformed entry, duplicate key... reported with its line) and check
    the citations under ``docs``; returns (library or None, problems)."""
    try:
        lib = load_library(bib)
    except BibError as exc:
        return None, list(exc.problems)
    problems = check_citations(lib, docs) if docs.is_dir() else []
    return lib, problems
