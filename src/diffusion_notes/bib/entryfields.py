"""Phase 3 of an import: the BibTeX fields of one paper, from its list lines and metadata.

* **Dates.** The arXiv id fixes the preprint's year and month (``2312.07509`` -> Dec 2023); a
  venue fixes only its own year (no month: the list does not say when the conference was);
  the list's dates say when the list added a line, so they are never a publication date. A
  date after today is dropped and flagged.
* **Type and venue.** A venue from :data:`VENUES` gives ``@inproceedings`` (``booktitle``) or
  ``@article`` (``journal``) with the full venue name; otherwise an arXiv paper is a ``@misc``
  preprint that every classic style prints: ``howpublished = {arXiv preprint arXiv:ID}``,
  ``eprint``, ``archivePrefix``, ``primaryClass`` (when the metadata names it) and the arXiv DOI
  ``10.48550/arXiv.ID``.
* **Title.** A bare name (``Allegro``) is completed from a clearly matching metadata record.
* **Links.** ``url`` is the arXiv page when there is an id; otherwise the work's own link
  without tracking parameters, never an arXiv link whose id was ruled out, and never a link the
  list also gives a differently named work (``sora.com`` on the Veo 2 line).
"""

from __future__ import annotations

import datetime
import re

from diffusion_notes.bib.authors import AuthorDecision
from diffusion_notes.bib.ids import Record, clean_url
from diffusion_notes.bib.keys import clear_title_match, norm_title, norm_url
from diffusion_notes.bib.listparse import MONTH_ABBR, parse_arxiv_url
from diffusion_notes.bib.metadata import Metadata

# Venue abbreviation as the list writes it -> (entry type, full name).
VENUES: dict[str, tuple[str, str]] = {
    "CVPR": ("inproceedings", "Proceedings of the IEEE/CVF Conference on Computer Vision and "
             "Pattern Recognition (CVPR)"),
    "ICCV": ("inproceedings", "Proceedings of the IEEE/CVF International Conference on Computer "
             "Vision (ICCV)"),
    "ECCV": ("inproceedings", "European Conference on Computer Vision (ECCV)"),
    "WACV": ("inproceedings", "IEEE/CVF Winter Conference on Applications of Computer Vision "
             "(WACV)"),
    "NEURIPS": ("inproceedings", "Advances in Neural Information Processing Systems (NeurIPS)"),
    "ICLR": ("inproceedings", "International Conference on Learning Representations (ICLR)"),
    "ICML": ("inproceedings", "International Conference on Machine Learning (ICML)"),
    "AAAI": ("inproceedings", "Proceedings of the AAAI Conference on Artificial Intelligence "
             "(AAAI)"),
    "SIGGRAPH": ("inproceedings", "ACM SIGGRAPH Conference Papers (SIGGRAPH)"),
    "SIGGRAPH ASIA": ("inproceedings", "ACM SIGGRAPH Asia Conference Papers (SIGGRAPH Asia)"),
    "ICASSP": ("inproceedings", "IEEE International Conference on Acoustics, Speech and Signal "
               "Processing (ICASSP)"),
    "GRAPP": ("inproceedings", "International Conference on Computer Graphics Theory and "
              "Applications (GRAPP)"),
    "ACM MM": ("inproceedings", "Proceedings of the ACM International Conference on Multimedia "
               "(ACM MM)"),
    "TMLR": ("article", "Transactions on Machine Learning Research (TMLR)"),
    "TPAMI": ("article", "IEEE Transactions on Pattern Analysis and Machine Intelligence"),
    "PAMI": ("article", "IEEE Transactions on Pattern Analysis and Machine Intelligence"),
    "TOG": ("article", "ACM Transactions on Graphics"),
    "IJCV": ("article", "International Journal of Computer Vision"),
    "TIP": ("article", "IEEE Transactions on Image Processing"),
    "TMM": ("article", "IEEE Transactions on Multimedia"),
    "TCSVT": ("article", "IEEE Transactions on Circuits and Systems for Video Technology"),
    "TVCG": ("article", "IEEE Transactions on Visualization and Computer Graphics"),
    "JMLR": ("article", "Journal of Machine Learning Research"),
    "NATURE": ("article", "Nature"),
}  # fmt: skip


def venue_entry(venue: str) -> tuple[str, str] | None:
    """(entry type, full name) of a venue abbreviation (``CVPR``, ``NeurIPS``), or None."""
    return VENUES.get(re.sub(r"\s+", " ", venue.replace(".", "")).strip().upper())


