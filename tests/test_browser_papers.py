"""The paper index in headless Chromium: filter, copy BibTeX, follow a back-link to a note."""

from __future__ import annotations

import pytest

from tests.test_browser import ARGS, CHROMIUM, WAIT_MS, pytestmark  # noqa: F401


@pytest.fixture(scope="module")
def context(site_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        ctx.set_default_timeout(WAIT_MS)  # a bound for a hang; waits are for conditions
        ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=site_url.rstrip("/"))
        yield ctx
        browser.close()


def _visible_entries(page) -> list[dict]:
    return page.evaluate("""() => [...document.querySelectorAll('.pi-list > li')]
        .filter(li => !li.hidden && li.offsetParent !== null)
        .map(li => ({key: li.id, year: li.dataset.year, sections: li.dataset.sections}))""")


def test_filter_by_section_and_year(context, site_url, test_output) -> None:
    page = context.new_page()
    page.goto(site_url + "papers/")
    total = len(_visible_entries(page))
    assert total > 700
    page.select_option("#pi-section", "Video Editing")
    page.select_option("#pi-year", "2023")
    page.wait_for_function("document.querySelector('#pi-count').textContent.startsWith('')")
    shown = _visible_entries(page)
    assert 0 < len(shown) < total
    assert all(e["year"] == "2023" and "Video Editing" in e["sections"].split("|") for e in shown)
    assert page.locator("#pi-count").inner_text().startswith(f"{len(shown)} of ")
    page.screenshot(path=str(test_output / "papers-filtered.png"))
    page.click("#pi-reset")
    assert len(_visible_entries(page)) == total
    page.close()


def test_copy_bibtex(context, site_url) -> None:
    page = context.new_page()
    page.goto(site_url + "papers/#ho2020denoising")
    page.locator("#ho2020denoising .pi-copy").click()
    page.wait_for_function(
        "document.querySelector('#ho2020denoising .pi-copy').dataset.copied === '1'"
    )
    text = page.evaluate("navigator.clipboard.readText()")
    assert text.lstrip().startswith("@") and "{ho2020denoising," in text
    assert "Denoising Diffusion Probabilistic Models" in text
    page.close()


def test_copy_csl_json_and_biblatex(context, site_url) -> None:
    import json

    page = context.new_page()
    page.goto(site_url + "papers/#ho2020denoising")
    for fmt, check in (
        ("csl-json", lambda t: json.loads(t)["id"] == "ho2020denoising"),
        ("biblatex", lambda t: t.startswith("@inproceedings{ho2020denoising,") and "date =" in t),
    ):
        sel = f"#ho2020denoising .pi-cite-fmt[data-format='{fmt}']"
        page.locator(sel).click()
        page.wait_for_function(f"document.querySelector(\"{sel}\").dataset.copied === '1'")
        assert check(page.evaluate("navigator.clipboard.readText()"))
    page.close()


def test_back_link_leads_to_citing_note(context, site_url) -> None:
    page = context.new_page()
    page.goto(site_url + "papers/#ho2020denoising")
    links = page.locator("#ho2020denoising .pi-cited a")
    assert links.count() >= 3, "DDPM is cited by several notes"
    target = links.first.get_attribute("href")
    links.first.click()
    page.wait_for_load_state()
    assert "/papers/" not in page.url and target.strip("./").split("#")[0] in page.url
    cites = page.locator("a.citation[href$='#ho2020denoising']")
    assert cites.count() >= 1, "the note should cite the paper it was linked from"
    page.close()
