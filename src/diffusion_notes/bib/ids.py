"""Phase 1 of an import: which arXiv id each list entry has, and which entries are one paper.

``resolve_ids`` decides every list item's id (see :mod:`diffusion_notes.bib.importer` for the
rules) and returns the records with the decisions it took; ``merge_records`` merges the records
that are one paper (same id and title, same title without id, or a repository entry and the
paper of that repository) and returns what it merged. Neither writes a report: the importer
builds it from the returned results.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from diffusion_notes.bib.keys import norm_title, norm_url, same_title
from diffusion_notes.bib.listparse import ListItem, github_repo
from diffusion_notes.bib.metadata import Metadata

# Query parameters that only track a click (ads, newsletters): dropped from every link.
TRACKING_PARAMS = re.compile(
    r"^(?:utm_\w+|gclid|gad_source|gbraid|wbraid|fbclid|msclkid|mc_[ce]id|ref_src|spm|igshid)$",
    re.I,
)


def clean_url(url: str | None) -> str | None:
    """``url`` without tracking parameters (``?gad_source=1&gclid=...``); None stays None."""
    if not url:
        return url
    base, sep, query = url.partition("?")
    if not sep:
        return url
    query, hsep, frag = query.partition("#")
    kept = [p for p in query.split("&") if p and not TRACKING_PARAMS.match(p.split("=")[0])]
    return base + ("?" + "&".join(kept) if kept else "") + (hsep + frag if hsep else "")


def _title_rank(title: str) -> tuple[int, int]:
    """Prefer the fuller title, then the one that kept its capitals (``MCVD`` over ``McVd``)."""
    return len(norm_title(title).split()), sum(c.isupper() for c in title)


@dataclass
class Record:
    """One paper assembled from one or more list items."""

    items: list[ListItem]
    arxiv_id: str | None
    listids: list[str]
    flags: list[str]

    @property
    def first(self) -> ListItem:
        return self.items[0]

    @property
    def title(self) -> str:
        """The best title its lines give (the fullest, then the best-capitalised)."""
        return max((it.title for it in self.own_items), key=_title_rank)

    @property
    def sections(self) -> list[str]:
        out: list[str] = []
        for it in self.items:
            if it.section not in out:
                out.append(it.section)
        return out

    @property
    def own_items(self) -> list[ListItem]:
        """The lines whose links are this paper's: those that give its arXiv id, or no id at
        all. A line whose id was ruled out may carry another paper's code or website."""
        if not self.arxiv_id:
            return self.items
        own = [it for it in self.items if self.arxiv_id in _item_ids(it) or not _item_ids(it)]
        return own or self.items

    def pick(self, name: str):
        """First non-empty value of an item attribute among :attr:`own_items`, in list order."""
        for it in self.own_items:
            v = getattr(it, name)
            if v:
                return v
        return None


def _item_ids(item: ListItem) -> list[str]:
    return [a.id for a in item.arxiv if a.id]


# ----------------------------------------------------------------------------- ids


def _source_repo(rec: dict) -> str | None:
    m = re.match(r"^([\w.-]+/[\w.-]+):", rec.get("source", ""))
    return m.group(1).lower() if m else None


def _author_evidence(meta: Metadata, aid: str, item: ListItem) -> str | None:
    """Why the ``authors.json`` record of ``aid`` is this entry's paper, or None."""
    rec = meta.authors.get(aid)
    if not rec:
        return None
    if rec.get("title") and same_title(rec["title"], item.title):
        return "its authors.json record has this title"
    repo = _source_repo(rec)
    if repo and repo == github_repo(item.code):
        return f"its authors.json record comes from this entry's repository {repo}"
    return None


def _issues_by_title(meta: Metadata) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for e in meta.issues:
        if e.get("title"):
            out[norm_title(e["title"])].append(e)
    return out


@dataclass(frozen=True)
class IdResult:
    """What :func:`resolve_ids` decided: one record per list item, and why ids changed."""

    records: list[Record]
    decisions: list[str]  # "line N 'title': what was decided and why"
    shared_ids: list[str]  # different papers given one id, and how that was settled


