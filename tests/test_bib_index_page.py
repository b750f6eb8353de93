"""The paper index page: content, filters' data, and untrusted input rendered inert."""

from __future__ import annotations

from html.parser import HTMLParser

import markdown
import pytest

from diffusion_notes.bib.index_page import ASSETS, render_index, safe_http_url, venue_family
from diffusion_notes.bib.store import parse_bib_text

EVIL = r"""
@misc{evil2024script,
  title = {<script>alert("x")</script> \& <img src=x onerror=alert(1)>},
  author = {Mallory <b>Bold</b> and others},
  year = {2024},
  url = {javascript:alert(1)},
  code = {data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==},
  website = {  JaVa	ScRiPt:alert(2)},
  sections = {Video Generation; <i>Injected</i>},
  listed = {yes},
}

@inproceedings{ho2020denoising,
  title = {Denoising Diffusion Probabilistic Models},
  author = {Ho, Jonathan and Jain, Ajay and Abbeel, Pieter},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year = {2020},
  eprint = {2006.11239},
  code = {https://github.com/hojonathanho/diffusion},
  origin = {curated},
}

@misc{plain2023paper,
  title = {Plain Listed Paper},
  year = {2023},
  eprint = {2301.00001},
  website = {https://plain.example/},
  sections = {Video Editing},
  listed = {yes},
  flags = {only the first author is known},
}
"""


class Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def page():
    lib = parse_bib_text(EVIL, "evil.bib")
    md = render_index(
        lib, {"ho2020denoising": [("DDPM <notes>", "../ddpm/"), ("Bad", "javascript:x")]}
    )
    out = markdown.markdown(md, extensions=["md_in_html", "attr_list"])
    c = Collector()
    c.feed(out)
    return md, out, c


def test_untrusted_fields_are_inert(page):
    _md, out, c = page
    assert [t for t, _ in c.tags if t in ("script", "img", "b", "i", "iframe")] == []
    for tag, attrs in c.tags:
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        for name in ("href", "src", "action"):
            v = (attrs.get(name) or "").replace("\t", "").strip().lower()
            assert not v.startswith(("javascript:", "data:", "vbscript:")), (tag, attrs)
    text = "".join(c.text)
    assert '<script>alert("x")</script> & <img src=x onerror=alert(1)>' in text  # shown as text
    assert "Mallory <b>Bold</b> et al." in text


def test_bad_links_shown_but_not_linked(page):
    _md, _out, c = page
    hrefs = [a.get("href") for t, a in c.tags if t == "a"]
    assert "https://arxiv.org/abs/2006.11239" in hrefs
    assert "https://github.com/hojonathanho/diffusion" in hrefs
    assert "https://plain.example/" in hrefs
    assert not any(h and "alert" in h for h in hrefs)
    badges = [a for t, a in c.tags if "pi-badlink" in (a.get("class") or "")]
    assert len(badges) == 3  # url, code and website of the evil entry


def test_each_entry_has_anchor_meta_and_copyable_bibtex(page):
    _md, _out, c = page
    entries = {a["id"]: a for t, a in c.tags if t == "li" and "pi-entry" in (a.get("class") or "")}
    assert set(entries) == {"evil2024script", "ho2020denoising", "plain2023paper"}
    ho = entries["ho2020denoising"]
    assert ho["data-sections"] == "Foundations" and ho["data-year"] == "2020"
    assert ho["data-venue"] == "NeurIPS" and ho["data-code"] == "1" and ho["data-authors"] == "1"
    assert (
        entries["plain2023paper"]["data-authors"] == "0"
        and entries["plain2023paper"]["data-code"] == "0"
    )
    assert entries["evil2024script"]["data-code"] == "0"  # a data: URL is no code link
    buttons = [a for t, a in c.tags if t == "button" and "pi-copy" in (a.get("class") or "")]
    assert len(buttons) == 3
    bib = next(b["data-bibtex"] for b in buttons if "ho2020denoising" in b["data-bibtex"])
    assert bib.startswith("@inproceedings{ho2020denoising,\n") and "code =" not in bib
    evil_bib = next(b["data-bibtex"] for b in buttons if "evil2024script" in b["data-bibtex"])
    assert "<script>" in evil_bib  # the attribute holds the text; the parser unescaped it


