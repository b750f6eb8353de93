"""Phase 4 of an import: the new entries merged with ``curated.bib`` and the old ``papers.bib``.

``curated.bib`` wins and is never written; its preprints get the fields every style prints
(``howpublished``/``journal``, ``doi``) when they lack them. Known papers keep their key
(matched by arXiv id, else link, else title). A field the importer wrote and someone then
edited by hand is kept (``importsig`` remembers a short hash of what the importer wrote).
Papers no longer in the list stay, with ``listed = {no}``. :func:`build_entries` returns the
entries and every decision as an :class:`EntriesResult`; it writes no report.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from diffusion_notes.bib.authors import AuthorDecision
from diffusion_notes.bib.entryfields import arxiv_doi, preprint_note
from diffusion_notes.bib.ids import Record
from diffusion_notes.bib.keys import mint_key, norm_title, norm_url, same_title
from diffusion_notes.bib.listparse import arxiv_year
from diffusion_notes.bib.store import Library, Paper, make_paper

# Fields the importer owns outright (rewritten at every import).
LIST_FIELDS = ("sections", "listed", "listids", "flags", "origin", "importsig")
# Fields the importer fills but a hand edit may take over (tracked by ``importsig``).
MANAGED_FIELDS = (
    "@type", "title", "author", "booktitle", "journal", "howpublished", "year", "month",
    "eprint", "archiveprefix", "primaryclass", "doi", "url", "code", "website",
)  # fmt: skip


def _sig(value: str) -> str:
    return hashlib.sha1(value.encode("utf-8")).hexdigest()[:6]


def _parse_sig(text: str | None) -> dict[str, str]:
    out = {}
    for part in (text or "").split():
        if ":" in part:
            k, v = part.split(":", 1)
            out[k] = v
    return out


def _managed_values(entry_type: str, fields: dict[str, str]) -> dict[str, str]:
    vals = {"@type": entry_type}
    for name in MANAGED_FIELDS[1:]:
        if fields.get(name):
            vals[name] = fields[name]
    return vals


class _Index:
    """Existing entries by arXiv id, link and title (for identity)."""

    def __init__(self, papers: list[Paper]):
        self.by_id: dict[str, list[Paper]] = defaultdict(list)
        self.by_url: dict[str, list[Paper]] = defaultdict(list)
        self.by_title: dict[str, list[Paper]] = defaultdict(list)
        for p in papers:
            ids = {p.eprint} if p.eprint else set()
            ids.update(x for x in re.split(r"[,\s]+", p.fields.get("listids", "")) if x)
            for i in ids:
                self.by_id[i].append(p)
            for u in (p.url, p.fields.get("code")):
                nu = norm_url(u)
                if nu:
                    self.by_url[nu].append(p)
            self.by_title[norm_title(p.title)].append(p)

    def find(self, rec: Record, used: set[str]) -> Paper | None:
        ids = ([rec.arxiv_id] if rec.arxiv_id else []) + [
            i for i in rec.listids if i != rec.arxiv_id
        ]
        for i in ids:
            # Prefer an entry whose eprint is the id, then one that only listed it.
            cands = [p for p in self.by_id.get(i, []) if p.key not in used]
            cands.sort(key=lambda p: (p.eprint != i, not same_title(p.title, rec.title)))
            for p in cands:
                if same_title(p.title, rec.title):
                    return p
        if not rec.arxiv_id:
            # A link identifies a paper without an arXiv id only among entries without one
            # (a repository link is shared by the repo entry and its paper).
            for u in (rec.pick("paper_url"), rec.pick("title_url")):
                for p in self.by_url.get(norm_url(u) or "", []):
                    if p.key not in used and not p.eprint and same_title(p.title, rec.title):
                        return p
        for p in self.by_title.get(norm_title(rec.title), []):
            if p.key not in used and (not rec.arxiv_id or not p.eprint or p.eprint in rec.listids):
                return p
        return None


def _join(values: list[str]) -> str:
    return "; ".join(v.replace(";", ",") for v in values)


@dataclass(frozen=True)
class Draft:
    """One list paper as phases 2 and 3 decided it, before its key is known."""

    record: Record
    authors: AuthorDecision
    entry_type: str
    fields: dict[str, str]  # plain text
    flags: list[str]  # the record's, the authors' and the fields' flags


@dataclass(frozen=True)
class EntriesResult:
    """Every entry of the new ``papers.bib`` and what :func:`build_entries` decided."""

    papers: list[Paper]
    drafts: list[Draft]  # the list papers not taken over by curated.bib
    added: list[tuple[str, str]]
    updated: list[tuple[str, list[str]]]
    unchanged: list[str]
    marked_removed: list[tuple[str, str]]
    still_unlisted: list[str]
    hand_edits_kept: list[str]
    curated_notes: list[str]
    authors_dropped: list[str]  # keys whose old entry had authors and the new one has none
    merged_into: list[str]  # "old -> new": a repository entry merged into its paper


def _key_year(rec: Record) -> int | None:
    """The year a new key is minted with: the one keys have always used (venue year, else
    the list's date, else the arXiv id's), so that a key never changes. Only the key: the
    ``year`` field follows :mod:`~diffusion_notes.bib.entryfields`."""
    venue_year = next((it.venue_year for it in rec.items if it.venue), None)
    listed = next((it.year for it in rec.items if it.year), None)
    return venue_year or listed or (arxiv_year(rec.arxiv_id) if rec.arxiv_id else None)


def _repo_lines(rec: Record, key: str) -> dict[tuple[str, str], str]:
    """(link, title) of the record's repository lines (no arXiv id) -> the paper's key."""
    if not rec.arxiv_id:
        return {}
    return {
        (norm_url(it.title_url) or "", norm_title(it.title)): key
        for it in rec.items
        if it.title_url and not any(a.id for a in it.arxiv)
    }


def _curated_preprint_fields(p: Paper) -> dict[str, str]:
    """Fields a curated arXiv preprint lacks for the classic styles to print its id."""
    if not p.eprint or p.entry_type not in ("misc", "article", "unpublished"):
        return {}
    add: dict[str, str] = {}
    if p.entry_type == "article" and "journal" not in p.fields:
        add["journal"] = preprint_note(p.eprint)
    elif p.entry_type != "article" and not ({"howpublished", "journal"} & set(p.fields)):
        add["howpublished"] = preprint_note(p.eprint)
    if "doi" not in p.fields:
        add["doi"] = arxiv_doi(p.eprint)
    if "archiveprefix" not in p.fields:
        add["archiveprefix"] = "arXiv"
    return add


def build_entries(
    records: list[Record],
    draft: Callable[[Record], Draft],
    existing: Library | None,
    curated: Library | None,
) -> EntriesResult:
    """Merge list records with the curated and existing entries (``draft`` turns a record
    that curated.bib does not hold into its entry fields)."""
    added: list[tuple[str, str]] = []
    updated: list[tuple[str, list[str]]] = []
    unchanged: list[str] = []
    marked_removed: list[tuple[str, str]] = []
    still_unlisted: list[str] = []
    hand_edits_kept: list[str] = []
    curated_notes: list[str] = []
    drafts: list[Draft] = []
    merged_into: list[str] = []
    folded: dict[tuple[str, str], str] = {}
    old = list(existing.entries.values()) if existing else []
    cur = list(curated.entries.values()) if curated else []
    old_by_key = {p.key: p for p in old}
    taken = {p.key.lower() for p in old} | {p.key.lower() for p in cur}
    out: dict[str, Paper] = {}
    used: set[str] = set()

    # Curated entries first: the list only adds sections and links to them.
    cur_index = _Index(cur)
    cur_extra: dict[str, dict[str, list[str] | str]] = {}
    rest: list[Record] = []
    for rec in records:
        p = cur_index.find(rec, used)
        if p is None:
            rest.append(rec)
            continue
        used.add(p.key)
        folded.update(_repo_lines(rec, p.key))
        cur_extra[p.key] = {
            "sections": rec.sections,
            "listids": rec.listids,
            "code": rec.pick("code") or "",
            "website": rec.pick("website") or "",
            "flags": rec.flags,
        }
    for p in cur:
        fields = dict(p.fields)
        extra = cur_extra.get(p.key)
        plain: dict[str, str] = {"origin": "curated", **_curated_preprint_fields(p)}
        if extra:
            plain["sections"] = _join(list(extra["sections"]))
            plain["listed"] = "yes"
            plain["listids"] = " ".join(extra["listids"])
            if extra["code"] and "code" not in fields:
                plain["code"] = str(extra["code"])
            if extra["website"] and "website" not in fields and extra["website"] != p.url:
                plain["website"] = str(extra["website"])
        elif p.key in old_by_key and old_by_key[p.key].fields.get("listed"):
            plain["listed"] = "no"
            prev = old_by_key[p.key]
            for name in ("sections", "listids"):
                if prev.fields.get(name):
                    fields[name] = prev.fields[name]
        made = make_paper(p.key, p.entry_type, plain)
        fields.update(made.fields)
        for name in ("importsig", "flags"):
            fields.pop(name, None)
        out[p.key] = Paper(p.key, p.entry_type, fields)
        prev = old_by_key.get(p.key)
        if prev is not None and prev.fields.get("origin") != "curated":
            curated_notes.append(f"{p.key}: the curated entry replaces the imported one")
    for p in old:
        if p.fields.get("origin") == "curated" and p.key not in out:
            out[p.key] = p
            curated_notes.append(f"{p.key}: no longer in curated.bib; kept as it was")

    # List papers: find each one's existing entry, those with an arXiv id first (so that an
    # entry without id cannot take the key of a paper that has one), then mint new keys.
    old_index = _Index([p for p in old if p.key not in out])
    found: dict[int, Paper] = {}
    for with_id in (True, False):
        for i, rec in enumerate(rest):
            if bool(rec.arxiv_id) == with_id:
                prev = old_index.find(rec, used)
                if prev is not None:
                    found[i] = prev
                    used.add(prev.key)
    for i, rec in enumerate(rest):
        d = draft(rec)
        drafts.append(d)
        entry_type, plain, authors = d.entry_type, d.fields, d.authors.names
        prev = found.get(i)
        if prev is not None:
            key = prev.key
        else:
            first = next((a for a in authors if a != "others"), None)
            key = mint_key(first, _key_year(rec), rec.first.title, taken)
            taken.add(key.lower())
        new = make_paper(key, entry_type, plain, protect_title=True)
        new_fields = dict(new.fields)
        new_type = entry_type
        if prev is not None:
            new_type, new_fields = _keep_hand_edits(prev, entry_type, new_fields, hand_edits_kept)
        managed = _managed_values(entry_type, dict(new.fields))
        extra = make_paper(
            key,
            new_type,
            {
                "sections": _join(rec.sections),
                "listed": "yes",
                "listids": " ".join(rec.listids),
                "flags": _join(d.flags),
                "origin": "list",
            },
        ).fields
        new_fields.update(extra)
        if not d.flags:
            new_fields.pop("flags", None)
        if not rec.listids:
            new_fields.pop("listids", None)
        new_fields["importsig"] = " ".join(f"{k}:{_sig(v)}" for k, v in managed.items())
        out[key] = Paper(key, new_type, new_fields)
        folded.update(_repo_lines(rec, key))

    # Papers of the old file that the list no longer has (a repository entry now merged
    # into its paper is not kept: it would cite one work twice).
    for p in old:
        if p.key in out:
            continue
        into = next((k for u in (p.url, p.code) if (k := folded.get((norm_url(u) or "",
                     norm_title(p.title))))), None)  # fmt: skip
        if into and not p.eprint:
            merged_into.append(f"{p.key} -> {into}")
            continue
        fields = dict(p.fields)
        if fields.get("listed", "").lower() == "yes":
            marked_removed.append((p.key, p.title))
        else:
            still_unlisted.append(p.key)
        fields["listed"] = "no"
        out[p.key] = Paper(p.key, p.entry_type, fields)

    papers = sorted(out.values(), key=lambda p: p.key.lower())
    for p in papers:
        prev = old_by_key.get(p.key)
        if prev is None:
            added.append((p.key, p.title))
        elif prev.entry_type != p.entry_type or dict(prev.fields) != dict(p.fields):
            changed = sorted(
                {
                    k
                    for k in set(prev.fields) | set(p.fields)
                    if prev.fields.get(k) != p.fields.get(k)
                }
            )
            if prev.entry_type != p.entry_type:
                changed.insert(0, "@type")
            updated.append((p.key, changed))
        else:
            unchanged.append(p.key)
    authors_dropped = [
        p.key for p in papers
        if p.key in old_by_key and old_by_key[p.key].fields.get("author") and not p.fields.get("author")
    ]  # fmt: skip
    return EntriesResult(
        papers=papers, drafts=drafts, added=added, updated=updated, unchanged=unchanged,
        marked_removed=marked_removed, still_unlisted=still_unlisted,
        hand_edits_kept=hand_edits_kept, curated_notes=curated_notes,
        authors_dropped=authors_dropped, merged_into=merged_into,
    )  # fmt: skip


def _keep_hand_edits(
    prev: Paper, entry_type: str, new_fields: dict[str, str], hand_edits_kept: list[str]
) -> tuple[str, dict[str, str]]:
    """Managed fields of ``prev`` that differ from what the importer wrote last time win."""
    sig = _parse_sig(prev.fields.get("importsig"))
    if not sig:  # entry written by hand (no record of the importer's values): keep it all
        kept_type = prev.entry_type
        merged = {k: v for k, v in prev.fields.items() if k not in LIST_FIELDS}
        for k, v in new_fields.items():
            merged.setdefault(k, v)
        if any(
            prev.fields.get(k) != new_fields.get(k) for k in MANAGED_FIELDS[1:] if k in prev.fields
        ):
            hand_edits_kept.append(f"{prev.key}: entry has no importsig; its fields were kept")
        return kept_type, merged
    merged = dict(new_fields)
    kept: list[str] = []
    prev_vals = _managed_values(prev.entry_type, dict(prev.fields))
    for name in MANAGED_FIELDS:
        old_val = prev_vals.get(name)
        if name in sig:
            if old_val is None:  # deleted by hand
                if name != "@type" and name in merged:
                    merged.pop(name)
                    kept.append(f"{name} (deleted)")
            elif _sig(old_val) != sig[name]:  # edited by hand
                if name == "@type":
                    entry_type = old_val
                else:
                    merged[name] = old_val
                kept.append(name)
        elif old_val is not None and name != "@type":  # added by hand
            if merged.get(name) != old_val:
                merged[name] = old_val
                kept.append(f"{name} (added)")
    # Project fields the importer does not own (a hand-added note, volume, pages...).
    for k, v in prev.fields.items():
        if k not in MANAGED_FIELDS and k not in LIST_FIELDS and k not in merged:
            merged[k] = v
    if kept:
        hand_edits_kept.append(f"{prev.key}: {', '.join(kept)}")
    return entry_type, merged
