"""Citation syntax: scanning sources (with lines) and linking rendered HTML."""

from __future__ import annotations

from pathlib import Path

import pytest

from diffusion_notes.bib.citations import (
    link_citations,
    references_html,
    scan_source,
    short_label,
    unknown_keys_message,
)
from diffusion_notes.bib.store import load_library
from tests.conftest import REPO


@pytest.fixture(scope="module")
def library():
    return load_library(REPO / "papers.bib")


def test_scan_markdown_skips_code_and_numbers_lines() -> None:
    text = "\n".join([
        "# Title",
        "One [@a2020x] and two [@b2021y; @c2022z].",
        "```python",
        "x = '[@not_a_citation]'",
        "```",
        "Inline `[@nope]` is code; [@d2023w] is not.",
        "With locators [@e2024v, Eq. 5] and [@f2025u, Sec. 3.4; @g2026t].",
    ])
    found = [(c.key, c.line) for c in scan_source(text, is_lab=False)]
    assert found == [("a2020x", 2), ("b2021y", 2), ("c2022z", 2), ("d2023w", 6),
                     ("e2024v", 7), ("f2025u", 7), ("g2026t", 7)]


def test_scan_lab_reads_only_markdown_cells() -> None:
    text = "\n".join([
        "# %% [markdown]",
        "# As in [@a2020x].",
        "# %%",
        "s = '[@in_code]'",
        "# %% [markdown]",
        "# And [@b2021y].",
    ])
    assert [(c.key, c.line) for c in scan_source(text, is_lab=True)] == [("a2020x", 2),
                                                                        ("b2021y", 6)]


def test_unknown_key_message_names_page_line_and_neighbours(library) -> None:
    cites = scan_source("intro\nsee [@ho2020denoisin]\n", is_lab=False)
    message = unknown_keys_message("docs/x.md", cites, library)
    assert message is not None
    assert message.startswith("docs/x.md:2: unknown citation key 'ho2020denoisin'")
    assert "ho2020denoising" in message
    assert unknown_keys_message("docs/x.md", scan_source("[@ho2020denoising]", is_lab=False),
                                library) is None


def test_link_citations_outside_code_only(library) -> None:
    html = ("<p>DDPM [@ho2020denoising; @song2020denoising]. Eq. [@ho2020denoising, Eq. 5]</p>"
            "<pre><code>[@ho2020denoising]</code></pre><p>Again [@ho2020denoising].</p>")
    out, cited = link_citations(html, library, lambda k: f"../papers/#{k}")
    assert cited == ["ho2020denoising", "song2020denoising"]
    assert out.count('class="citation"') == 4
    assert ">Ho et al., 2020, Eq. 5</a>" in out
    assert "<pre><code>[@ho2020denoising]</code></pre>" in out
    assert 'href="../papers/#song2020denoising"' in out
    assert short_label(library["ho2020denoising"]) == "Ho et al., 2020"
    refs = references_html(cited, library, lambda k: f"../papers/#{k}")
    assert refs.count("<li") == 2 and 'id="references"' in refs


def test_library_has_the_keys_the_notes_cite(library) -> None:
    keys = {c.key for p in (REPO / "docs").rglob("*.md")
            for c in scan_source(p.read_text(encoding="utf-8"), is_lab=False)}
    assert keys, "the notes cite nothing?"
    assert keys <= set(library.entries), sorted(keys - set(library.entries))


def test_checks_page_lists_tests_and_backlinks(tmp_path: Path) -> None:
    from diffusion_notes.site.checks_page import (
        collect_references,
        collect_tests,
        render_checks_page,
    )

    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_demo.py").write_text(
        'def test_identity():\n    """One equals one."""\n    assert 1 == 1\n')
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "note.md").write_text('# Note\n\n<a id="eq-one"></a>\n\n$$1=1$$\n\n'
                                  "Checked by [`test_identity`](checks.md#test_identity)\n")
    tests = collect_tests(tmp_path / "tests", tmp_path)
    refs = collect_references(docs)
    assert [t.name for t in tests] == ["test_identity"]
    assert refs["test_identity"][0].anchor == "eq-one"
    page = render_checks_page(tests, refs)
    assert "{ #test_identity }" in page
    assert "[Note](note.md#eq-one)" in page
    assert "One equals one." in page


def test_malformed_citation_is_reported_not_dropped(library) -> None:
    cites = scan_source("ok [@ho2020denoising]\nbad [@ho2020denoising; Sec 2]\n", is_lab=False)
    message = unknown_keys_message("docs/x.md", cites, library)
    assert message is not None and message.startswith("docs/x.md:2: malformed citation")