def test_backlinks_filters_and_counts(page):
    md, _out, c = page
    links = [(a.get("href"), a) for t, a in c.tags if t == "a"]
    assert ("../ddpm/", {"href": "../ddpm/"}) in links
    text = "".join(c.text)
    assert "Cited in: DDPM <notes>, Bad" in text  # the javascript: back-link is not a link
    options = [a.get("value") for t, a in c.tags if t == "option"]
    for value in (
        "Foundations",
        "Video Generation",
        "Video Editing",
        "<i>Injected</i>",
        "2024",
        "NeurIPS",
    ):
        assert value in options
    counts = {
        a["data-section"]: None
        for t, a in c.tags
        if t == "span" and "pi-n" in (a.get("class") or "")
    }
    assert "Video Editing" in counts
    assert "1 import note" in text and "only the first author is known" in text
    block = md.split("<div", 1)[1].split("\n## How this bibliography", 1)[0].rstrip("\n")
    assert "\n\n" not in block  # one raw HTML block for Python-Markdown


def test_titles_are_page_text_for_search(page):
    _md, _out, c = page
    text = "".join(c.text)
    for title in ("Denoising Diffusion Probabilistic Models", "Plain Listed Paper"):
        assert title in text


def test_assets_exist_and_inline_mode():
    for path in ASSETS.values():
        assert path.is_file() and path.stat().st_size > 500
    lib = parse_bib_text(EVIL, "evil.bib")
    md = render_index(lib, {}, inline_assets=True)
    assert md.count("<script>") == 1 and "paperIndexApply" in md and "<style>" in md


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://arxiv.org/abs/1", True),
        ("HTTP://x.org", True),
        ("javascript:alert(1)", False),
        (" java\tscript:alert(1)", False),
        ("data:text/html,x", False),
        ("//evil.example/x", False),
        ("https:/x", False),
        ("", False),
    ],
)
def test_safe_http_url(url, ok):
    assert (safe_http_url(url) is not None) == ok


def test_venue_family():
    assert venue_family("CVPR 2024") == "CVPR"
    assert (
        venue_family("IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)")
        == "CVPR"
    )
    assert (
        venue_family("Journal of Machine Learning Research")
        == "Journal of Machine Learning Research"
    )
    assert venue_family(None) == "preprint"


def test_copy_buttons_per_format_and_how_made_section(page):
    """Each entry copies as BibTeX, BibLaTeX and CSL-JSON; the page says how it is checked."""
    import json

    md, _out, c = page
    fmt = [a for t, a in c.tags if t == "button" and "pi-cite-fmt" in (a.get("class") or "")]
    assert sorted(b["data-format"] for b in fmt) == ["biblatex"] * 3 + ["csl-json"] * 3
    ho = [b for b in fmt if "ho2020denoising" in b["data-copy"]]
    biblatex = next(b["data-copy"] for b in ho if b["data-format"] == "biblatex")
    assert biblatex.startswith("@inproceedings{ho2020denoising,\n") and "date = {2020}" in biblatex
    csl = json.loads(next(b["data-copy"] for b in ho if b["data-format"] == "csl-json"))
    assert csl["type"] == "paper-conference" and csl["author"][0] == {
        "family": "Ho",
        "given": "Jonathan",
    }
    evil = next(b["data-copy"] for b in fmt if "evil2024script" in b["data-copy"])
    assert "<script>" in evil and "<script>" not in md  # held escaped, read back as text
    how = md.split("## How this bibliography is made and checked", 1)[1]
    for part in ("**Sources.**", "**What is verified.**", "**What is flagged.**",
                 "**Reporting an error.**", "curated.bib", "papers check"):  # fmt: skip
        assert part in how
    assert "1 entries carry import notes" in how  # plain2023paper's flag, counted
