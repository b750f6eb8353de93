"""One walk over ``docs/``: every note and lab, with its title and (for a lab) its cells.

The site build (citations, back-links, lab execution, the checks page) and ``papers check``
ask the same questions of the same files, so they ask them here: what is a note (``*.md``),
what is a lab (a ``*.py`` with jupytext percent cells ``# %%``; any other ``.py`` is neither),
what is a page's title (its first level-1 heading, else its file name), and which lines of a lab
are markdown. Cells are parsed from the percent format directly (no jupytext round trip), with
the line number of the ``# %%`` marker, so a message can point into the ``.py`` file.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

_CELL_MARK = re.compile(r"^# %%", re.MULTILINE)
_FENCE = re.compile(r"^\s*(```|~~~)")

Kind = Literal["note", "lab"]


@dataclass(frozen=True)
class Cell:
    kind: Literal["markdown", "code"]
    source: str  # markdown without its "# " comment prefix; code as written
    line: int  # 1-based line of the "# %%" marker in the .py file


@dataclass(frozen=True)
class DocSource:
    path: Path  # absolute path of the source file
    rel: str  # path relative to docs/, POSIX style: "ddpm/forward-process-lab.py"
    kind: Kind
    title: str
    text: str
    cells: tuple[Cell, ...] = ()  # a lab's cells in order; empty for a note

    @property
    def is_lab(self) -> bool:
        return self.kind == "lab"

    @property
    def page_uri(self) -> str:
        """The source path a page is built from: a lab's page is its executed ``.ipynb``."""
        return self.rel[:-3] + ".ipynb" if self.is_lab else self.rel

    @property
    def url_uri(self) -> str:
        """A ``.md`` path whose mkdocs URL is the page's URL (``ddpm/x-lab.py`` -> ``ddpm/x-lab.md``)."""
        return self.rel[:-3] + ".md" if self.is_lab else self.rel


def is_lab_text(text: str) -> bool:
    """A ``.py`` text is a lab when it has at least one jupytext percent cell marker."""
    return bool(_CELL_MARK.search(text))


def lab_cells(text: str) -> tuple[Cell, ...]:
    """The cells of a jupytext percent-format text (the header before the first marker is skipped)."""
    cells: list[Cell] = []
    kind: Literal["markdown", "code"] | None = None
    start = 0
    body: list[str] = []

    def close() -> None:
        if kind is None:
            return
        while body and not body[-1].strip():
            body.pop()
        if kind == "markdown":
            lines = [ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in body]
        else:
            lines = body
        cells.append(Cell(kind, "\n".join(lines), start))

    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("# %%"):
            close()
            kind = "markdown" if ("[markdown]" in line or "[md]" in line) else "code"
            start, body = number, []
        elif kind is not None:
            body.append(line)
    close()
    return tuple(cells)


def _first_heading(lines: Iterator[str] | list[str]) -> str | None:
    fenced = False
    for line in lines:
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and line.startswith("# "):
            return line[2:].strip()
    return None


def page_title(rel: str, text: str, cells: tuple[Cell, ...] = ()) -> str:
    """First ``# Heading`` of a note, or of a lab's markdown cells; else the file name."""
    if cells:
        lines = [ln for c in cells if c.kind == "markdown" for ln in c.source.splitlines()]
    else:
        lines = text.splitlines()
    title = _first_heading(lines)
    if title:
        return title
    stem = posixpath.splitext(posixpath.basename(rel))[0]
    return stem.replace("-", " ").capitalize()


def read_source(path: Path, docs_dir: Path) -> DocSource | None:
    """The note or lab at ``path``, or None when it is neither (an image, a plain script)."""
    if path.suffix not in (".md", ".py") or not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    rel = path.relative_to(docs_dir).as_posix()
    if path.suffix == ".md":
        return DocSource(path, rel, "note", page_title(rel, text), text)
    if not is_lab_text(text):
        return None
    cells = lab_cells(text)
    return DocSource(path, rel, "lab", page_title(rel, text, cells), text, cells)


def walk_docs(docs_dir: Path, kinds: tuple[Kind, ...] = ("note", "lab")) -> Iterator[DocSource]:
    """Every note and lab under ``docs_dir`` (sorted by path), limited to ``kinds``."""
    docs_dir = docs_dir.resolve()
    for path in sorted(docs_dir.rglob("*")):
        source = read_source(path, docs_dir)
        if source is not None and source.kind in kinds:
            yield source