def arxiv_date(arxiv_id: str | None) -> tuple[int, int] | None:
    """(year, month) of a new-style arXiv id (``2312.07509`` -> (2023, 12))."""
    m = re.match(r"^(\d{2})(\d{2})\.\d{4,5}$", arxiv_id or "")
    return (2000 + int(m.group(1)), int(m.group(2))) if m else None


def arxiv_doi(arxiv_id: str) -> str:
    """The DOI arXiv registers for every paper (DataCite, ``10.48550/arXiv.<id>``)."""
    return f"10.48550/arXiv.{arxiv_id}"


def preprint_note(arxiv_id: str) -> str:
    """What Google Scholar and DBLP print for an arXiv preprint."""
    return f"arXiv preprint arXiv:{arxiv_id}"


def _full_title(rec: Record, meta: Metadata) -> tuple[str, str | None]:
    """The record's title, completed from metadata when the list has only a bare name."""
    title = rec.title
    data = meta.authors.get(rec.arxiv_id or "") or {}
    full = str(data.get("title") or "").strip()
    if ":" in title or ":" not in full or not clear_title_match(full, title):
        return title, None
    name, rest = full.split(":", 1)
    if norm_title(name) != norm_title(title) or len(rest.split()) < 2 or "$" in full:
        return title, None
    return f"{title}:{rest}", f"title completed from authors.json ('{full[:80]}')"


def _own_link(rec: Record, ambiguous: dict[str, list[str]]) -> tuple[str | None, list[str]]:
    """A non-arXiv link of the work itself (see module docstring), and flags."""
    flags: list[str] = []
    for it in rec.own_items:
        for u in (it.paper_url, it.title_url):
            if not u or parse_arxiv_url(u)[0]:
                continue
            others = ambiguous.get(norm_url(u) or "", [])
            words = [w for w in norm_title(it.title).split() if len(w) >= 3]
            if others and not any(w in (norm_url(u) or "") for w in words):
                other = next((t for t in others if norm_title(t) != norm_title(it.title)), "?")
                flag = f"the list's link {u} is also the link of '{other[:40]}'; not used"
                if flag not in flags:
                    flags.append(flag)
                continue
            return clean_url(u), flags
    return None, flags


def record_fields(
    rec: Record,
    authors: AuthorDecision,
    meta: Metadata,
    ambiguous: dict[str, list[str]],
    today: datetime.date,
) -> tuple[str, dict[str, str], list[str]]:
    """(entry type, plain-text fields, flags) of a list record (see module docstring)."""
    flags: list[str] = []
    title, note = _full_title(rec, meta)
    if note:
        flags.append(note)
    fields: dict[str, str] = {"title": title}
    if authors.names:
        fields["author"] = " and ".join(authors.names)
    entry_type = "misc"
    venue_item = next((it for it in rec.items if it.venue), None)
    year: int | None = None
    month: int | None = None
    if venue_item is not None:
        known = venue_entry(venue_item.venue or "")
        if known is None:
            entry_type, fields["booktitle"] = "inproceedings", str(venue_item.venue)
            flags.append(f"venue '{venue_item.venue}' has no full name in bib.entryfields.VENUES")
        else:
            entry_type = known[0]
            fields["booktitle" if entry_type == "inproceedings" else "journal"] = known[1]
        year = venue_item.venue_year
    pre = arxiv_date(rec.arxiv_id)
    if venue_item is None and pre:
        year, month = pre
    if year and (year, month or 1) > (today.year, today.month):
        flags.append(f"date {year}-{month or '?'} is in the future; left out")
        year = month = None
    if year:
        fields["year"] = str(year)
    if month:
        fields["month"] = MONTH_ABBR[month].lower()  # written as the macro (month = dec)
    if rec.arxiv_id:
        if entry_type == "misc":
            fields["howpublished"] = preprint_note(rec.arxiv_id)
            fields["doi"] = arxiv_doi(rec.arxiv_id)
        fields["eprint"] = rec.arxiv_id
        fields["archiveprefix"] = "arXiv"
        pc = meta.primary_class(rec.arxiv_id)
        if pc:
            fields["primaryclass"] = pc
        fields["url"] = f"https://arxiv.org/abs/{rec.arxiv_id}"
    else:
        url, link_flags = _own_link(rec, ambiguous)
        flags.extend(link_flags)
        if url:
            fields["url"] = url
    code = clean_url(rec.pick("code"))
    if code:
        fields["code"] = code
    website = clean_url(rec.pick("website"))
    if website and "url" not in fields:
        fields["url"] = website
    elif website and norm_url(website) != norm_url(fields.get("url")):
        fields["website"] = website
    return entry_type, fields, flags
