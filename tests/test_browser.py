"""The built site in real headless Chromium (Debian's package, driven by Playwright).

Run on the smoke-mode build served on 127.0.0.1. Screenshots land in ``test-output/``.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest

from tests.conftest import REPO

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason="Debian's chromium is not installed (make test installs it)"),
]

NOTE = "ddpm/forward-process/"
LAB = "ddpm/forward-process-lab/"
WAIT_MS = 300_000
# flags from this workplace's notes: no background traffic, no sandbox as root
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture()
def page(browser, site_url):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    # waits are for conditions; this only bounds a hung test (a loaded machine is slow)
    context.set_default_timeout(WAIT_MS)
    pg = context.new_page()
    pg.requests_seen = []
    pg.on("request", lambda r: pg.requests_seen.append(r.url))
    yield pg
    context.close()


def _wait_for_math(page) -> None:
    page.wait_for_function(
        "() => window.MathJax && MathJax.startup && MathJax.startup.promise"
        " && document.querySelectorAll('mjx-container').length > 0")
    page.evaluate("() => MathJax.startup.promise")


def _raw_math_left(page, selector: str) -> list[str]:
    """Text of elements under ``selector`` that still shows TeX delimiters."""
    return page.evaluate(
        """(sel) => [...document.querySelectorAll(sel)]
             .map(e => e.innerText)
             .filter(t => t.includes('$$') || t.includes('\\\\(') || t.includes('\\\\[')
                          || /\\$[^$\\s][^$]*\\\\[a-z]+[^$]*\\$/.test(t))""", selector)


def test_math_is_typeset_on_note_and_lab(page, site_url, test_output) -> None:
    page.goto(site_url + NOTE)
    _wait_for_math(page)
    assert page.locator("article mjx-container").count() >= 3
    assert _raw_math_left(page, "article .arithmatex") == []
    page.screenshot(path=str(test_output / "note-forward-process.png"), full_page=False)

    page.goto(site_url + LAB)
    _wait_for_math(page)
    assert page.locator(".jupyter-wrapper mjx-container").count() >= 3
    assert _raw_math_left(page, ".jupyter-wrapper .jp-MarkdownOutput") == []
    page.screenshot(path=str(test_output / "lab-forward-process.png"), full_page=False)


def test_no_request_leaves_localhost(page, site_url) -> None:
    for path in ("", NOTE, LAB, "papers/", "map/"):
        page.goto(site_url + path)
        page.wait_for_load_state("networkidle")
    hosts = {urlparse(u).hostname for u in page.requests_seen if u.startswith("http")}
    assert hosts == {"127.0.0.1"}, f"requests to other hosts: {hosts - {'127.0.0.1'}}"
    schemes = {urlparse(u).scheme for u in page.requests_seen}
    assert schemes <= {"http", "data", "blob"}


def _word_only_in_lab_output(site: Path) -> str:
    """A word printed by the forward-process lab that appears in no source the site is built from."""
    nb = nbformat.read(site / LAB / "forward-process-lab.ipynb", as_version=4)
    printed = " ".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                       for o in c.outputs if o.output_type == "stream")
    sources = " ".join(p.read_text(encoding="utf-8").lower()
                       for p in (REPO / "docs").rglob("*") if p.suffix in {".md", ".py"})
    sources += (REPO / "papers.bib").read_text(encoding="utf-8").lower()
    for word in re.findall(r"[A-Za-z]{6,}", printed):
        if word.lower() not in sources:
            return word
    raise AssertionError("the lab prints no word of its own; the search check needs one")


def test_search_finds_a_word_from_lab_output(page, site_url, built_site) -> None:
    word = _word_only_in_lab_output(built_site)
    page.goto(site_url)
    page.locator("input.md-search__input").click()
    page.locator("input.md-search__input").fill(word)
    results = page.locator(".md-search-result__item a")
    results.first.wait_for()
    hrefs = [results.nth(i).get_attribute("href") for i in range(results.count())]
    assert any(LAB in (h or "") for h in hrefs), (word, hrefs)


def test_search_splits_code_identifiers(page, site_url) -> None:
    page.goto(site_url)
    page.locator("input.md-search__input").click()
    page.locator("input.md-search__input").fill("cumprod")
    results = page.locator(".md-search-result__item a")
    results.first.wait_for()
    hrefs = [results.nth(i).get_attribute("href") for i in range(results.count())]
    # the lab's code calls torch.cumprod( ... ): the identifier must be split out of it
    assert any(LAB in (h or "") for h in hrefs), hrefs


def test_download_button_serves_executed_notebook(page, site_url) -> None:
    page.goto(site_url + LAB)
    button = page.get_by_role("link", name="Download notebook (.ipynb)")
    assert button.count() == 1
    href = button.get_attribute("href")
    response = page.request.get(site_url + LAB + href)
    assert response.ok
    nb = nbformat.reads(response.text(), as_version=4)
    nbformat.validate(nb)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert any(o.output_type == "display_data" and "image/png" in o.data for o in outputs)
    assert json.loads(response.text())["metadata"]["kernelspec"]["name"] == "python3"


def test_dark_mode_toggle(page, site_url, test_output) -> None:
    page.goto(site_url + NOTE)
    scheme = lambda: page.evaluate("document.body.getAttribute('data-md-color-scheme')")  # noqa: E731
    before = scheme()
    page.locator("form[data-md-component='palette'] label:visible").first.click()
    page.wait_for_function(f"document.body.getAttribute('data-md-color-scheme') !== '{before}'")
    after = scheme()
    assert {before, after} == {"default", "slate"}
    page.screenshot(path=str(test_output / "note-dark.png"))


def test_chinese_term_finds_its_note(page, site_url) -> None:
    """The glossary promises that a Chinese term typed into search finds the note defining it."""
    page.goto(site_url)
    page.locator("input.md-search__input").click()
    page.locator("input.md-search__input").fill("证据下界")  # evidence lower bound
    results = page.locator(".md-search-result__item a")
    results.first.wait_for()
    hrefs = [results.nth(i).get_attribute("href") or "" for i in range(results.count())]
    assert any("ddpm/vae-elbo/" in h for h in hrefs), hrefs


def test_lineage_diagrams_are_drawn_offline(page, site_url, test_output) -> None:
    """The mermaid fences become diagrams with the locally served mermaid (the theme would
    otherwise fetch it from a CDN, which an offline reader cannot reach). The theme swaps each
    ``<pre class="mermaid">`` holding the source for a ``<div class="mermaid">`` whose (closed)
    shadow root holds the SVG: drawn means a div, no source text left, and a real size."""
    for path in ("map/", "map/text-to-image/"):
        page.goto(site_url + path)
        page.wait_for_function(
            "() => { const d = [...document.querySelectorAll('.mermaid')];"
            " return d.length > 0 && d.every(e => e.tagName === 'DIV') }")
        boxes = page.evaluate(
            "() => [...document.querySelectorAll('.mermaid')].map(d => [d.innerText.length,"
            " d.getBoundingClientRect().width, d.getBoundingClientRect().height])")
        assert all(text == 0 and w > 100 and h > 100 for text, w, h in boxes), f"{path}: {boxes}"
    page.screenshot(path=str(test_output / "map-text-to-image-diagram.png"), full_page=False)