def resolve_ids(items: list[ListItem], meta: Metadata) -> IdResult:
    """One record per item with its arXiv id decided (merging comes after)."""
    decisions: list[str] = []
    owners: dict[str, list[int]] = defaultdict(list)
    for i, it in enumerate(items):
        ta = it.title_arxiv
        if ta and ta.id:
            owners[ta.id].append(i)
    issues = _issues_by_title(meta)

    def owned_elsewhere(aid: str, i: int) -> ListItem | None:
        for j in owners.get(aid, []):
            if j != i and not same_title(items[j].title, items[i].title):
                return items[j]
        return None

    def evidence_id(i: int) -> tuple[str, str] | None:
        """(id, source) from list_id_issues when it names exactly one other id."""
        for e in issues.get(norm_title(items[i].title), []):
            if (
                e.get("kind") == "source_title_match_has_other_id"
                and len(e.get("other_ids", {})) == 1
            ):
                cand = next(iter(e["other_ids"]))
                if owned_elsewhere(cand, i) is None:
                    return cand, ", ".join(e.get("examples", [])[:2])
        return None

    records: list[Record] = []
    for i, it in enumerate(items):
        where = f"line {it.line} '{it.title[:60]}'"
        flags: list[str] = []
        ids: list[str] = []
        for a in it.arxiv:
            if a.id and a.id not in ids:
                ids.append(a.id)
        listids = list(ids)
        ta = it.title_arxiv
        if ta and ta.id is None:
            msg = f"title link has a malformed arXiv id {ta.raw!r}"
            msg += f"; used the badge's {ids[0]}" if ids else ""
            flags.append(msg)
            decisions.append(f"{where}: {msg}")
        if len(ids) > 1:
            keep = []
            for a in ids:
                other = owned_elsewhere(a, i)
                if other is not None:
                    msg = f"arXiv {a} dropped: it is the id of '{other.title[:60]}' (line {other.line})"
                    flags.append(msg)
                    decisions.append(f"{where}: {msg}")
                else:
                    keep.append(a)
            if len(keep) > 1:
                matched = [a for a in keep if _author_evidence(meta, a, it)]
                if len(matched) == 1:
                    msg = f"links disagree ({', '.join(keep)}); kept {matched[0]}: " + str(
                        _author_evidence(meta, matched[0], it)
                    )
                    flags.append(msg)
                    decisions.append(f"{where}: {msg}")
                    keep = matched
            if len(keep) > 1:
                chosen = ta.id if ta and ta.id in keep else keep[0]
                msg = f"links disagree ({', '.join(keep)}); kept the title link's {chosen}"
                flags.append(msg)
                decisions.append(f"{where}: {msg}")
                keep = [chosen]
            ids = keep
        aid = ids[0] if ids else None
        if aid:
            for e in issues.get(norm_title(it.title), []):
                if (
                    e.get("kind") == "list_id_belongs_to_other_title"
                    and e.get("id") == aid
                    and not any(same_title(t, it.title) for t in e.get("source_titles", []))
                ):
                    src = "; ".join(e.get("source_titles", []))[:80]
                    msg = f"arXiv {aid} dropped: it belongs to '{src}' ({', '.join(e.get('examples', [])[:1])})"
                    flags.append(msg)
                    decisions.append(f"{where}: {msg}")
                    aid = None
                    break
        if aid is None:
            ev = evidence_id(i)
            if ev:
                aid = ev[0]
                msg = f"arXiv {aid} taken from cross-checked sources ({ev[1]}); the list gives " + (
                    ", ".join(listids) if listids else "no arXiv link"
                )
                flags.append(msg)
                decisions.append(f"{where}: {msg}")
        if aid and aid not in listids:
            listids.append(aid)
        records.append(Record(items=[it], arxiv_id=aid, listids=listids, flags=flags))

    shared = _settle_shared_ids(records, meta, evidence_id)
    return IdResult(records=records, decisions=decisions, shared_ids=shared)


def _cluster(recs: list[Record]) -> list[list[Record]]:
    groups: list[list[Record]] = []
    for r in recs:
        for g in groups:
            if same_title(g[0].title, r.title):
                g.append(r)
                break
        else:
            groups.append([r])
    return groups


