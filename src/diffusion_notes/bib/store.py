"""The bibliography as the project reads it: ``papers.bib`` loaded and checked.

``load_library`` parses a ``.bib`` file with bibtexparser v2 and refuses anything doubtful with a
:class:`BibError` naming the file and line: blocks that failed to parse (bibtexparser v2 does not
raise, it collects them in ``library.failed_blocks``), duplicate keys (also when they differ only
in case, since BibTeX compares keys case-insensitively), a missing comma between two fields
(bibtexparser reads that as one bare value), entries without a title, keys that a ``[@key]``
citation cannot spell.

Fields the project adds to the usual BibTeX ones (all lower case):

``sections``  list sections, ``"; "``-separated;   ``code``, ``website``  links from the list;
``listed``    ``yes`` (in the current list) / ``no`` (was listed, dropped from a newer list);
``origin``    ``curated`` (from ``curated.bib``) or ``list`` (imported);
``listids``   every arXiv id the list gave this paper (also the ones judged wrong);
``flags``     ``"; "``-separated doubts (id corrections, partial or unverified authors);
``importsig`` hashes of the values the importer wrote (see ``importer``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import bibtexparser
from bibtexparser import model

from diffusion_notes.bib.latex import protect_case, to_latex, to_text

# A key must be spellable inside ``[@key]``: letters, digits and ``_ - . : +``.
KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-.:+]*$")

# Fields that belong to the project, not to a citation: left out of the BibTeX a reader copies.
INTERNAL_FIELDS = (
    "sections", "code", "website", "listed", "listids", "flags", "origin", "importsig",
)  # fmt: skip

# Field order when writing an entry; others follow alphabetically.
FIELD_ORDER = (
    "title",
    "author",
    "booktitle",
    "journal",
    "volume",
    "number",
    "pages",
    "publisher",
    "organization",
    "howpublished",
    "year",
    "month",
    "eprint",
    "archiveprefix",
    "primaryclass",
    "doi",
    "url",
    "note",
    "code",
    "website",
    "sections",
    "listed",
    "listids",
    "flags",
    "origin",
    "importsig",
)

_MONTH_MACROS = frozenset("jan feb mar apr may jun jul aug sep oct nov dec".split())

# Canonical spelling of field names that BibTeX styles print in camel case.
_FIELD_SPELLING = {"archiveprefix": "archivePrefix", "primaryclass": "primaryClass"}


class BibError(ValueError):
    """A problem in a ``.bib`` file. ``str()`` is ``<file>:<line>: <what> (key '<k>'): <fix>``.

    When several problems are found at once, the message holds one such line per problem and
    ``problems`` lists them.
    """

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


def bib_problem(path: Path | str, line: int | None, what: str, key: str | None, fix: str) -> str:
    """Format one problem line the way :class:`BibError` reports it."""
    where = f"{path}:{line}" if line else f"{path}"
    about = f" (key '{key}')" if key else ""
    return f"{where}: {what}{about}: {fix}"


# Words that make an author a team or an organisation, written braced (``{Aether Team}``).
CORPORATE_RE = re.compile(
    r"\b(?:team|lab|labs|group|inc|ltd|corp|corporation|consortium|contributors|authors|"
    r"project|foundation|institute|university)\b",
    re.I,
)


def is_corporate(name: str) -> bool:
    """Whether an author name is a team or organisation (``Aether Team``, ``Google Research``)."""
    return bool(CORPORATE_RE.search(name))


def split_names(author_field: str) -> list[str]:
    """Split a BibTeX ``author`` value on `` and `` at brace depth 0."""
    names: list[str] = []
    depth, start, i = 0, 0, 0
    text = author_field
    while i < len(text):
        c = text[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif depth == 0 and text[i : i + 5].lower() == " and " and i > start:
            names.append(text[start:i].strip())
            start = i + 5
            i += 4
        i += 1
    names.append(text[start:].strip())
    return [n for n in (re.sub(r"\s+", " ", n) for n in names) if n]


def name_first_last(name: str) -> str:
    """``"Ho, Jonathan"`` -> ``"Jonathan Ho"``; ``"von Last, Jr, First"`` -> ``"First von Last Jr"``."""
    parts = _split_top_level(name, ",")
    if len(parts) == 2:
        name = f"{parts[1]} {parts[0]}"
    elif len(parts) >= 3:
        name = f"{parts[2]} {parts[0]} {parts[1]}"
    return to_text(name)


def name_last(name: str) -> str:
    """Last name of a BibTeX name, as display text (``"Ho, Jonathan"`` and ``"Jonathan Ho"`` -> ``Ho``)."""
    parts = _split_top_level(name, ",")
    if len(parts) >= 2:
        return to_text(parts[0])
    words = _split_top_level(name, " ")
    if not words:
        return ""
    last = [words[-1]]
    for w in reversed(words[:-1]):  # von/van/de particles belong to the last name
        if w[:1].islower() and len(words) > 2:
            last.insert(0, w)
        else:
            break
    return to_text(" ".join(last))


def _split_top_level(text: str, sep: str) -> list[str]:
    out, depth, cur = [], 0, []
    for c in text:
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        if c == sep and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
    out.append("".join(cur).strip())
    return [p for p in out if p]


@dataclass(frozen=True)
class Paper:
    """One BibTeX entry. ``fields`` maps lower-case field names to raw (LaTeX) values."""

    key: str
    entry_type: str
    fields: Mapping[str, str]
    line: int = 0  # 1-based line of the entry in its file (0: not from a file)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "fields", MappingProxyType({k.lower(): v for k, v in self.fields.items()})
        )

    def __hash__(self) -> int:  # fields is a mapping: hash what identifies the entry
        return hash((self.key, self.entry_type, self.line))

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.fields.get(name, default)

    @property
    def title(self) -> str:
        """Title as display text (braces dropped, LaTeX escapes and accents resolved)."""
        return to_text(self.fields.get("title", ""))

    @property
    def authors(self) -> list[str]:
        """Authors as ``"First Last"``; a trailing ``others`` is left out (see :attr:`et_al`)."""
        names = split_names(self.fields.get("author", ""))
        return [name_first_last(n) for n in names if n.lower() != "others"]

    @property
    def et_al(self) -> bool:
        """True when the author list ends with ``and others`` (known to be incomplete)."""
        names = split_names(self.fields.get("author", ""))
        return bool(names) and names[-1].lower() == "others"

    @property
    def has_authors(self) -> bool:
        return bool(self.authors)

    @property
    def authors_text(self) -> str:
        """``"A, B and C"``, or ``"A, B et al."``; empty when no authors are known."""
        names = self.authors
        if not names:
            return ""
        if self.et_al:
            return ", ".join(names) + " et al."
        if len(names) == 1:
            return names[0]
        return ", ".join(names[:-1]) + " and " + names[-1]

    @property
    def year(self) -> str | None:
        y = self.fields.get("year", "").strip()
        return y or None

    @property
    def appeared(self) -> str | None:
        """The year the paper first appeared: its arXiv year when that is earlier than
        ``year`` (a CVPR 2024 paper posted in Dec 2023 appeared in 2023), else ``year``."""
        m = re.match(r"^(\d{2})\d{2}\.\d{4,5}$", self.eprint or "")
        pre = str(2000 + int(m.group(1))) if m else None
        if pre and (self.year is None or not self.year.isdigit() or pre < self.year):
            return pre
        return self.year

    @property
    def venue(self) -> str | None:
        """Where it appeared (booktitle, else journal); None for a preprint."""
        for name in ("booktitle", "journal"):
            v = self.fields.get(name, "").strip()
            if v:
                return to_text(v)
        return None

    @property
    def eprint(self) -> str | None:
        """arXiv id (``2303.01469``), when the entry has one."""
        v = self.fields.get("eprint", "").strip()
        return v or None

    @property
    def arxiv_url(self) -> str | None:
        return f"https://arxiv.org/abs/{self.eprint}" if self.eprint else None

    @property
    def url(self) -> str | None:
        v = self.fields.get("url", "").strip()
        return v or None

    @property
    def code(self) -> str | None:
        v = self.fields.get("code", "").strip()
        return v or None

    @property
    def website(self) -> str | None:
        v = self.fields.get("website", "").strip()
        return v or None

    @property
    def sections(self) -> list[str]:
        raw = self.fields.get("sections", "")
        return [to_text(s) for s in raw.split(";") if s.strip()]

    @property
    def listed(self) -> bool:
        """In the current Awesome list (``listed = {yes}``)."""
        return self.fields.get("listed", "").strip().lower() == "yes"

    @property
    def curated(self) -> bool:
        """Comes from the hand-curated source (``origin = {curated}``)."""
        return self.fields.get("origin", "").strip().lower() == "curated"

    @property
    def flags(self) -> list[str]:
        """Doubts recorded by the importer (id corrections, partial or unverified authors)."""
        return [to_text(s) for s in self.fields.get("flags", "").split(";") if s.strip()]

    @property
    def listids(self) -> list[str]:
        """Every arXiv id the list gave this paper (including ones judged to be wrong)."""
        return [s for s in re.split(r"[\s,]+", self.fields.get("listids", "")) if s]


@dataclass(frozen=True)
class Library:
    """The entries of one ``.bib`` file, by key (in file order)."""

    path: Path
    entries: Mapping[str, Paper] = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash((self.path, tuple(self.entries)))

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def find(self, key: str) -> Paper | None:
        """The entry of ``key`` compared case-insensitively (as BibTeX compares keys)."""
        if key in self.entries:
            return self.entries[key]
        lower = key.lower()
        return next((p for k, p in self.entries.items() if k.lower() == lower), None)

    def __getitem__(self, key: str) -> Paper:
        try:
            return self.entries[key]
        except KeyError:
            near = self.closest(key)
            hint = f"closest: {', '.join(near)}" if near else "no similar key"
            raise KeyError(f"unknown key '{key}' in {self.path} ({hint})") from None

    def __iter__(self) -> Iterator[Paper]:
        return iter(self.entries.values())

    def __len__(self) -> int:
        return len(self.entries)

    def closest(self, key: str, n: int = 3) -> list[str]:
        """Up to ``n`` keys that look like ``key`` (difflib ratio >= 0.6, case-insensitive)."""
        lower = {k.lower(): k for k in self.entries}
        found = difflib.get_close_matches(key.lower(), list(lower), n=n, cutoff=0.6)
        if not found:  # fall back to a shared prefix of the author+year part
            m = re.match(r"[a-z]+\d{4}", key.lower())
            if m:
                found = sorted(k for k in lower if k.startswith(m.group(0)))[:n]
        return [lower[k] for k in found]


def parse_bib_text(text: str, path: Path | str = "<string>") -> Library:
    """Parse BibTeX text into a :class:`Library`; raises :class:`BibError` listing every problem."""
    path = Path(path)
    lib = bibtexparser.parse_string(text)
    problems: list[str] = []
    for block in lib.failed_blocks:
        line = block.start_line + 1
        if isinstance(block, model.DuplicateBlockKeyBlock):
            first = block.previous_block.start_line + 1 if block.previous_block else None
            problems.append(
                bib_problem(
                    path,
                    line,
                    "duplicate entry key",
                    block.key,
                    f"the key is already used on line {first}; rename one of the entries",
                )
            )
        else:
            key = _guess_key(block.raw)
            err = str(getattr(block, "error", "") or "").strip().splitlines()
            detail = f" ({err[-1].strip()})" if err else ""
            problems.append(
                bib_problem(
                    path,
                    line,
                    f"malformed entry{detail}",
                    key,
                    "check the braces, quotes and commas of this entry",
                )
            )
    entries: dict[str, Paper] = {}
    seen_lower: dict[str, Paper] = {}
    for entry in lib.entries:
        line = entry.start_line + 1
        key = entry.key
        fields: dict[str, str] = {}
        for f in entry.fields:
            name = f.key.lower()
            value = str(f.value)
            if f.enclosing == "no-enclosing" and not re.fullmatch(
                r"[A-Za-z0-9_.:+-]*", value.strip()
            ):
                problems.append(
                    bib_problem(
                        path,
                        (f.start_line + 1) if f.start_line is not None else line,
                        f"field '{name}' has an unbraced value {value.strip()[:40]!r}",
                        key,
                        "a comma is probably missing before the next field; brace the value",
                    )
                )
            if name in fields:
                problems.append(
                    bib_problem(path, line, f"field '{name}' given twice", key, "keep one")
                )
            fields[name] = value
        if not KEY_RE.match(key):
            problems.append(
                bib_problem(
                    path,
                    line,
                    "key cannot be cited as [@key]",
                    key,
                    "use letters, digits and _ - . : + only",
                )
            )
        if not fields.get("title", "").strip():
            problems.append(bib_problem(path, line, "entry has no title", key, "add title = {...}"))
        paper = Paper(key=key, entry_type=entry.entry_type.lower(), fields=fields, line=line)
        other = seen_lower.get(key.lower())
        if other is not None:
            problems.append(
                bib_problem(
                    path,
                    line,
                    "duplicate entry key (BibTeX keys ignore case)",
                    key,
                    f"'{other.key}' on line {other.line} has the same key; rename one",
                )
            )
            continue
        seen_lower[key.lower()] = paper
        entries[key] = paper
    if problems:
        problems.sort(key=_problem_line)
        raise BibError(problems)
    return Library(path=path, entries=MappingProxyType(entries))


def load_library(path: str | Path) -> Library:
    """Load and check a ``.bib`` file (UTF-8). Raises :class:`BibError` naming file and line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BibError(
            bib_problem(p, None, "file not found", None, "run `diffusion-notes papers import`")
        ) from None
    except UnicodeDecodeError as exc:
        raise BibError(bib_problem(p, None, f"not UTF-8 ({exc})", None, "save as UTF-8")) from None
    return parse_bib_text(text, p)


