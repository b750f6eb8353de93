"""The site as a learner meets it, on a phone (390x844) and a desktop (1280x900).

Every wait is for a condition (MathJax typeset, the search worker's results, the paper index's
``data-pi-state="ready"``), never for a fixed time; the generous default timeout only bounds a
test that would otherwise hang, so the tests hold on a machine fully loaded by other work.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest

from tests.test_browser import ARGS, CHROMIUM, WAIT_MS, pytestmark  # noqa: F401

VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 900}}
LOSS = "ddpm/loss/"
NOTATION = "notation/"
LAB = "ddpm/forward-process-lab/"
PAPERS = "papers/"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture(params=list(VIEWPORTS))
def page(request, browser, site_url):
    ctx = browser.new_context(viewport=VIEWPORTS[request.param], color_scheme="light")
    ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=site_url.rstrip("/"))
    ctx.set_default_timeout(WAIT_MS)
    pg = ctx.new_page()
    pg.viewport_name = request.param
    yield pg
    ctx.close()


def wait_for_math(page) -> None:
    page.wait_for_function(
        "() => window.MathJax && MathJax.startup && MathJax.startup.promise"
        " && document.querySelectorAll('mjx-container').length > 0")
    page.evaluate("() => MathJax.startup.promise")


def wait_for_index(page) -> None:
    page.wait_for_function("() => document.getElementById('pi-root')"
                           "?.dataset.piState === 'ready'")


def shown(page) -> int:
    return page.evaluate("() => [...document.querySelectorAll('.pi-list > li')]"
                         ".filter(li => !li.hidden).length")


# ------------------------------------------------------------------------------ maths
EQUATION_WIDTHS = """(sel) => [...document.querySelectorAll(sel)].map(svg => {
    const box = svg.getBoundingClientRect();
    // MathJax sizes a formula in ex of the surrounding font: measure that length in place
    const probe = document.createElement('span');
    probe.style.cssText = 'position:absolute;visibility:hidden;display:block;width:'
                          + svg.getAttribute('width');
    svg.parentNode.appendChild(probe);
    const natural = probe.getBoundingClientRect().width;
    probe.remove();
    const scroller = svg.closest('div.arithmatex, .md-typeset__scrollwrap, mjx-container[display]');
    return {natural, rendered: box.width,
            scrolls: scroller ? scroller.scrollWidth > scroller.clientWidth + 1 : false,
            room: scroller ? scroller.clientWidth : window.innerWidth};
})"""


@pytest.mark.parametrize("path", [LOSS, NOTATION])
def test_equations_keep_their_natural_width(page, site_url, path) -> None:
    """Display and table maths render at full size (MathJax's own width); too wide: it scrolls."""
    page.goto(site_url + path)
    wait_for_math(page)
    sel = ("article div.arithmatex mjx-container > svg" if path == LOSS
           else "article table mjx-container > svg")
    widths = page.evaluate(EQUATION_WIDTHS, sel)
    assert len(widths) >= 5, f"too few equations found on {path}"
    for w in widths:
        assert w["natural"] > 1, w
        # natural size to a pixel (the svg's own width in ex, at the page's font)
        assert abs(w["rendered"] - w["natural"]) <= 1.0, w
        if w["natural"] > w["room"] + 1:
            assert w["scrolls"], f"a wide equation neither fits nor scrolls: {w}"
    page.evaluate("() => document.fonts.ready")
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{path} overflows the {page.viewport_name} viewport by {overflow} px"


def test_formulas_are_not_tab_stops(page, site_url) -> None:
    page.goto(site_url + LOSS)
    wait_for_math(page)
    focusable = page.evaluate("() => [...document.querySelectorAll('mjx-container')]"
                              ".filter(m => m.tabIndex >= 0 && m.hasAttribute('tabindex')).length")
    assert focusable == 0


def test_paper_index_loads_no_mathjax_and_works(page, site_url) -> None:
    scripts: list[str] = []
    page.on("request", lambda r: scripts.append(r.url) if r.resource_type == "script" else None)
    page.goto(site_url + PAPERS)
    wait_for_index(page)
    assert not any("mathjax" in u.lower() for u in scripts), scripts
    assert page.evaluate("() => typeof window.MathJax") == "undefined"
    page.fill("#pi-q", "ho2022video")
    page.wait_for_function("() => document.querySelector('#pi-count').textContent.startsWith('1 of')")


# ------------------------------------------------------------------------------ search
def _search(page, site_url, text: str):
    page.goto(site_url)
    box = page.locator("input.md-search__input")
    if not box.is_visible():  # a phone shows a search button first
        page.locator("label.md-header__button[for='__search']").click()
    box.fill(text)
    results = page.locator(".md-search-result__item a")
    results.first.wait_for()
    return results


def test_search_lands_on_the_paper(page, site_url) -> None:
    results = _search(page, site_url, "Classifier-Free Diffusion Guidance")
    hrefs = [results.nth(i).get_attribute("href") or "" for i in range(results.count())]
    target = next((h for h in hrefs if re.search(r"papers/(\?[^#]*)?#ho2022classifier$", h)), None)
    assert target, hrefs
    snippets = page.locator(".md-search-result").inner_text()
    for junk in ("\\(", "\\)", "Copied!", "¶"):
        assert junk not in snippets, junk
    page.locator(f".md-search-result__item a[href='{target}']").first.click()
    page.wait_for_function("() => location.hash === '#ho2022classifier'")
    wait_for_index(page)
    entry = page.evaluate("""() => { const e = document.querySelector(':target');
        const r = e.getBoundingClientRect();
        return {id: e.id, top: r.top, bottom: r.bottom, h: innerHeight,
                outline: getComputedStyle(e).outlineStyle}; }""")
    assert entry["id"] == "ho2022classifier"
    assert entry["outline"] != "none", "the entry a search lands on is highlighted"
    assert 0 <= entry["top"] < entry["h"], entry


# ------------------------------------------------------------------------------ paper index
def test_back_restores_controls_and_list(page, site_url) -> None:
    page.goto(site_url + PAPERS)
    wait_for_index(page)
    page.fill("#pi-q", "ho2020denoising")
    page.wait_for_function("() => document.querySelector('#pi-count').textContent.startsWith('1 of')")
    page.locator("#ho2020denoising .pi-cited a").first.click()
    page.wait_for_function("() => !location.pathname.endsWith('/papers/')")
    page.go_back()
    wait_for_index(page)
    page.wait_for_function("() => document.querySelector('#pi-q').value === 'ho2020denoising'")
    assert shown(page) == 1
    assert page.locator("#pi-count").inner_text().startswith("1 of")


def test_filtered_view_survives_reload(page, site_url) -> None:
    page.goto(site_url + PAPERS)
    wait_for_index(page)
    page.select_option("#pi-section", "Video Editing")
    page.select_option("#pi-year", "2023")
    page.select_option("#pi-sort", "title")
    n = shown(page)
    query = parse_qs(urlparse(page.url).query)
    assert query["section"] == ["Video Editing"] and query["year"] == ["2023"]
    page.reload()
    wait_for_index(page)
    assert page.input_value("#pi-section") == "Video Editing"
    assert page.input_value("#pi-sort") == "title"
    assert shown(page) == n
    titles = page.evaluate("() => [...document.querySelectorAll('.pi-list > li')]"
                           ".filter(li => !li.hidden).map(li => li.querySelector('.pi-title span')"
                           ".textContent.toLowerCase())")
    assert titles == page.evaluate("(t) => t.slice().sort((a, b) => a.localeCompare(b))", titles)


def test_text_typed_before_the_script_is_kept(page, site_url) -> None:
    """The index script is held back (as on a slow device) while the reader types."""
    def hold(route):
        response = route.fetch()
        body = re.sub(r"<script>((?:(?!</script>).)*paperIndexApply(?:(?!</script>).)*)</script>",
                      lambda m: "<script>window.__piStart = function () {" + m.group(1)
                      + "};</script>", response.text(), flags=re.DOTALL)
        route.fulfill(response=response, body=body)

    page.route(re.compile(r".*/papers/(index\.html)?(\?.*)?$"), hold)
    page.goto(site_url + PAPERS)
    page.fill("#pi-q", "arXiv:2204.03458")
    page.evaluate("() => window.__piStart()")
    wait_for_index(page)
    assert page.input_value("#pi-q") == "arXiv:2204.03458"
    assert shown(page) == 1 and page.locator("#ho2022video").is_visible()


@pytest.mark.parametrize("query", ["arXiv:2204.03458", "https://arxiv.org/abs/2204.03458v2",
                                   "2204.03458", "https://arxiv.org/pdf/2204.03458"])
def test_arxiv_forms_find_the_paper(page, site_url, query) -> None:
    if page.viewport_name == "phone" and query != "arXiv:2204.03458":
        pytest.skip("the query parsing does not depend on the viewport")
    page.goto(site_url + PAPERS)
    wait_for_index(page)
    page.fill("#pi-q", query)
    page.wait_for_function("() => document.querySelector('#pi-count').textContent.startsWith('1 of')")
    assert page.locator("#ho2022video").is_visible()


def test_hyphens_and_copy_all_shown(page, site_url) -> None:
    page.goto(site_url + PAPERS)
    wait_for_index(page)
    page.fill("#pi-q", "video editing")
    spaced = int(page.get_attribute("#pi-root", "data-shown"))
    page.fill("#pi-q", "video-editing")
    page.wait_for_function(f"() => document.getElementById('pi-root').dataset.shown === '{spaced}'")
    assert spaced > 0
    page.fill("#pi-q", "video diffusion 2022")
    n = shown(page)
    page.click("#pi-copy-all")
    page.wait_for_function("() => document.querySelector('#pi-copy-all').dataset.copied === '1'")
    text = page.evaluate("navigator.clipboard.readText()")
    assert len(re.findall(r"^@\w+\{", text, flags=re.MULTILINE)) == n > 0


def test_filter_bar_in_view_with_visible_controls(page, site_url) -> None:
    page.goto(site_url + PAPERS)
    wait_for_index(page)
    first = page.evaluate("() => document.querySelector('.pi-list > li').getBoundingClientRect().top"
                          " + scrollY")
    assert first < 1.2 * page.viewport_size["height"], f"first paper {first:.0f} px down"
    page.evaluate("() => window.scrollTo(0, 4000)")
    page.wait_for_function("() => window.scrollY >= 3000")
    bar = page.evaluate("() => { const r = document.querySelector('#pi-count')"
                        ".getBoundingClientRect(); return [r.top, r.bottom]; }")
    assert 0 <= bar[0] and bar[1] <= page.viewport_size["height"] / 2, bar
    page.focus("#pi-q")
    style = page.evaluate("""() => { const s = getComputedStyle(document.querySelector('#pi-q'));
        return {border: parseFloat(s.borderTopWidth), outline: s.outlineStyle,
                outlineWidth: parseFloat(s.outlineWidth)}; }""")
    assert style["border"] >= 1 and style["outline"] != "none" and style["outlineWidth"] >= 2
    if page.viewport_name == "phone":
        small = page.evaluate("""() => [...document.querySelectorAll(
              '.pi-filters input, .pi-filters select, .pi-filters button,'
              + ' .pi-list > li:first-child a, .pi-list > li:first-child button')]
            .filter(e => e.offsetParent !== null && e.type !== 'checkbox')
            .map(e => [e.id || e.className || e.tagName, e.getBoundingClientRect().height])
            .filter(([, h]) => h < 44)""")
        assert small == [], small


# ------------------------------------------------------------------------------ contrast
CONTRAST = """(sel) => {
  const parse = c => { const v = c.match(/[\\d.]+/g).map(Number); return v.length === 3 ? [...v, 1] : v; };
  const lum = rgb => { const f = v => { v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(rgb[0]) + 0.7152 * f(rgb[1]) + 0.0722 * f(rgb[2]); };
  const backOf = el => { for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c[3] > 0.5) return c.slice(0, 3); }
    return [255, 255, 255]; };
  return [...document.querySelectorAll(sel)].filter(el => el.offsetParent !== null).slice(0, 20)
    .map(el => {
      const back = backOf(el), c = parse(getComputedStyle(el).color);
      let alpha = c[3];  // text colour alpha times every ancestor's opacity
      for (let e = el; e; e = e.parentElement) alpha *= Number(getComputedStyle(e).opacity);
      const fg = c.slice(0, 3).map((v, i) => v * alpha + back[i] * (1 - alpha));
      const a = lum(fg), b = lum(back);
      return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    });
}"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_small_links_have_contrast(page, site_url, scheme) -> None:
    if page.viewport_name == "phone":
        pytest.skip("colours do not depend on the viewport")
    page.emulate_media(color_scheme=scheme)
    for path, sel in ((LOSS, "small a"), (PAPERS, ".pi-anchor"), (PAPERS, ".pi-copy"),
                      (PAPERS, ".pi-cited a")):
        page.goto(site_url + path)
        page.wait_for_function(
            f"() => document.body.getAttribute('data-md-color-scheme') === "
            f"'{'slate' if scheme == 'dark' else 'default'}'")
        ratios = page.evaluate(CONTRAST, sel)
        assert ratios and min(ratios) >= 4.5, (path, sel, scheme, ratios[:5])


# ------------------------------------------------------------------------------ labs
def test_lab_page_reads_on_this_screen(page, site_url) -> None:
    page.goto(site_url + LAB)
    imgs = page.evaluate("() => [...document.querySelectorAll('.jupyter-wrapper img')]"
                         ".map(i => ({alt: i.alt, w: i.getBoundingClientRect().width,"
                         " wide: i.hasAttribute('data-figure-wide')}))")
    assert imgs and all(i["alt"] and "No description" not in i["alt"] for i in imgs), imgs
    if page.viewport_name == "phone":
        assert all(i["w"] >= 700 for i in imgs if i["wide"]), imgs
    pre = page.evaluate("() => getComputedStyle(document.querySelector("
                        "'.jupyter-wrapper .jp-OutputArea-output pre')).whiteSpace")
    assert pre == "pre"
    setup = page.locator("details.lab-setup")
    assert setup.count() == 1 and "make setup" in setup.text_content()
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the lab overflows by {overflow} px"


@pytest.mark.parametrize("path", ["", "ddpm/", "checks/", "benchmarks/", PAPERS, "ddpm/glossary/"])
def test_no_page_overflows_the_viewport(page, site_url, path) -> None:
    page.goto(site_url + path)
    page.wait_for_load_state("load")
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"/{path} overflows the {page.viewport_name} viewport by {overflow} px"
