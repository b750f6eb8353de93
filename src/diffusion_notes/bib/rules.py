"""What ``papers check`` requires of every entry, one rule set per class of defect.

Each rule set takes the loaded :class:`~diffusion_notes.bib.store.Library` and returns one
line per problem, ``<file>:<line>: <what> (key '<k>'): <fix>``:

* ``bibtex``: the file parses with pybtex in strict mode and with bibtexparser (see
  :func:`strict_parse`); no raw ``& % # _`` in a text field (LaTeX stops on them).
* ``authors``: no invisible characters (U+FE0F, zero-width), no name whose given name starts
  in lower case (BibTeX reads it as a "von" part), teams braced (``{Aether Team}``); with the
  metadata, an imported entry's authors come from a record whose title clearly matches.
* ``dates``: no date after today; an arXiv paper's month is its arXiv month; a preprint's year
  is its arXiv year.
* ``links``: no tracking parameters; an arXiv link points at the entry's own eprint; no link
  shared by two differently titled entries; no work entered twice (a repository entry beside
  its paper); with the metadata, no bare name where the metadata gives the full title.
* ``preprints``: an arXiv preprint (``@misc``/``@article`` without venue) prints its id in every
  classic style (``howpublished``/``journal = {arXiv preprint arXiv:ID}``) and carries
  ``archivePrefix`` and the arXiv DOI; a venue is written out in full.
"""

from __future__ import annotations

import datetime
import re
from collections import defaultdict
from collections.abc import Callable

from diffusion_notes.bib.entryfields import arxiv_date, arxiv_doi, venue_entry
from diffusion_notes.bib.ids import TRACKING_PARAMS
from diffusion_notes.bib.keys import clear_title_match, norm_title, norm_url
from diffusion_notes.bib.listparse import github_repo, parse_arxiv_url
from diffusion_notes.bib.metadata import Metadata
from diffusion_notes.bib.store import (
    Library,
    Paper,
    bib_problem,
    is_corporate,
    split_names,
)

RULE_CLASSES = ("bibtex", "authors", "dates", "links", "preprints")

# Fields whose values are links or identifiers, not text (special characters allowed).
_LINK_FIELDS = {"url", "code", "website", "eprint", "doi", "listids", "importsig", "file"}
_MONTHS = ("jan feb mar apr may jun jul aug sep oct nov dec").split()


def strict_parse(text: str, path: str) -> list[str]:
    """Problems pybtex (strict) finds in a ``.bib`` text, one line each ([] when it parses).

    pybtex is the BibTeX parser of the docs and dev extras; without it the check cannot run
    and says so (one problem line), rather than passing silently.
    """
    try:
        from pybtex import errors
        from pybtex.database.input import bibtex
        from pybtex.scanner import PybtexSyntaxError
    except ImportError:
        return [f"{path}: pybtex is not installed: install the docs or dev extra "
                "(pip install -e '.[dev]') so that papers check can parse strictly"]  # fmt: skip
    found: list[Exception] = []
    with errors.capture() as captured:
        try:
            bibtex.Parser().parse_string(text)
        except (PybtexSyntaxError, errors.pybtex.PybtexError) as exc:  # type: ignore[attr-defined]
            found.append(exc)
        found.extend(captured)
    out = []
    for exc in found:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        m = re.search(r"line (\d+)", msg)
        out.append(bib_problem(path, int(m.group(1)) if m else None, f"pybtex (strict): {msg}",
                               None, "fix the syntax; a comment must not contain an at-sign"))  # fmt: skip
    return out


def _where(p: Paper, lib: Library, what: str, fix: str) -> str:
    return bib_problem(lib.path, p.line, what, p.key, fix)


def bibtex_rules(lib: Library, meta: Metadata | None = None) -> list[str]:
    out = []
    for p in lib:
        for name, value in p.fields.items():
            if name in _LINK_FIELDS:
                continue
            text = re.sub(r"(?<!\\)\$.*?(?<!\\)\$", "", value)  # math is LaTeX's business
            bad = sorted(set(re.findall(r"(?<!\\)[&%#_]", text)))
            if bad:
                out.append(_where(p, lib, f"field '{name}' has unescaped {' '.join(bad)}",
                                  "write \\& \\% \\# \\_ (LaTeX stops on the raw character)"))  # fmt: skip
    return out


