"""Commands: ``papers import|search|check`` and ``cite``.

diffusion-notes papers import README.md [--bib papers.bib] [--metadata DIR] [--dry-run]
diffusion-notes papers search QUERY [--section S] [--year Y] [--has-code]
diffusion-notes papers check [--bib papers.bib] [--docs docs]
diffusion-notes cite KEY...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from diffusion_notes.bib.store import BibError, Library, Paper, format_bibtex, load_library

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
        "query", nargs="*", help="words that must all occur (title, authors, key, id)"
    )
    srch.add_argument("--section", help="only papers in a section containing this text")
    srch.add_argument("--year", help="only papers of this year")
    srch.add_argument("--has-code", action="store_true", help="only papers with a code link")
    srch.add_argument("--bib", type=Path, default=None)
    srch.set_defaults(func=_cmd_search)

    chk = psub.add_parser("check", help="validate papers.bib and every [@key] in docs/")
    chk.add_argument("--bib", type=Path, default=None)
    chk.add_argument("--docs", type=Path, default=None, help="notes folder (default: repo's docs/)")
    chk.set_defaults(func=_cmd_check)

    cite = subparsers.add_parser("cite", help="print the BibTeX of one or more keys")
    cite.add_argument("keys", nargs="+", metavar="KEY")
    cite.add_argument("--bib", type=Path, default=None)
    cite.set_defaults(func=_cmd_cite)


def _load(bib: Path | None) -> Library:
    return load_library(bib or default_bib())


def _cmd_import(args: argparse.Namespace) -> int:
    from diffusion_notes.bib.importer import import_list

    bib = args.bib or default_bib()
    meta = args.metadata or default_metadata(bib)
    if meta is None:
        print("note: no paper metadata folder found; importing without authors", file=sys.stderr)
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
    print(report)
    return 0


def matches(
    paper: Paper, words: list[str], section: str | None, year: str | None, has_code: bool
) -> bool:
    """The search filter of ``papers search`` (all words, case-insensitive)."""
    if section and not any(section.lower() in s.lower() for s in paper.sections):
        return False
    if year and paper.year != str(year):
        return False
    if has_code and not paper.code:
        return False
    hay = " ".join(
        [paper.key, paper.title, " ".join(paper.authors), paper.eprint or "", paper.venue or ""]
    ).lower()
    return all(w.lower() in hay for w in words)


def _cmd_search(args: argparse.Namespace) -> int:
    try:
        lib = _load(args.bib)
    except BibError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    words = [w for q in args.query for w in q.split()]
    found = [p for p in lib if matches(p, words, args.section, args.year, args.has_code)]
    for p in found:
        venue = f"  [{p.venue}]" if p.venue else ""
        print(f"{p.key:32} {p.year or '----'}  {p.title}{venue}")
    print(f"{len(found)} of {len(lib)} papers", file=sys.stderr)
    return 0 if found else 1


def _cmd_check(args: argparse.Namespace) -> int:
    from diffusion_notes.bib.check import check_all

    bib = args.bib or default_bib()
    docs = args.docs or (bib.resolve().parent / "docs")
    lib, problems = check_all(bib, docs)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"ok: {bib} ({len(lib or [])} entries); citations in {docs} all resolve")
    return 0


def _cmd_cite(args: argparse.Namespace) -> int:
    try:
        lib = _load(args.bib)
    except BibError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    status = 0
    for key in args.keys:
        if key in lib:
            print(format_bibtex(lib.entries[key]))
        else:
            near = lib.closest(key)
            hint = f"closest: {', '.join(near)}" if near else "no similar key"
            print(f"error: unknown key '{key}' ({hint})", file=sys.stderr)
            status = 1
    return status
