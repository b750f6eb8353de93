"""Read the Awesome Video Diffusion README into list items, one per entry line.

An entry is a ``+`` bullet inside a ``###`` section::

    + [Title](https://arxiv.org/abs/2307.04725) (Jul., 2023 | ICLR 2024)
      [![Star](https://img.shields.io/github/stars/o/r.svg)](https://github.com/o/r)
      [![arXiv](https://img.shields.io/badge/arXiv-b31b1b.svg)](https://arxiv.org/abs/2307.04725)
      [![Website](https://img.shields.io/badge/Website-9cf)](https://project.page/)

The list is hand-written and its oddities are read, not rejected: a missing ``[``, bold titles,
badges on the title line, versioned and malformed arXiv links (``2307.000400``, ``abs//``,
``www.arxiv.org``, no ``abs/``), badges whose label does not match where they point (an "arXiv"
badge to OpenReview), parentheses that hold a vendor link instead of a date, and every date
form ("Mar., 2023", "Mar, 2023", "July, 2025", "Nov. 2022", "CVPR 2024", "CVPR, 2024",
"Mar., 2023 | ECCV 2024", none). Lines that look like entries but are not (a bullet in another
style with an advert, a badge line outside any entry, a description line) are returned as
:class:`Skipped` with the reason, so nothing is dropped silently.

This module only reads; deciding which arXiv id an entry really has, merging duplicates and
writing BibTeX is :mod:`diffusion_notes.bib.importer`.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

MONTH_ABBR = [
    "",
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
]

# Journals (the rest of the venues are conferences or workshops).
JOURNALS = {"TMLR", "TPAMI", "TOG", "IJCV", "TIP", "TMM", "TCSVT", "TVCG", "JMLR", "PAMI", "NATURE"}

_ENTRY_RE = re.compile(r"^(?P<indent>\s{0,3})(?P<marker>[+*-])\s+(?P<rest>\S.*)$")
_HEADING_RE = re.compile(r"^(?P<hashes>#{1,6})\s+(?P<text>.*?)\s*(?:<!--.*?-->)?\s*$")
_BADGE_RE = re.compile(
    r"\[!\[(?P<label>[^\]]*)\]\((?P<img>(?:[^()\s]|\([^()\s]*\))*)\)\]\((?P<url>[^)\s]*)\)"
)
_LINK_RE = re.compile(r"(?<!!)\[(?P<text>[^\[\]]*)\]\((?P<url>[^)\s]*)\)")
_ARXIV_HOST_RE = re.compile(
    r"^(?:https?:)?/*(?:www\.|export\.)?arxiv\.org/+(?P<path>[^?#\s]*)", re.IGNORECASE
)
_NEW_ID_RE = re.compile(r"^(?P<yy>\d{2})(?P<mm>\d{2})\.(?P<num>\d{4,5})(?:v\d+)?$")
_OLD_ID_RE = re.compile(r"^(?P<id>[a-z\-]+(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?$")
_GITHUB_RE = re.compile(
    r"^https?://(?:www\.)?github\.com/(?P<owner>[^/\s?#]+)/(?P<repo>[^/\s?#]+)", re.I
)


@dataclass(frozen=True)
class ArxivRef:
    """An arXiv id found in a link. ``id`` is None when the link's id is malformed."""

    id: str | None
    raw: str  # the id text as written (``2307.000400``, ``2406.08659v1``)
    url: str
    source: str  # "title" or the badge label ("arXiv", "PDF", "Website", ...)


@dataclass
class ListItem:
    """One entry line of the list (with its continuation lines), as written."""

    line: int  # 1-based line of the entry in the README
    section: str
    title: str  # display text (markdown emphasis removed, entities resolved)
    title_url: str | None = None
    arxiv: list[ArxivRef] = field(default_factory=list)  # title link first, then badges
    code: str | None = None
    website: str | None = None
    paper_url: str | None = None  # a non-arXiv paper link (OpenReview, CVF, a PDF)
    date_text: str | None = None  # the text inside the parentheses, if it was a date
    month: int | None = None
    year: int | None = None  # year of the month-year date
    venue: str | None = None  # "CVPR" (year separate)
    venue_year: int | None = None
    vendor: str | None = None  # "(Google)" style vendor link text
    description: str | None = None
    notes: list[str] = field(default_factory=list)  # oddities met while reading

    @property
    def title_arxiv(self) -> ArxivRef | None:
        return next((a for a in self.arxiv if a.source == "title"), None)