def _given_name(name: str) -> str:
    parts = [s.strip() for s in name.split(",")]
    return parts[-1] if len(parts) >= 2 else name


def author_rules(lib: Library, meta: Metadata | None = None) -> list[str]:
    out = []
    for p in lib:
        raw = p.fields.get("author", "")
        if not raw:
            continue
        if any(0xFE00 <= ord(c) <= 0xFE0F or c in "\u200b\u200c\u200d\u2060\ufeff" for c in raw):
            out.append(_where(p, lib, "author list holds an invisible character",
                              "remove it; two names fused by it need an ' and ' between"))  # fmt: skip
        if any(ord(c) > 127 for c in raw):
            out.append(_where(p, lib, "author list holds a non-ASCII character",
                              "write accents as LaTeX (\\'e) and drop quoted nicknames: "
                              "BibTeX abbreviates given names byte by byte"))  # fmt: skip
        for name in split_names(raw):
            if name.startswith("{") and name.endswith("}") or name.lower() == "others":
                continue
            given = _given_name(name)
            if given[:1].islower():
                out.append(_where(p, lib, f"author '{name}' starts in lower case (BibTeX "
                                  "reads it as a 'von' part)", "capitalise the given name"))  # fmt: skip
            if is_corporate(name):
                out.append(_where(p, lib, f"team author '{name}' is not braced",
                                  f"write {{{name}}} so that BibTeX keeps it whole"))  # fmt: skip
        if meta and meta.authors and p.eprint and not p.curated:
            rec = meta.authors.get(p.eprint)
            if rec and not clear_title_match(str(rec.get("title") or ""), p.title):
                out.append(_where(p, lib, f"authors of arXiv {p.eprint} come from a record of "
                                  f"another title ('{str(rec.get('title'))[:50]}')",
                                  "remove the authors or correct them in curated.bib"))  # fmt: skip
    return out


def date_rules(
    lib: Library, meta: Metadata | None = None, today: datetime.date | None = None
) -> list[str]:
    day = today or datetime.date.today()
    out = []
    for p in lib:
        year = p.year
        if year is None:
            continue
        if not re.fullmatch(r"\d{4}", year):
            out.append(_where(p, lib, f"year {year!r} is not a year", "write four digits"))
            continue
        month_raw = p.fields.get("month", "").strip().lower()[:3]
        month = _MONTHS.index(month_raw) + 1 if month_raw in _MONTHS else None
        if (int(year), month or 1) > (day.year, day.month):
            out.append(_where(p, lib, f"date {year}-{month or '?'} is after today ({day})",
                              "a paper cannot have appeared yet; remove the date"))  # fmt: skip
        pre = arxiv_date(p.eprint)
        if pre is None:
            continue
        if month and (int(year), month) != pre:
            out.append(_where(p, lib, f"{p.fields['month']} {year} is not the arXiv date of "
                              f"{p.eprint} ({_MONTHS[pre[1] - 1].title()} {pre[0]})",
                              "a venue fixes only its year: remove the month"))  # fmt: skip
        if p.venue is None or p.venue.startswith("arXiv preprint"):
            if int(year) != pre[0]:
                out.append(_where(p, lib, f"preprint year {year} is not the year of arXiv "
                                  f"{p.eprint} ({pre[0]})", f"write year = {{{pre[0]}}}"))  # fmt: skip
    return out


