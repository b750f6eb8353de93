"""Benchmark the paper index: import time of the full list and filter time in a browser.

    .venv/bin/python bench/papers.py [--repeat 5] [--no-browser]

Goals (issue 4): importing the 2026-06 list < 2 s; a filter change on the index page < 100 ms
with ~800 entries. Writes ``bench/results/papers.json``.

* import: ``build_bib_text`` of the 2026-06 list against the committed ``papers.bib`` and
  ``curated.bib`` (everything an import does except the final write), and a fresh import of
  2023-12 then 2026-06 into an empty folder (with the atomic writes). Wall time, median of
  ``--repeat`` runs, in this process (the interpreter start-up is not counted).
* browser: the index page in headless Chromium through Playwright: the built site's
  ``papers/`` page (Material theme and all) when ``site/`` holds one (``make site``), else a
  bare page of ``render_index`` with its script and style inlined, opened from a file; each filter change (section, year, venue, has
  code, text typed, reset) is timed in the page from the event to the end of the update
  with style and layout forced (``offsetHeight``), and separately to the next painted frame
  (which adds paint and the wait for the frame, ~16 ms at 60 Hz); the worst case is
  "reset" from a filter that showed nothing back to all entries. Skipped, with the reason
  printed, when Playwright or a Chromium is missing.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from diffusion_notes.bib.importer import Metadata, build_bib_text, import_list  # noqa: E402
from diffusion_notes.bib.index_page import render_index  # noqa: E402
from diffusion_notes.bib.store import load_library  # noqa: E402

DATA = REPO.parent / "shared" / "data"
NEW = DATA / "awesome-video-diffusion" / "README.md"
OLD = DATA / "awesome-video-diffusion-2023-12" / "README.md"
META = DATA / "paper-metadata"
OUT = REPO / "bench" / "results" / "papers.json"


def timed(fn, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def bench_import(repeat: int) -> dict:
    text = NEW.read_text(encoding="utf-8")

    def incremental() -> None:
        meta = Metadata.load(META)
        existing = load_library(REPO / "papers.bib")
        curated = load_library(REPO / "curated.bib")
        build_bib_text(text, meta, existing, curated)

    def fresh() -> None:
        with tempfile.TemporaryDirectory() as d:
            shutil.copy(REPO / "curated.bib", Path(d) / "curated.bib")
            import_list(OLD, Path(d) / "papers.bib", metadata_dir=META)
            import_list(NEW, Path(d) / "papers.bib", metadata_dir=META)

    inc = timed(incremental, repeat)
    fr = timed(fresh, repeat)
    return {
        "import_2026_06_s_median": round(statistics.median(inc), 3),
        "import_2026_06_s_all": [round(t, 3) for t in inc],
        "fresh_2023_12_then_2026_06_s_median": round(statistics.median(fr), 3),
        "goal_s": 2.0,
    }


def bench_render(repeat: int) -> tuple[dict, str]:
    lib = load_library(REPO / "papers.bib")
    md = ""

    def render() -> None:
        nonlocal md
        md = render_index(lib, {}, inline_assets=True)

    t = timed(render, repeat)
    return {"render_index_s_median": round(statistics.median(t), 3), "entries": len(lib)}, md


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Paper index bench</title></head>
<body>{body}</body></html>"""

CHANGES = [  # (what, JavaScript run before (untimed), JavaScript that makes the change)
    (
        "section",
        "",
        "s=document.getElementById('pi-section'); s.value=s.options[3].value; s.dispatchEvent(new Event('change'))",
    ),
    (
        "year",
        "",
        "s=document.getElementById('pi-year'); s.value=s.options[2].value; s.dispatchEvent(new Event('change'))",
    ),
    (
        "venue",
        "",
        "s=document.getElementById('pi-venue'); s.value=s.options[1].value; s.dispatchEvent(new Event('change'))",
    ),
    (
        "has-code",
        "",
        "s=document.getElementById('pi-has-code'); s.checked=!s.checked; s.dispatchEvent(new Event('change'))",
    ),
    (
        "text 'diff'",
        "",
        "s=document.getElementById('pi-q'); s.value='diff'; s.dispatchEvent(new Event('input'))",
    ),
    (
        "text 'diffusion video'",
        "",
        "s=document.getElementById('pi-q'); s.value='diffusion video'; s.dispatchEvent(new Event('input'))",
    ),
    # The worst case: from no entry shown back to all ~800.
    (
        "reset from none shown",
        "s=document.getElementById('pi-q'); s.value='zzzzzz'; s.dispatchEvent(new Event('input'))",
        "document.getElementById('pi-reset').click()",
    ),
]
RESET = "document.getElementById('pi-reset').click(); void document.body.offsetHeight"


def prepare(page, before: str) -> None:
    """Reset every filter, then apply the change's precondition (if any) and settle layout."""
    page.evaluate(RESET)
    if before:
        page.evaluate("let s; " + before + "; void document.body.offsetHeight")