@dataclass(frozen=True)
class Skipped:
    """A line that looks like part of an entry but was not imported, and why."""

    line: int
    text: str
    reason: str


@dataclass
class ParsedList:
    items: list[ListItem]
    skipped: list[Skipped]
    sections: list[str]


def parse_arxiv_url(url: str) -> tuple[bool, str | None, str]:
    """``(is_arxiv, id or None, raw id text)`` for a link.

    Accepts ``abs/``, ``pdf/`` (with or without ``.pdf``), ``html/``, no path prefix at all,
    doubled slashes, ``www.``/``export.`` hosts and version suffixes; the version is dropped.
    A malformed id (``2307.000400``, a month 13) gives ``(True, None, raw)``.
    """
    m = _ARXIV_HOST_RE.match(url.strip())
    if not m:
        return False, None, ""
    path = re.sub(r"/+", "/", m.group("path")).strip("/")
    path = re.sub(r"^(?:abs|pdf|html|format)/", "", path, flags=re.I)
    path = re.sub(r"\.pdf$", "", path, flags=re.I)
    raw = path
    nm = _NEW_ID_RE.match(path)
    if nm:
        yy, mm, num = int(nm.group("yy")), int(nm.group("mm")), nm.group("num")
        five = (yy, mm) >= (15, 1)  # ids have 5 digits after the dot from 2015-01 on
        if 1 <= mm <= 12 and len(num) == (5 if five else 4):
            return True, f"{nm.group('yy')}{nm.group('mm')}.{num}", raw
        return True, None, raw
    om = _OLD_ID_RE.match(path)
    if om:
        return True, om.group("id"), raw
    return True, None, raw


def arxiv_year(arxiv_id: str) -> int | None:
    """Year of submission encoded in a new-style arXiv id (``2307.04725`` -> 2023)."""
    m = re.match(r"^(\d{2})\d{2}\.", arxiv_id)
    return 2000 + int(m.group(1)) if m else None


def github_repo(url: str | None) -> str | None:
    """``owner/repo`` (lower case) of a GitHub link, else None."""
    if not url:
        return None
    m = _GITHUB_RE.match(url)
    if not m:
        return None
    repo = re.sub(r"\.git$", "", m.group("repo"))
    return f"{m.group('owner')}/{repo}".lower()


def clean_title(text: str) -> str:
    """Markdown title text -> plain text (``**bold**``, escapes and HTML entities removed)."""
    t = html.unescape(text)
    t = re.sub(r"\\([\\`*_{}\[\]()#+\-.!|])", r"\1", t)
    t = re.sub(r"(\*\*|__)(.+?)\1", r"\2", t)
    t = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"\1", t)
    t = t.replace("**", "").replace("`", "")
    t = re.sub(r"<[^>]{0,200}>", "", t) if re.search(r"<(?:b|i|em|strong|sup|sub)>", t) else t
    return re.sub(r"\s+", " ", t).strip()


def parse_date(text: str) -> dict:
    """Read the parenthesised date/venue text. Returns the keys that were found.

    ``"Mar., 2023"`` -> month 3, year 2023; ``"CVPR, 2024"`` -> venue CVPR, venue_year 2024;
    ``"Oct., 2024 | NeurIPS 2024"`` -> both. Unknown text gives ``{"unparsed": text}``.
    """
    out: dict = {}
    for part in re.split(r"\s*\|\s*", text.strip()):
        p = part.strip().strip(",;").strip()
        if not p:
            continue
        m = re.fullmatch(r"([A-Za-z]{3,9})\.?,?\s*((?:19|20)\d{2})", p)
        month = _month_number(m.group(1)) if m else None
        if m and month:
            out["month"], out["year"] = month, int(m.group(2))
            continue
        m = re.fullmatch(
            r"(.+?)[\s,]+((?:19|20)\d{2})(?:\s*\((?:oral|spotlight|highlight)\))?", p, re.I
        )
        if m and re.search(r"[A-Za-z]", m.group(1)):
            out["venue"], out["venue_year"] = m.group(1).strip(" ,"), int(m.group(2))
            continue
        m = re.fullmatch(r"((?:19|20)\d{2})", p)
        if m:
            out["year"] = int(m.group(1))
            continue
        out.setdefault("unparsed", []).append(p)
    return out


