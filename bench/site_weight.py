"""Page weights and time to the first search result, in headless Chromium on a built site.

    python bench/site_weight.py                      # the built site/ (make site first)
    python bench/site_weight.py --site /tmp/site     # another build
    python bench/site_weight.py --baseline /tmp/old  # also measure an older build, for comparison

For each page a learner opens first (home, a note with equations, a lab, the paper index) it
records the bytes the browser fetched (uncompressed, as the local server sends them), split by
kind, and whether MathJax was loaded; the search worker and index, which the theme fetches in
the background, are listed apart (``search``) and not counted in the page's total. Time to the first search result: a fresh browser opens the
home page, types a word as soon as the page has loaded, and the clock stops when the first
result is drawn (median of --runs). The machine's cores and load average are recorded with the
numbers. Writes bench/results/site_weight.json, shown on the site's Benchmarks page.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import http.server
import json
import os
import shutil
import socketserver
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGES = {"home": "", "note with equations": "ddpm/loss/",
         "lab": "ddpm/forward-process-lab/", "paper index": "papers/"}
QUERY = "posterior"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextmanager
def serve(site: Path) -> Iterator[str]:
    handler = functools.partial(_Quiet, directory=str(site))
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/"
        finally:
            server.shutdown()


def _kind(resource_type: str, url: str) -> str:
    if "mathjax" in url.lower():
        return "mathjax"
    if "search_index.json" in url or "/workers/search" in url:
        return "search"  # fetched in the background once per visit, reported on its own
    return {"document": "html", "script": "js", "stylesheet": "css",
            "image": "images"}.get(resource_type, "other")


def page_weight(browser, url: str) -> dict:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    sizes: dict[str, int] = {}

    def on_response(response) -> None:
        try:
            n = len(response.body())
        except Exception:  # a redirect or an aborted request has no body
            return
        k = _kind(response.request.resource_type, response.url)
        sizes[k] = sizes.get(k, 0) + n

    page.on("response", on_response)
    page.goto(url, wait_until="networkidle")
    ctx.close()
    return {"total_kb": round(sum(v for k, v in sizes.items() if k != "search") / 1024, 1),
            "by_kind_kb": {k: round(v / 1024, 1) for k, v in sorted(sizes.items())},
            "mathjax": "mathjax" in sizes}


def first_result_ms(browser, url: str) -> float:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.set_default_timeout(300_000)  # a bound for a hang; the wait is for the result
    page.goto(url, wait_until="load")
    start = time.perf_counter()
    page.locator("input.md-search__input").fill(QUERY)
    page.locator(".md-search-result__item a").first.wait_for()
    ms = (time.perf_counter() - start) * 1000
    ctx.close()
    return ms


def measure(site: Path, runs: int) -> dict:
    from playwright.sync_api import sync_playwright

    index = site / "search" / "search_index.json"
    with serve(site) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        pages = {name: page_weight(browser, url + path) for name, path in PAGES.items()}
        times = [first_result_ms(browser, url) for _ in range(runs)]
        browser.close()
    return {"pages": pages,
            "search_index_kb": round(index.stat().st_size / 1024, 1) if index.is_file() else None,
            "first_search_result_ms": {"median": round(statistics.median(times)),
                                       "runs": [round(t) for t in times], "query": QUERY}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, default=REPO / "site", help="a built site")
    parser.add_argument("--baseline", type=Path, help="an older build to measure too")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not (args.site / "index.html").is_file():
        sys.exit(f"{args.site} holds no built site: run `make site` (or pass --site DIR)")
    load_before = os.getloadavg()[0]
    result = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "current": measure(args.site, args.runs)}
    if args.baseline:
        result["baseline"] = measure(args.baseline, args.runs)
    result["machine"] = {"cores": os.cpu_count(), "load_before": round(load_before, 2),
                         "load_after": round(os.getloadavg()[0], 2),
                         "server": "python http.server on 127.0.0.1, no compression"}
    out = REPO / "bench" / "results" / "site_weight.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result, indent=2, ensure_ascii=False))
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