def _serve(directory: Path):
    """Serve ``directory`` on 127.0.0.1 (a free port) in a thread; returns (server, base url)."""
    import functools
    import http.server
    import socketserver
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = socketserver.ThreadingTCPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def bench_browser(md: str, repeat: int, site: Path | None = None) -> dict:
    try:
        import markdown
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        return {"skipped": f"playwright or markdown not installed ({exc})"}
    exe = (
        shutil.which("chromium")
        or shutil.which("chromium-browser")
        or shutil.which("google-chrome")
    )
    body = markdown.markdown(md, extensions=["md_in_html", "attr_list"])
    server = None
    with tempfile.TemporaryDirectory() as d:
        if site is not None:  # the real page of a built site, theme and all
            server, base = _serve(site)
            url = base + "papers/"
        else:
            page_file = Path(d) / "index.html"
            page_file.write_text(PAGE.format(body=body), encoding="utf-8")
            url = page_file.as_uri()
        try:
            with sync_playwright() as p:
                kw = {"args": ["--no-sandbox"]}
                if exe:
                    kw["executable_path"] = exe
                browser = p.chromium.launch(**kw)
                page = browser.new_page()
                page.goto(url)
                page.wait_for_function(
                    "document.getElementById('pi-root').dataset.piReady === '1'"
                )
                results = {}
                for name, before, js in CHANGES:
                    layout, frame, passes = [], [], []
                    for _ in range(repeat):
                        prepare(page, before)
                        # Event -> filter -> style and layout done (forced by offsetHeight).
                        layout.append(
                            page.evaluate(
                                "() => { let s; const t0 = performance.now(); "
                                + js
                                + "; void document.body.offsetHeight; return performance.now() - t0; }"
                            )
                        )
                        passes.append(
                            float(
                                page.evaluate(
                                    "document.getElementById('pi-root').dataset.lastFilterMs"
                                )
                            )
                        )
                        prepare(page, before)
                        # Event -> next painted frame (adds paint and the wait for the frame).
                        frame.append(
                            page.evaluate(
                                "() => new Promise(done => { let s; const t0 = performance.now(); "
                                + js
                                + "; requestAnimationFrame(() => setTimeout(() => done(performance.now() - t0), 0)); })"
                            )
                        )
                    results[name] = {
                        "filter_and_layout_ms_median": round(statistics.median(layout), 1),
                        "to_next_frame_ms_median": round(statistics.median(frame), 1),
                        "filter_pass_ms_median": round(statistics.median(passes), 1),
                    }
                page.evaluate(RESET)
                shown = page.evaluate("document.getElementById('pi-root').dataset.shown")
                browser.close()
        except Exception as exc:  # no browser binary, sandbox refused...
            return {"skipped": f"browser unavailable: {type(exc).__name__}: {str(exc)[:200]}"}
        finally:
            if server is not None:
                server.shutdown()
    worst = max(v["filter_and_layout_ms_median"] for v in results.values())
    return {
        "chromium": exe or "playwright's",
        "changes": results,
        "worst_ms": worst,
        "goal_ms": 100.0,
        "entries_shown_after_reset": int(shown),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--site", type=Path, default=REPO / "site",
                    help="a built site whose papers/ page is timed (default: site/ when it "
                         "exists, as `make site` leaves it; else a bare page of the index)")
    args = ap.parse_args()
    if not (NEW.is_file() and OLD.is_file() and META.is_dir()):
        print(f"skipped: list snapshots not found under {DATA}")
        return 0
    result = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
    }
    result["import"] = bench_import(args.repeat)
    print(
        f"import 2026-06 (incremental): {result['import']['import_2026_06_s_median']} s (goal < 2 s)"
    )
    print(
        f"fresh 2023-12 then 2026-06: {result['import']['fresh_2023_12_then_2026_06_s_median']} s"
    )
    render, md = bench_render(args.repeat)
    result["render"] = render
    print(f"render_index ({render['entries']} entries): {render['render_index_s_median']} s")
    if not args.no_browser:
        site = args.site if (args.site / "papers" / "index.html").is_file() else None
        result["browser"] = bench_browser(md, args.repeat, site)
        result["browser"]["page"] = ("the built site's papers/ page" if site
                                     else "a bare page of the index (no theme)")
        b = result["browser"]
        if "skipped" in b:
            print(f"browser: skipped ({b['skipped']})")
        else:
            for name, v in b["changes"].items():
                print(
                    f"filter {name:24}: {v['filter_and_layout_ms_median']:6.1f} ms to layout, "
                    f"{v['to_next_frame_ms_median']:6.1f} ms to next frame "
                    f"({v['filter_pass_ms_median']:.1f} ms in the filter function)"
                )
            print(f"worst (to layout): {b['worst_ms']} ms (goal < 100 ms)")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