_MONTH_NAMES = [
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
]  # fmt: skip


def _month_number(word: str) -> int | None:
    """``Mar``/``March``/``Sept``/``June`` -> month number; a venue name -> None."""
    w = word.lower()
    if len(w) < 3:
        return None
    for i, name in enumerate(_MONTH_NAMES, start=1):
        if name.startswith(w) or (w == "sept" and i == 9):
            return i
    return None


def _split_title_line(rest: str) -> tuple[str, str | None, str] | None:
    """Split the text after the bullet into (title, url, remainder).

    Handles ``[Title](url) rest``, ``Title](url) rest`` (missing ``[``) and a title without
    any link. Titles may hold brackets and parentheses of their own.
    """
    s = rest
    if s.startswith("["):
        s = s[1:]
    # The title ends at the first "](" whose ")" closes a URL without spaces.
    for m in re.finditer(r"\]\((?P<url>[^)\s]*)\)", s):
        title = s[: m.start()]
        if title.count("[") <= title.count("]"):  # not inside a nested link
            return title, m.group("url"), s[m.end() :]
    m = re.match(r"(?P<title>[^(\[]+?)\s*(?P<rest>\(.*)?$", s)
    if m and m.group("title").strip():
        return m.group("title"), None, m.group("rest") or ""
    return None


def _classify_link(item: ListItem, label: str, url: str, is_title: bool) -> None:
    """Put one link of an entry in its slot (arXiv, code, website, paper)."""
    label_l = label.lower()
    source = "title" if is_title else (label or "link")
    if not url:
        item.notes.append(f"empty link in the {source} badge")
        return
    is_arxiv, aid, raw = parse_arxiv_url(url)
    if is_arxiv:
        if aid is None:
            item.notes.append(f"malformed arXiv link {url!r} ({source})")
        elif raw != aid or not re.match(r"^https://arxiv\.org/(abs|pdf)/[^/]", url):
            item.notes.append(f"odd arXiv link {url!r} read as {aid}")  # version, www., abs//
        item.arxiv.append(ArxivRef(id=aid, raw=raw, url=url, source=source))
        if not is_title and label_l not in ("arxiv", "pdf", "paper"):
            item.notes.append(f"{label or 'link'} badge points to arXiv {aid or raw}")
        return
    if label_l == "arxiv" or label_l == "pdf" or label_l == "paper":
        item.notes.append(f"{label} badge points elsewhere: {url}")
        if github_repo(url) and not item.code:
            item.code = url
        elif item.paper_url is None:
            item.paper_url = url
        return
    repo = github_repo(url)
    if is_title:
        if repo:
            item.code = item.code or url
        else:
            item.paper_url = url
        return
    if label_l == "star":
        if repo:
            if item.code and github_repo(item.code) != repo and item.title_url == item.code:
                item.notes.append(f"title link {item.code} and Star badge {url} differ")
            item.code = url
        else:
            item.notes.append(f"Star badge points to a non-GitHub page: {url}")
            item.website = item.website or url
        return
    if label_l.startswith("website") or label_l in ("project", "page", "demo", "blog"):
        item.website = item.website or url
        return
    if repo and not item.code:
        item.code = url
        return
    # Dataset, Video, model cards...: not a citation field; noted for the report.
    item.notes.append(f"{label or 'link'} link kept out of the entry: {url}")


