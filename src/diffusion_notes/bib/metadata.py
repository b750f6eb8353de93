"""The paper metadata the importer reads: ``authors.json`` and ``list_id_issues.json``.

Both files are optional inside the folder, but a folder that was asked for and is missing, or
a file that is not UTF-8 JSON, is an error (:class:`~diffusion_notes.bib.store.BibError`, one
line naming the file and the fix): an import without its metadata would silently drop authors.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from diffusion_notes.bib.store import BibError, bib_problem


@dataclass(frozen=True)
class Metadata:
    """``authors.json`` (by arXiv id) and ``list_id_issues.json``; empty when not given."""

    authors: dict[str, dict] = field(default_factory=dict)
    issues: list[dict] = field(default_factory=list)
    directory: Path | None = None

    @classmethod
    def load(cls, directory: str | Path | None) -> Metadata:
        if directory is None:
            return cls()
        d = Path(directory)
        if not d.is_dir():
            raise BibError(
                bib_problem(d, None, "metadata folder not found", None,
                            "pass --metadata DIR holding authors.json (or omit it)")
            )  # fmt: skip
        authors = _read_json(d / "authors.json", {})
        issues = _read_json(d / "list_id_issues.json", [])
        if not isinstance(authors, dict) or not isinstance(issues, list):
            raise BibError(
                bib_problem(d, None, "authors.json must hold an object, list_id_issues.json a "
                            "list", None, "restore the files from the shared data folder")
            )  # fmt: skip
        return cls(authors=authors, issues=issues, directory=d)

    def primary_class(self, arxiv_id: str) -> str | None:
        """The arXiv category (``cs.CV``) of a paper, when its record's BibTeX names one."""
        m = re.search(r"primaryclass\s*=\s*[{\"]\s*([\w.-]+)", self.authors.get(arxiv_id, {})
                      .get("bibtex", ""), re.I)  # fmt: skip
        return m.group(1) if m else None


def _read_json(path: Path, default):
    if not path.exists():
        return default
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, IsADirectoryError) as exc:
        raise BibError(
            bib_problem(path, None, f"unreadable metadata ({type(exc).__name__}: {exc})"[:160],
                        None, "restore the file from the shared data folder")
        ) from None  # fmt: skip