def _guess_key(raw: str) -> str | None:
    m = re.match(r"\s*@\s*\w+\s*[{(]\s*([^,\s{}()=]+)\s*,", raw)
    return m.group(1) if m else None


def _problem_line(problem: str) -> int:
    m = re.match(r".*?:(\d+): ", problem)
    return int(m.group(1)) if m else 0


def _field_sort_key(name: str) -> tuple[int, str]:
    return (FIELD_ORDER.index(name), "") if name in FIELD_ORDER else (len(FIELD_ORDER), name)


def format_bibtex(paper: Paper, *, internal: bool = False) -> str:
    """One entry's BibTeX text (fields in a fixed order, values braced except a month, written
    as the styles' macro ``dec``; ``}`` on its own line).

    The project's own fields (:data:`INTERNAL_FIELDS`: sections, links, listed, ...) are left
    out unless ``internal`` is true, so what a reader copies is a plain citation entry.
    """
    names = [n for n in paper.fields if internal or n not in INTERNAL_FIELDS]
    names.sort(key=_field_sort_key)
    lines = [f"@{paper.entry_type}{{{paper.key},"]
    for n in names:
        value = paper.fields[n].strip()
        if n == "month" and value.lower() in _MONTH_MACROS:  # the styles' macro: "December"
            lines.append(f"  month = {value.lower()},")  # biber warns on a braced {Dec}
            continue
        lines.append(f"  {_FIELD_SPELLING.get(n, n)} = {{{value}}},")
    lines.append("}")
    return "\n".join(lines) + "\n"


def make_paper(
    key: str, entry_type: str, text_fields: Mapping[str, str], *, protect_title: bool = False
) -> Paper:
    """Build a :class:`Paper` from plain-text values (escaped here with :func:`to_latex`).

    ``author`` may be given as plain names joined by `` and ``; link fields (url, code,
    website, eprint) are written verbatim apart from braces, which are dropped. With
    ``protect_title`` the title's capitalised words are braced (:func:`latex.protect_case`).
    """
    raw: dict[str, str] = {}
    for name, value in text_fields.items():
        if value is None or value == "":
            continue
        if name in ("url", "code", "website", "eprint", "importsig"):
            raw[name] = value.replace("{", "%7B").replace("}", "%7D")
        elif name == "author":  # plain names joined by " and "; teams braced whole
            raw[name] = " and ".join(
                f"{{{to_latex(n)}}}" if is_corporate(n) else to_latex(n)
                for n in value.split(" and ")
            )
        elif name == "title" and protect_title:
            raw[name] = protect_case(to_latex(value))
        else:
            raw[name] = to_latex(value)
    return Paper(key=key, entry_type=entry_type, fields=raw)
