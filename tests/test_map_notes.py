"""The notes of the map of the field: each cites enough resolvable papers, draws its lineage and
links the paper index filtered to its branch."""

from __future__ import annotations

import re

import pytest

from diffusion_notes.bib.citations import scan_source
from diffusion_notes.bib.store import Library, load_library
from tests.conftest import REPO

MAP = REPO / "docs" / "map"
NOTES = ("text-to-image.md", "image-to-image.md", "image-editing.md", "video.md")
MIN_PAPERS = 8  # issue 14: every branch cites at least eight representative papers
INDEX_LINK = re.compile(r"\]\(\.\./papers/index\.md\?(?:[^)\s]*)(?:section|q)=[^)\s]+\)")


@pytest.fixture(scope="module")
def library() -> Library:
    return load_library(REPO / "papers.bib")


def complete_keys(text: str, library: Library) -> set[str]:
    """The distinct cited keys whose entry has authors, a title, a year and a link."""
    keys = {c.key for c in scan_source(text, is_lab=False) if not c.malformed}
    ok = set()
    for key in keys:
        paper = library.find(key)
        if paper is None:
            continue
        linked = paper.eprint or paper.url or paper.get("doi")
        if paper.has_authors and paper.title.strip() and paper.year and linked:
            ok.add(key)
    return ok


@pytest.mark.parametrize("name", NOTES)
def test_map_note_cites_enough_complete_papers(name: str, library: Library) -> None:
    text = (MAP / name).read_text(encoding="utf-8")
    cited = {c.key for c in scan_source(text, is_lab=False) if not c.malformed}
    complete = complete_keys(text, library)
    assert len(complete) >= MIN_PAPERS, (
        f"docs/map/{name} cites {len(complete)} complete papers (< {MIN_PAPERS}); "
        f"incomplete or unknown: {sorted(cited - complete)}")


@pytest.mark.parametrize("name", NOTES)
def test_map_note_has_lineage_diagram_and_filtered_index_link(name: str) -> None:
    text = (MAP / name).read_text(encoding="utf-8")
    assert re.search(r"^```mermaid\n(?:.*\n)*?```$", text, re.M), f"{name}: no mermaid diagram"
    assert INDEX_LINK.search(text), f"{name}: no link to the paper index with a filter"


def test_count_drops_when_a_note_loses_citations(library: Library) -> None:
    # The counter must see a drop: the same note with all but seven citations removed fails.
    text = (MAP / "image-editing.md").read_text(encoding="utf-8")
    keys = sorted(complete_keys(text, library))
    assert len(keys) >= MIN_PAPERS
    kept = keys[: MIN_PAPERS - 1]
    stripped = re.sub(r"\[@[^\]]*\]", "", text) + " ".join(f"[@{k}]" for k in kept)
    assert len(complete_keys(stripped, library)) == MIN_PAPERS - 1
    # an entry without a link does not count
    assert "vincent2011connection" in library
    assert complete_keys("[@vincent2011connection]", library) == set()


def test_overview_links_every_branch_note() -> None:
    text = (MAP / "index.md").read_text(encoding="utf-8")
    assert "```mermaid" in text
    for name in NOTES:
        assert f"]({name})" in text, f"docs/map/index.md does not link {name}"
