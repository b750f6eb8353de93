"""The paper index page: every entry of ``papers.bib`` with filters, links and copyable BibTeX.

``render_index`` returns the Markdown source of the page: a heading, a short summary, and one raw
HTML block (no blank lines inside, so Python-Markdown passes it through untouched). Every value
that comes from the Awesome list is untrusted: text goes through ``html.escape``; a link becomes
an ``<a>`` only when it is ``http(s)`` (``javascript:``, ``data:`` and the rest stay plain
text); the BibTeX text sits escaped in a ``data-bibtex`` attribute and is only ever read back as
text. Titles are rendered as page text, so the site search indexes them.

The filtering script and the style sheet are package files (:data:`ASSETS`): the site hook copies
them next to the page, or ``render_index(..., inline_assets=True)`` embeds them.
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from diffusion_notes.bib.store import Library, Paper, format_bibtex

ASSET_DIR = Path(__file__).with_name("assets")
# Site-relative file name -> package file. The hook copies these into the built site.
ASSETS = {
    "assets/paper-index.js": ASSET_DIR / "paper-index.js",
    "assets/paper-index.css": ASSET_DIR / "paper-index.css",
}

FOUNDATIONS = "Foundations"  # pseudo-section of the curated entries
PREPRINT = "preprint"  # venue filter value of entries without a venue

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def safe_http_url(url: str | None) -> str | None:
    """The URL when it is an absolute ``http``/``https`` one, else None.

    Browsers drop ASCII whitespace and control characters inside a scheme, so they are removed
    before the check (``java\\tscript:`` is still ``javascript:``).
    """
    if not url:
        return None
    u = re.sub(r"[\x00-\x20\x7f]", "", url)
    if re.match(r"^https?://[^/\s]", u, flags=re.IGNORECASE):
        return u
    return None


def safe_relative_url(url: str | None) -> str | None:
    """A relative URL (no scheme, not protocol-relative), or an http(s) one; else None."""
    if not url:
        return None
    u = re.sub(r"[\x00-\x20\x7f]", "", url)
    if _SCHEME_RE.match(u):
        return safe_http_url(u)
    if u.startswith("//") or u.startswith("\\"):
        return None
    return u


_KNOWN_VENUES = (
    "SIGGRAPH Asia",
    "SIGGRAPH",
    "NeurIPS",
    "ICLR",
    "ICML",
    "CVPR",
    "ICCV",
    "ECCV",
    "WACV",
    "AAAI",
    "IJCAI",
    "ACM MM",
    "ACMMM",
    "BMVC",
    "3DV",
    "TPAMI",
    "TOG",
    "IJCV",
    "TIP",
    "TMM",
    "TCSVT",
    "TVCG",
    "MICCAI",
    "ICRA",
    "IROS",
    "CoRL",
    "RSS",
    "ICASSP",
    "Interspeech",
    "NAACL",
    "EMNLP",
    "ACL",
)
_KNOWN_RE = re.compile(
    r"(?<![A-Za-z])(" + "|".join(re.escape(v) for v in _KNOWN_VENUES) + r")(?![A-Za-z])"
)


def venue_family(venue: str | None) -> str:
    """The venue without its year, as its usual short name when one is known.

    ``"CVPR 2024"`` -> ``"CVPR"``; ``"IEEE/CVF Conference on ... (CVPR)"`` -> ``"CVPR"``;
    ``"ACM SIGGRAPH 2022 Conference Proceedings"`` -> ``"SIGGRAPH"``; none -> ``"preprint"``.
    """
    if not venue:
        return PREPRINT
    m = _KNOWN_RE.search(venue)
    if m:
        return m.group(1).replace("ACMMM", "ACM MM")
    m = re.search(r"\(([A-Za-z][A-Za-z0-9 ]{1,15})\)", venue)
    if m:
        return m.group(1)
    v = re.sub(r"[\s,'’]*\b(19|20)\d{2}\b", "", venue)
    v = re.sub(r"\s+", " ", v).strip(" ,;-()")
    return v or venue.strip()


def display_sections(paper: Paper) -> list[str]:
    """The list sections of a paper, with the curated ones also under ``Foundations``."""
    sections = list(paper.sections)
    if paper.curated and FOUNDATIONS not in sections:
        sections.insert(0, FOUNDATIONS)
    return sections or ["Unsectioned"]


def _sort_key(paper: Paper) -> tuple:
    # Foundations first (by year), then newest first, then title.
    year = int(paper.year) if (paper.year or "").isdigit() else 0
    return (0 if paper.curated else 1, year if paper.curated else -year, paper.title.lower())


def _link(url: str | None, label: str, cls: str) -> str:
    safe = safe_http_url(url)
    if safe:
        return f'<a class="{cls}" href="{_e(safe)}" rel="noopener nofollow">{_e(label)}</a>'
    if url:  # not http(s): show it, never link it
        return f'<span class="{cls} pi-badlink" title="not an http(s) link">{_e(label)}: {_e(url)}</span>'
    return ""


def _entry_html(paper: Paper, cited_by: list[tuple[str, str]]) -> str:
    sections = display_sections(paper)
    year = paper.year or ""
    venue = paper.venue
    family = venue_family(venue)
    code = safe_http_url(paper.code)
    attrs = {
        "class": "pi-entry",
        "id": paper.key,
        "data-sections": "|".join(sections),
        "data-year": year,
        "data-venue": family,
        "data-code": "1" if code else "0",
        "data-authors": "1" if paper.has_authors else "0",
        "data-listed": "1" if paper.listed else "0",
    }
    parts = [f"<li {' '.join(f'{k}={chr(34)}{_e(v)}{chr(34)}' for k, v in attrs.items())}>"]
    parts.append(
        f'<p class="pi-title"><a class="pi-anchor" href="#{_e(paper.key)}" title="link to this entry">#</a> '
        f"<span>{_e(paper.title)}</span></p>"
    )
    if paper.has_authors:
        parts.append(f'<p class="pi-authors">{_e(paper.authors_text)}</p>')
    else:
        parts.append('<p class="pi-authors pi-noauthors">authors not recorded</p>')
    meta = []
    if year:
        meta.append(f'<span class="pi-year">{_e(year)}</span>')
    meta.append(f'<span class="pi-venue">{_e(venue or "preprint")}</span>')
    meta.append(
        '<span class="pi-sections">'
        + ", ".join(f'<span class="pi-section">{_e(s)}</span>' for s in sections)
        + "</span>"
    )
    if paper.fields.get("listed", "").lower() == "no":
        meta.append(
            '<span class="pi-unlisted" title="no longer in the Awesome list">unlisted</span>'
        )
    parts.append('<p class="pi-meta">' + " · ".join(meta) + "</p>")
    flags = paper.flags
    if flags:  # doubts the importer recorded: unverified authors, corrected ids
        parts.append(
            f'<details class="pi-flags"><summary>{len(flags)} import note'
            f"{'s' if len(flags) > 1 else ''}</summary><ul>"
            + "".join(f"<li>{_e(f)}</li>" for f in flags)
            + "</ul></details>"
        )
    links = [
        _link(paper.arxiv_url, f"arXiv {paper.eprint}" if paper.eprint else "arXiv", "pi-arxiv"),
        _link(paper.url if paper.url != paper.arxiv_url else None, "paper", "pi-url"),
        _link(paper.code, "code", "pi-code"),
        _link(paper.website, "website", "pi-website"),
    ]
    bibtex = _e(format_bibtex(paper)).replace("\n", "&#10;")  # one line per entry
    links.append(
        f'<button type="button" class="pi-copy md-button" data-bibtex="{bibtex}">Copy BibTeX</button>'
    )
    links.extend(_format_buttons(paper))
    links.append(f'<code class="pi-key">{_e(paper.key)}</code>')
    parts.append('<p class="pi-links">' + " ".join(x for x in links if x) + "</p>")
    if cited_by:
        refs = []
        for title, url in cited_by:
            href = safe_relative_url(url)
            refs.append(f'<a href="{_e(href)}">{_e(title)}</a>' if href else _e(title))
        parts.append('<p class="pi-cited">Cited in: ' + ", ".join(refs) + "</p>")
    parts.append("</li>")
    return "".join(parts)


def _options(counts: Counter, all_label: str, order: list[str]) -> str:
    opts = [f'<option value="">{_e(all_label)}</option>']
    for value in order:
        opts.append(f'<option value="{_e(value)}">{_e(value)} ({counts[value]})</option>')
    return "".join(opts)


def render_index(
    library: Library,
    backlinks: Mapping[str, list[tuple[str, str]]],
    *,
    inline_assets: bool = False,
    title: str = "Paper index",
) -> str:
    """Markdown source of the paper index page.

    ``backlinks`` maps a key to ``[(page title, url relative to the index page)]`` of the notes
    that cite it. Each entry is an ``<li id="KEY">``; filters (section, year, venue, has code,
    has authors, free text) are driven by ``paper-index.js`` (see :data:`ASSETS`).
    """
    papers = sorted(library.entries.values(), key=_sort_key)
    section_counts: Counter = Counter()
    year_counts: Counter = Counter()
    venue_counts: Counter = Counter()
    for p in papers:
        section_counts.update(display_sections(p))
        year_counts[p.year or ""] += 1
        venue_counts[venue_family(p.venue)] += 1
    # Sections in first-seen order of the list (Foundations first), years newest first.
    section_order: list[str] = []
    for p in papers:
        for s in display_sections(p):
            if s not in section_order:
                section_order.append(s)
    years = sorted((y for y in year_counts if y), reverse=True)
    venues = sorted(venue_counts, key=lambda v: (v == PREPRINT, -venue_counts[v], v.lower()))

    n_code = sum(1 for p in papers if safe_http_url(p.code))
    n_auth = sum(1 for p in papers if p.has_authors)
    out = [f"# {title}", ""]
    out.append(
        f"{len(papers)} papers: the curated foundations and the papers of the "
        "[Awesome Video Diffusion](https://github.com/showlab/Awesome-Video-Diffusion) list "
        f"({n_code} with code, {n_auth} with authors). Cite one in a note as `[@key]`; "
        "the key is shown under each entry, and **Copy BibTeX** copies its entry."
    )
    out.append("")
    out.append(
        "Each entry also copies as BibLaTeX and CSL-JSON (Zotero, pandoc). "
        "[How this bibliography is made and checked](#how-this-bibliography-is-made-and-checked)."
    )
    out.append("")
    # not "paper-index": the page's h1 "Paper index" gets that id from its heading
    h: list[str] = ['<div class="pi-root" id="pi-root">']
    if inline_assets:
        h.append(
            "<style>" + ASSETS["assets/paper-index.css"].read_text(encoding="utf-8") + "</style>"
        )
    h.append('<div class="pi-filters" role="search">')
    h.append(
        '<input type="search" class="pi-q" id="pi-q" placeholder="Filter: title, author, key, arXiv id or URL" '
        'aria-label="Filter papers by text">'
    )
    h.append(
        '<select class="pi-section-select" id="pi-section" aria-label="Section">'
        + _options(section_counts, "All sections", section_order)
        + "</select>"
    )
    h.append(
        '<select id="pi-year" aria-label="Year">'
        + _options(year_counts, "All years", years)
        + "</select>"
    )
    h.append(
        '<select id="pi-venue" aria-label="Venue">'
        + _options(venue_counts, "All venues", venues)
        + "</select>"
    )
    h.append('<label><input type="checkbox" id="pi-has-code"> has code</label>')
    h.append('<label><input type="checkbox" id="pi-has-authors"> has authors</label>')
    h.append(
        '<select id="pi-sort" aria-label="Sort">'
        '<option value="">Foundations, then newest</option><option value="newest">Newest first</option>'
        '<option value="title">Title A-Z</option><option value="venue">Venue</option></select>'
    )
    h.append('<button type="button" id="pi-reset">Reset</button>')
    h.append('<button type="button" id="pi-copy-all" class="pi-bulk">Copy all shown as .bib</button>')
    h.append(
        f'<output id="pi-count" aria-live="polite">{len(papers)} of {len(papers)} papers</output>'
    )
    h.append("</div>")
    h.append(
        f'<details class="pi-sections-box"><summary>Browse by section ({len(section_order)} '
        "sections)</summary>"
    )
    h.append('<ul class="pi-counts" aria-label="Papers per section">')
    for s in section_order:
        h.append(
            f'<li><button type="button" class="pi-section-btn" data-section="{_e(s)}">{_e(s)}</button> '
            f'<span class="pi-n" data-section="{_e(s)}">{section_counts[s]}</span></li>'
        )
    h.append("</ul></details>")
    h.append(f'<ol class="pi-list" data-total="{len(papers)}">')
    for p in papers:
        h.append(_entry_html(p, list(backlinks.get(p.key, []))))
    h.append("</ol>")
    h.append('<p class="pi-empty" hidden>No paper matches these filters.</p>')
    if inline_assets:
        h.append(
            "<script>" + ASSETS["assets/paper-index.js"].read_text(encoding="utf-8") + "</script>"
        )
    h.append("</div>")
    # One HTML block: no blank line may appear inside it.
    block = "\n".join(h)
    block = re.sub(r"\n\s*\n", "\n", block)
    out.append(block)
    out.append("")
    out.extend(how_made_section(library))
    return "\n".join(out)


# ----------------------------------------------------------------------------- citing (issue 10)
# Self-contained: the copy buttons for the other formats and the "how it is made" section.

_FORMAT_LABELS = (("biblatex", "BibLaTeX"), ("csl-json", "CSL-JSON"))


def _format_buttons(paper: Paper) -> list[str]:
    """A copy button per extra format; the text sits escaped in ``data-copy`` (read as text)."""
    from diffusion_notes.bib.export import to_biblatex, to_csl

    texts = {
        "biblatex": to_biblatex(paper),
        "csl-json": json.dumps(to_csl(paper), ensure_ascii=False, separators=(",", ":")),
    }
    return [
        f'<button type="button" class="pi-cite-fmt md-button" data-format="{fmt}" '
        f'data-copy="{_e(texts[fmt]).replace(chr(10), "&#10;")}">Copy {label}</button>'
        for fmt, label in _FORMAT_LABELS
    ]


def how_made_section(library: Library) -> list[str]:
    """Markdown of "How this bibliography is made and checked", with the library's counts."""
    papers = list(library)
    flagged = sum(1 for p in papers if p.flags)
    unverified = sum(
        1 for p in papers if any("unverified" in f or "left out" in f for f in p.flags)
    )
    partial = sum(1 for p in papers if p.et_al)
    curated = sum(1 for p in papers if p.curated)
    return [
        "## How this bibliography is made and checked",
        "",
        f"**Sources.** {curated} foundational papers are kept by hand in `curated.bib`, checked "
        "against the papers' title pages; they win over everything else. The other entries are "
        "imported from the Awesome Video Diffusion list (`diffusion-notes papers import`), with "
        "authors from a collected metadata file (`authors.json`: public BibTeX, paper lists and "
        "READMEs, each record naming its source).",
        "",
        "**What is verified.** Authors are taken only from a record whose title clearly matches "
        "the entry; the arXiv id fixes a preprint's year and month, a venue only its year; "
        "links are the work's own (no tracking parameters, no ruled-out arXiv ids); a work "
        "listed twice is one entry. `diffusion-notes papers check` parses the file with "
        "bibtexparser and pybtex (strict) and checks every entry's authors, dates, links and "
        "preprint fields; the test suite runs real BibTeX with the plain, unsrt, alpha, ieeetr "
        "and apalike styles and requires every preprint's arXiv id in its reference.",
        "",
        f"**What is flagged.** {flagged} entries carry import notes (shown under the entry and "
        f"by `diffusion-notes cite`): {unverified} have authors left out or read from an "
        f"unverified source, {partial} list only some authors (“et al.”), others record "
        "a corrected arXiv id. Entries marked *authors not recorded* had no clearly matching "
        "record: cite them with care.",
        "",
        "**Reporting an error.** Give the key and a source that shows the right value (the "
        "arXiv page, the proceedings). A correction lasts when it is written in `curated.bib` "
        "as an entry with the paper's key and the corrected fields; then regenerate "
        "`papers.bib` and run `diffusion-notes papers check`.",
        "",
    ]