def _settle_shared_ids(records: list[Record], meta: Metadata, evidence_id) -> list[str]:
    """Different titles under one id: decide which keeps it; returns one line per id."""
    shared: list[str] = []
    index = {id(r.first): i for i, r in enumerate(records)}
    by_id: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        if r.arxiv_id:
            by_id[r.arxiv_id].append(r)
    for aid in sorted(by_id):
        groups = _cluster(by_id[aid])
        if len(groups) < 2:
            continue
        titles = " / ".join(f"'{g[0].title[:50]}' (line {g[0].first.line})" for g in groups)
        winners = [g for g in groups if any(_author_evidence(meta, aid, r.first) for r in g)]
        keepers = winners if len(winners) == 1 else groups
        moved = []
        for g in groups:
            if g in keepers and len(keepers) == 1:
                continue
            for r in g:
                ev = evidence_id(index[id(r.first)])
                if ev and ev[0] != aid:
                    r.arxiv_id = ev[0]
                    if ev[0] not in r.listids:
                        r.listids.append(ev[0])
                    r.flags.append(
                        f"arXiv {aid} is shared with another list entry; used {ev[0]} ({ev[1]})"
                    )
                    moved.append(f"'{r.title[:40]}' -> {ev[0]}")
                elif len(keepers) == 1:
                    r.arxiv_id = None
                    r.flags.append(
                        f"arXiv {aid} dropped: shared with '{keepers[0][0].title[:50]}', whose "
                        "authors.json record it matches"
                    )
                    moved.append(f"'{r.title[:40]}' -> no arXiv id")
        left = [g for g in groups if g[0].arxiv_id == aid]
        if len(left) > 1:
            for g in left:
                for r in g:
                    r.flags.append(f"arXiv {aid} is also given to a different paper in the list")
            shared.append(f"{aid}: {titles}: kept as {len(left)} entries sharing the id")
        else:
            shared.append(f"{aid}: {titles}: resolved ({'; '.join(moved)})")
    return shared


@dataclass(frozen=True)
class MergeResult:
    """What :func:`merge_records` did: the papers, and which lines became one paper."""

    records: list[Record]
    merged: list[str]  # "'title' (lines a, b): sections ..."
    same_title_ids: list[str]  # one title under several ids (kept apart, reported)


def _absorb(target: Record, r: Record) -> None:
    target.items.extend(r.items)
    for a in r.listids:
        if a not in target.listids:
            target.listids.append(a)
    for f in r.flags:
        if f not in target.flags:
            target.flags.append(f)


def merge_records(records: list[Record]) -> MergeResult:
    """Records of one paper become one: same id and title, same title without id, and a
    repository entry (title links to GitHub, no arXiv id) with the paper of that repository
    (same repository, and the entry's name is the paper's title or its name part)."""
    out: list[Record] = []
    by_key: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        ident = f"arxiv:{r.arxiv_id}" if r.arxiv_id else f"title:{norm_title(r.title)}"
        target = next((o for o in by_key[ident] if same_title(o.title, r.title)), None)
        if target is None:
            by_key[ident].append(r)
            out.append(r)
            continue
        _absorb(target, r)
    papers_by_repo: dict[str, list[Record]] = defaultdict(list)
    for r in out:
        repo = github_repo(r.pick("code"))
        if r.arxiv_id and repo:
            papers_by_repo[repo].append(r)
    kept: list[Record] = []
    for r in out:
        repo = github_repo(r.first.title_url) if not r.arxiv_id else None
        paper = next(
            (p for p in papers_by_repo.get(repo or "", []) if _names_paper(r.title, p.title)), None
        )
        if paper is None:
            kept.append(r)
            continue
        _absorb(paper, r)
        paper.flags.append(
            f"the list also has this work as a repository entry (line {r.first.line})"
        )
    merged = [
        f"'{r.title[:60]}' (lines {', '.join(str(it.line) for it in r.items)}): "
        f"sections {'; '.join(r.sections)}"
        for r in kept
        if len(r.items) > 1
    ]
    same_title_ids: dict[str, list[Record]] = defaultdict(list)
    for r in kept:
        same_title_ids[norm_title(r.title)].append(r)
    shared = [
        f"same title under different ids ({', '.join(str(r.arxiv_id) for r in recs)}): "
        f"'{recs[0].title[:60]}'"
        for recs in same_title_ids.values()
        if len(recs) > 1
    ]
    return MergeResult(records=kept, merged=merged, same_title_ids=shared)


def _names_paper(name: str, title: str) -> bool:
    """``Show-1`` names ``Show-1: Marrying Pixel and ...`` (the whole title or its name part)."""
    n = norm_title(name)
    return bool(n) and n in (norm_title(title), norm_title(title.split(":")[0]))


def ambiguous_urls(records: list[Record]) -> dict[str, list[str]]:
    """Title links given to works with different titles (``sora.com`` for Sora and Veo 2):
    normalised url -> the titles. Such a link is kept only by the work it names."""
    titles: dict[str, list[str]] = defaultdict(list)
    for r in records:
        for it in r.items:
            u = norm_url(it.title_url)
            if (
                u
                and not github_repo(it.title_url)
                and not any(same_title(t, it.title) for t in titles[u])
            ):
                titles[u].append(it.title)
    return {u: ts for u, ts in titles.items() if len(ts) > 1}
