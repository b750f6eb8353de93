"""Commands: ``papers import|search|check`` and ``cite``.

diffusion-notes papers import README.md [--bib papers.bib] [--metadata DIR] [--dry-run]
                                         [--allow-removals]
diffusion-notes papers search PHRASE... [--section S] [--year Y] [--has-code]
diffusion-notes papers check [--bib papers.bib] [--docs docs] [--metadata DIR]
diffusion-notes cite KEY... [--format bibtex|biblatex|csl-json]
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path

from diffusion_notes.bib.store import BibError, Library, Paper, load_library

REPO_ROOT = Path(__file__).resolve().parents[3]


def default_bib() -> Path:
    """``papers.bib`` in the current folder, else at the repository root."""
    here = Path.cwd() / "papers.bib"
    return here if here.is_file() else REPO_ROOT / "papers.bib"


def default_metadata(bib: Path) -> Path | None:
    """``../shared/data/paper-metadata`` beside the repository holding ``bib``, if present."""
    for base in (bib.resolve().parent, REPO_ROOT):
        d = base.parent / "shared" / "data" / "paper-metadata"
        if d.is_dir():
            return d
    return None


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``papers`` (import, search, check) and ``cite`` to the main parser."""
    papers = subparsers.add_parser("papers", help="the paper index: import, search, check")
    psub = papers.add_subparsers(dest="papers_command", metavar="ACTION")
    papers.set_defaults(func=lambda a: (papers.print_help(), 2)[1])

    imp = psub.add_parser(
        "import", help="import the Awesome Video Diffusion README into papers.bib"
    )
    imp.add_argument("readme", type=Path, help="the list's README.md")
    imp.add_argument(
        "--bib", type=Path, default=None, help="papers.bib to update (default: repo's)"
    )
    imp.add_argument(
        "--curated", type=Path, default=None, help="curated.bib (default: beside --bib)"
    )
    imp.add_argument(
        "--metadata",
        type=Path,
        default=None,
        help="folder with authors.json and list_id_issues.json "
        "(default: ../shared/data/paper-metadata when present)",
    )
    imp.add_argument("--dry-run", action="store_true", help="report only, write nothing")
    imp.add_argument(
        "--allow-removals",
        action="store_true",
        help="write even if many listed entries would be marked removed or lose their authors",
    )
    imp.set_defaults(func=_cmd_import)

    srch = psub.add_parser("search", help="search papers.bib")
    srch.add_argument(
        "query",
        nargs="*",
        help="phrases that must all occur (title, authors, key, id, venue); each argument is "
        'one phrase, and "quoted words" inside an argument are one phrase too',
    )
    srch.add_argument("--section", help="only papers in a section containing this text")
    srch.add_argument(
        "--year", help="only papers that appeared in this year (a preprint's arXiv year counts)"
    )
    srch.add_argument("--has-code", action="store_true", help="only papers with a code link")
    srch.add_argument("--bib", type=Path, default=None)
    srch.set_defaults(func=_cmd_search)

    chk = psub.add_parser("check", help="validate papers.bib and every [@key] in docs/")
    chk.add_argument("--bib", type=Path, default=None)
    chk.add_argument("--docs", type=Path, default=None, help="notes folder (default: repo's docs/)")
    chk.add_argument(
        "--metadata",
        type=Path,
        default=None,
        help="folder with authors.json: also check authors and titles against it "
        "(default: ../shared/data/paper-metadata when present)",
    )
    chk.set_defaults(func=_cmd_check)

    cite = subparsers.add_parser("cite", help="print the citation of one or more keys")
    cite.add_argument("keys", nargs="+", metavar="KEY", help="keys (case-insensitive)")
    cite.add_argument(
        "--format",
        choices=["bibtex", "biblatex", "csl-json"],
        default="bibtex",
        help="bibtex (default), biblatex, or csl-json (pandoc, Zotero)",
    )
    cite.add_argument("--bib", type=Path, default=None)
    cite.set_defaults(func=_cmd_cite)