def link_rules(lib: Library, meta: Metadata | None = None) -> list[str]:
    out = []
    by_url: dict[str, list[Paper]] = defaultdict(list)
    papers_by_repo: dict[str, list[Paper]] = defaultdict(list)
    for p in lib:
        for name in ("url", "code", "website"):
            u = p.fields.get(name, "")
            query = u.partition("?")[2].partition("#")[0]
            if any(TRACKING_PARAMS.match(q.split("=")[0]) for q in query.split("&") if q):
                out.append(_where(p, lib, f"{name} has tracking parameters: {u[:60]}",
                                  "remove the query parameters (gclid, utm_..., ...)"))  # fmt: skip
        is_arxiv, aid, _raw = parse_arxiv_url(p.url or "")
        if is_arxiv and aid != p.eprint:
            out.append(_where(p, lib, f"url points at arXiv {aid}, not at this entry's eprint "
                              f"({p.eprint or 'none'})", "use the entry's own link"))  # fmt: skip
        if p.url and not github_repo(p.url):
            by_url[norm_url(p.url) or ""].append(p)
        if p.eprint and github_repo(p.code):
            papers_by_repo[str(github_repo(p.code))].append(p)
        if p.title.rstrip().endswith(":"):
            out.append(_where(p, lib, "title ends with ':'", "give the full title"))
        if meta and p.eprint and ":" not in p.title:
            full = str(meta.authors.get(p.eprint, {}).get("title") or "")
            if ":" in full and norm_title(full.split(":")[0]) == norm_title(p.title):
                out.append(_where(p, lib, f"bare name; the metadata gives the title '{full[:60]}'",
                                  "write the full title"))  # fmt: skip
    for _u, ps in sorted(by_url.items()):
        if len({norm_title(p.title) for p in ps}) > 1:
            for p in ps:
                others = ", ".join(q.key for q in ps if q is not p)
                out.append(_where(p, lib, f"url {p.url} is also the url of {others}",
                                  "give each work its own link"))  # fmt: skip
    for p in lib:
        repo = github_repo(p.url) or (github_repo(p.code) if not p.eprint else None)
        if p.eprint or not repo:
            continue
        for q in papers_by_repo.get(repo, []):
            name = norm_title(q.title.split(":")[0])
            if norm_title(p.title) in (name, norm_title(q.title)):
                out.append(_where(p, lib, f"the same work as {q.key} (its repository entry)",
                                  f"merge it into {q.key}"))  # fmt: skip
    return out


def preprint_rules(lib: Library, meta: Metadata | None = None) -> list[str]:
    out = []
    for p in lib:
        venue = p.fields.get("booktitle") or p.fields.get("journal") or ""
        if p.entry_type == "inproceedings" and len(venue.split()) < 3:
            out.append(_where(p, lib, f"booktitle {venue!r} is an abbreviation",
                              "write the full venue name, e.g. " + (
                                  (venue_entry(venue) or ("", "the proceedings' name"))[1])))  # fmt: skip
        if p.entry_type == "article" and venue_entry(venue):
            out.append(_where(p, lib, f"journal {venue!r} is an abbreviation",
                              f"write {venue_entry(venue)[1]}"))  # type: ignore[index]  # fmt: skip
        if not p.eprint:
            continue
        if p.fields.get("archiveprefix", "").lower() != "arxiv":
            out.append(_where(p, lib, "eprint without archivePrefix = {arXiv}", "add it"))
        preprint = p.entry_type in ("misc", "article", "unpublished", "techreport") and (
            not venue or venue.startswith("arXiv")
        )
        if not preprint:
            continue
        shown = p.fields.get("howpublished", "") + p.fields.get("journal", "")
        if f"arXiv:{p.eprint}" not in shown:
            what = "howpublished" if p.entry_type != "article" else "journal"
            out.append(_where(p, lib, "preprint whose arXiv id the classic styles do not print",
                              f"add {what} = {{arXiv preprint arXiv:{p.eprint}}}"))  # fmt: skip
        if p.fields.get("doi", "").strip() != arxiv_doi(p.eprint):
            out.append(_where(p, lib, "preprint without its arXiv DOI",
                              f"add doi = {{{arxiv_doi(p.eprint)}}}"))  # fmt: skip
    return out


RULES: dict[str, Callable[..., list[str]]] = {
    "bibtex": bibtex_rules,
    "authors": author_rules,
    "dates": date_rules,
    "links": link_rules,
    "preprints": preprint_rules,
}


def check_entries(lib: Library, meta: Metadata | None = None) -> list[str]:
    """Every rule set on ``lib``, problems in file order."""
    out = [line for rule in RULES.values() for line in rule(lib, meta)]
    return sorted(out, key=lambda s: int(m.group(1)) if (m := re.match(r".*?:(\d+): ", s)) else 0)
