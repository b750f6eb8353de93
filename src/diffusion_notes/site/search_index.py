"""The site's search index after mkdocs built it: one document per paper, clean snippets.

The search plugin indexes a page per heading. The paper index has one heading and ~800
entries, so it became one huge document that ranked first for any paper word and landed at the
top of the page. Here it is replaced by a short page document plus one document per paper
(location ``papers/#<key>``, title the paper's title), so a search lands on the entry, which the
page highlights as the ``:target``. Every document's text also loses the page chrome the plugin
picked up ("¶", "Copied!") and shows its maths as plain text instead of raw TeX.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from diffusion_notes.bib.index_page import display_sections, venue_family
from diffusion_notes.bib.store import Library
from diffusion_notes.site.plaintext import clean_search_text, tex_to_text


def paper_documents(library: Library, page_location: str) -> list[dict[str, str]]:
    """One search document per paper, located at ``<page_location>#<key>``."""
    docs = []
    for key, paper in sorted(library.entries.items()):
        parts = [paper.authors_text if paper.has_authors else "",
                 paper.year or "", paper.venue or venue_family(paper.venue),
                 ", ".join(display_sections(paper)), f"key {key}"]
        if paper.eprint:
            parts.append(f"arXiv {paper.eprint}")
        text = " · ".join(html.escape(p) for p in parts if p)
        docs.append({"location": f"{page_location}#{key}",
                     "title": html.escape(tex_to_text(paper.title)),
                     "text": f"<p>{text}</p>"})
    return docs


def rewrite_search_index(index_file: Path, library: Library, page_location: str,
                         page_summary: str) -> tuple[int, int]:
    """Rewrite ``search_index.json`` in place; returns (documents before, documents after).

    ``page_location`` is the paper index's location in the index (``papers/``); its own
    documents are replaced by one with ``page_summary`` and one per paper.
    """
    data = json.loads(index_file.read_text(encoding="utf-8"))
    docs = data["docs"]
    before = len(docs)
    kept: list[dict] = []
    page_doc: dict | None = None
    for doc in docs:
        loc = doc.get("location", "")
        if loc == page_location or loc.startswith(page_location + "#"):
            if loc == page_location:
                page_doc = dict(doc, text=f"<p>{html.escape(page_summary)}</p>")
            continue
        doc["text"] = clean_search_text(doc.get("text", ""))
        doc["title"] = clean_search_text(doc.get("title", ""))
        kept.append(doc)
    if page_doc is not None:
        kept.append(page_doc)
        kept.extend(paper_documents(library, page_location))
    data["docs"] = kept
    tmp = index_file.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    tmp.replace(index_file)
    return before, len(kept)