def parse_list(text: str) -> ParsedList:
    """Parse the README text into list items and skipped lines (see module docstring)."""
    lines = text.splitlines()
    items: list[ListItem] = []
    skipped: list[Skipped] = []
    sections: list[str] = []
    section: str | None = None
    current: ListItem | None = None
    # The list's own entry bullet: the most common marker under ### headings.
    markers: dict[str, int] = {}
    in_sec = False
    for ln in lines:
        h = _HEADING_RE.match(ln)
        if h:
            in_sec = len(h.group("hashes")) >= 3
            continue
        m = _ENTRY_RE.match(ln)
        if in_sec and m:
            markers[m.group("marker")] = markers.get(m.group("marker"), 0) + 1
    entry_marker = max(markers, key=lambda k: markers[k]) if markers else "+"

    after_blank = False
    for n, ln in enumerate(lines, start=1):
        h = _HEADING_RE.match(ln)
        if h:
            current = None
            if len(h.group("hashes")) >= 3:
                section = h.group("text").strip()
                if section not in sections:
                    sections.append(section)
            else:
                section = None
            continue
        if section is None:
            continue  # title, pictures and table of contents
        if not ln.strip():
            after_blank = True
            continue
        m = _ENTRY_RE.match(ln)
        if m:
            current = None
            after_blank = False
            if m.group("marker") != entry_marker:
                skipped.append(
                    Skipped(
                        n,
                        ln.strip(),
                        f"bullet '{m.group('marker')}' is not the list's entry bullet "
                        f"'{entry_marker}' and the line carries inline text after the link "
                        "(an advert, not a paper entry)"
                        if re.search(r"\)\s+[-–—:]\s+\S", ln)
                        else f"bullet '{m.group('marker')}' is not the list's entry bullet '{entry_marker}'",
                    )
                )
                continue
            item = _parse_entry_line(n, section, m.group("rest"))
            if item is None:
                skipped.append(Skipped(n, ln.strip(), "entry line without a title"))
                continue
            items.append(item)
            current = item
            continue
        # A continuation line: badges or a description of the entry above. After a blank
        # line it still belongs to the entry when indented (a Markdown list continuation).
        if current is not None and after_blank:
            if ln[:1].isspace():
                current.notes.append(f"line {n} is separated from its entry by a blank line")
            else:
                current = None
        after_blank = False
        if current is None:
            if _BADGE_RE.search(ln) or _LINK_RE.search(ln):
                skipped.append(Skipped(n, ln.strip(), "badge/link line outside any entry"))
            else:
                skipped.append(Skipped(n, ln.strip(), "text outside any entry (not an entry)"))
            continue
        _read_continuation(current, n, ln, skipped)
    return ParsedList(items=items, skipped=skipped, sections=sections)


def _parse_entry_line(n: int, section: str, rest: str) -> ListItem | None:
    split = _split_title_line(rest)
    if split is None:
        return None
    raw_title, url, remainder = split
    title = clean_title(raw_title)
    if not title:
        return None
    item = ListItem(line=n, section=section, title=title, title_url=url or None)
    if not rest.startswith("["):
        item.notes.append("title has no opening '['")
    if "**" in raw_title or "__" in raw_title:
        item.notes.append("bold title")
    if url:
        _classify_link(item, "", url, is_title=True)
    # Badges on the title line, then the parenthesised date or vendor.
    badge_text = remainder
    for b in _BADGE_RE.finditer(badge_text):
        _classify_link(item, b.group("label"), b.group("url"), is_title=False)
    remainder = _BADGE_RE.sub(" ", remainder)
    pm = re.match(r"\s*\((?P<inner>(?:[^()]|\([^()]*\))*)\)", remainder)
    if pm:
        inner = pm.group("inner").strip()
        vendor = _LINK_RE.fullmatch(inner)
        if vendor:
            item.vendor = clean_title(vendor.group("text"))
            item.notes.append(f"parentheses hold a vendor link ({item.vendor}), not a date")
            if not item.website and vendor.group("url"):
                item.website = vendor.group("url")
        else:
            item.date_text = inner
            d = parse_date(inner)
            item.month = d.get("month")
            item.year = d.get("year")
            item.venue = d.get("venue")
            item.venue_year = d.get("venue_year")
            if "unparsed" in d:
                item.notes.append(f"date text not understood: {'; '.join(d['unparsed'])!r}")
        remainder = remainder[pm.end() :]
    tail = remainder.strip()
    if tail:
        item.description = clean_title(_LINK_RE.sub(lambda m: m.group("text"), tail))
    return item


def _read_continuation(item: ListItem, n: int, ln: str, skipped: list[Skipped]) -> None:
    found = False
    for b in _BADGE_RE.finditer(ln):
        _classify_link(item, b.group("label"), b.group("url"), is_title=False)
        found = True
    rest = _BADGE_RE.sub(" ", ln).strip()
    for lk in _LINK_RE.finditer(rest):
        _classify_link(item, lk.group("text"), lk.group("url"), is_title=False)
        found = True
    rest = _LINK_RE.sub(" ", rest).strip()
    if rest:
        text = clean_title(rest)
        item.description = f"{item.description} {text}".strip() if item.description else text
        if not found:
            skipped.append(
                Skipped(
                    n, ln.strip(), f"description of the entry on line {item.line}, not an entry"
                )
            )