def _load(bib: Path | None) -> Library:
    return load_library(bib or default_bib())


def _cmd_import(args: argparse.Namespace) -> int:
    from diffusion_notes.bib.importer import import_list

    bib = args.bib or default_bib()
    meta = args.metadata or default_metadata(bib)
    try:
        report = import_list(
            args.readme,
            bib,
            curated_path=args.curated,
            metadata_dir=meta,
            dry_run=args.dry_run,
            allow_removals=args.allow_removals,
        )
    except BibError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    if meta is None:  # said after the import, so that a refused import prints errors only
        print("note: no paper metadata folder found; imported without authors", file=sys.stderr)
    print(report)
    return 0


def _norm(text: str) -> str:
    return " " + " ".join(re.findall(r"[\w.]+", text.lower())) + " "


def phrases(args: list[str]) -> list[str]:
    """Search phrases: each argument is one phrase; inside one, "quoted words" are a phrase
    and the other words separate ones (``'"video editing" diffusion'`` -> two phrases)."""
    out: list[str] = []
    for a in args:
        if '"' in a or "'" in a:
            try:
                out.extend(shlex.split(a))
            except ValueError:  # an unbalanced quote: read the argument as it is
                out.append(a.replace('"', ""))
        else:
            out.append(a)
    return [p for p in (" ".join(x.split()) for x in out) if p]


def matches(
    paper: Paper, words: list[str], section: str | None, year: str | None, has_code: bool
) -> bool:
    """The search filter of ``papers search``: every phrase occurs as whole words, in order
    (case and punctuation ignored); ``year`` is the year the paper appeared."""
    if section and not any(section.lower() in s.lower() for s in paper.sections):
        return False
    if year and paper.appeared != str(year):
        return False
    if has_code and not paper.code:
        return False
    hay = _norm(
        " ".join(
            [paper.key, paper.title, " ".join(paper.authors), paper.eprint or "", paper.venue or ""]
        )
    )
    return all(_norm(w) in hay for w in words)


def _cmd_search(args: argparse.Namespace) -> int:
    try:
        lib = _load(args.bib)
    except BibError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    words = phrases(args.query)
    found = [p for p in lib if matches(p, words, args.section, args.year, args.has_code)]
    for p in found:
        venue = f"  [{p.venue}]" if p.venue else ""
        print(f"{p.key:32} {p.year or '----'}  {p.title}{venue}")
    print(f"{len(found)} of {len(lib)} papers", file=sys.stderr)
    return 0 if found else 1


def _cmd_check(args: argparse.Namespace) -> int:
    from diffusion_notes.bib.metadata import Metadata
    from diffusion_notes.bib.validate import check_all

    bib = args.bib or default_bib()
    docs = args.docs or (bib.resolve().parent / "docs")
    try:
        meta = Metadata.load(args.metadata or default_metadata(bib))
    except BibError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    lib, problems = check_all(bib, docs, meta)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s)", file=sys.stderr)
        return 1
    against = f"; authors and titles checked against {meta.directory}" if meta.directory else ""
    print(
        f"ok: {bib} ({len(lib or [])} entries; bibtexparser and pybtex strict{against}); "
        f"citations in {docs} all resolve"
    )
    return 0


def _cmd_cite(args: argparse.Namespace) -> int:
    try:
        lib = _load(args.bib)
    except BibError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    from diffusion_notes.bib.export import render

    status = 0
    found: list[Paper] = []
    for key in args.keys:
        paper = lib.find(key)
        if paper is not None:
            found.append(paper)
            for flag in paper.flags:
                print(f"note: {paper.key}: {flag}", file=sys.stderr)
        else:
            near = lib.closest(key)
            hint = f"closest: {', '.join(near)}" if near else "no similar key"
            print(f"error: unknown key '{key}' ({hint})", file=sys.stderr)
            status = 1
    if found:
        print(render(found, args.format), end="")
    return status
