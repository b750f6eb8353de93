"""The ``diffusion-notes`` mkdocs plugin: labs, citations, the paper index, offline math.

Order of work in one build:

1. ``on_pre_build`` (before mkdocs empties ``site/``): load ``papers.bib``, walk ``docs/`` once
   (:func:`diffusion_notes.site.sources.walk_docs`), check every note's and lab's citations (an
   unknown key stops the build naming page and line), and execute every lab through the
   content-addressed cache (a failing cell stops the build naming lab and cell). Nothing has
   been written to ``site/`` when any of these fail.
2. ``on_files``: swap each lab's ``.py`` for its executed ``.ipynb`` (rendered by mkdocs-jupyter,
   which must come after this plugin in ``plugins:``), add the generated pages (paper index,
   "How the maths is checked", benchmarks) and the MathJax file taken from the installed
   ``django-static-mathjax`` package.
3. ``on_page_content``: turn citations into links, append References; on lab pages drop the CDN
   MathJax loader nbconvert adds, move the inline notebook CSS into one shared file and write
   each figure's alt text (:mod:`diffusion_notes.site.page_assets`).
4. ``on_post_page``: MathJax only on pages with maths; the shared notebook CSS on lab pages.
5. ``on_post_build``: write the notebook CSS file; one search document per paper and clean
   snippets (:mod:`diffusion_notes.site.search_index`).
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
from pathlib import Path

import markdown
import nbformat
from mkdocs.config import config_options as opt
from mkdocs.config.base import Config
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin, event_priority
from mkdocs.structure.files import File, Files
from mkdocs.utils import get_relative_url

from diffusion_notes.bib.citations import (
    CITATION,
    link_citations,
    references_html,
    scan_source,
    unknown_keys_message,
)
from diffusion_notes.bib.store import BibError, Library, load_library
from diffusion_notes.runtime import is_smoke
from diffusion_notes.site.benchmarks import render_benchmarks_page
from diffusion_notes.site.checks_page import collect_references, collect_tests, render_checks_page
from diffusion_notes.site.labs import (
    LabError,
    LabRun,
    execute_labs,
    lab_jobs,
    order_labs,
    setup_text,
)
from diffusion_notes.site.page_assets import (
    MATHJAX_URI,
    apply_alts,
    css_file_name,
    extract_styles,
    figures,
    has_math,
    mathjax_tags,
)
from diffusion_notes.site.search_index import rewrite_search_index
from diffusion_notes.site.sources import DocSource, walk_docs
from diffusion_notes.site.vendor import MERMAID_URI, VendorError, ensure_mermaid

log = logging.getLogger("mkdocs.plugins.diffusion_notes")

INDEX_URI = "papers/index.md"
CHECKS_URI = "checks.md"
BENCH_URI = "benchmarks.md"
_BUNDLE = re.compile(r'<script src="[^"]*assets/javascripts/bundle\.[0-9a-f]+\.min\.js"')
_NB_MATHJAX = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->",
                         re.DOTALL)
_EXTERNAL_SCRIPT = re.compile(r"<script[^>]+src=\"https?://[^\"]*\"[^>]*>\s*</script>")



def strip_toc_citations(items) -> None:
    """Drop ``[@key]`` citations from the titles of a page's table of contents (in place).

    A heading such as ``### SDEdit [@meng2022sdedit]`` is linked in the page body, but the
    table of contents is built from the Markdown before this plugin sees the HTML, so its
    entry (and the search result built from it) would show the raw key."""
    for item in items:
        title = CITATION.sub("", item.title)
        item.title = re.sub(r"\s{2,}", " ", title).strip()
        strip_toc_citations(item.children)


class PluginConfig(Config):
    bib = opt.Type(str, default="papers.bib")
    labs_cache = opt.Type(str, default=".cache/labs")
    execute_labs = opt.Type(bool, default=True)
    # labs run at once (0: automatic, two on a machine of two cores or more);
    # $DIFFUSION_NOTES_LAB_JOBS overrides it
    lab_jobs = opt.Type(int, default=0)
    # labs (paths under docs/) to start first, in this order; the rest follow in page order.
    # With labs side by side, starting the longest and the ones that train shared models early
    # keeps both cores busy to the end (see order_labs)
    labs_first = opt.ListOfItems(opt.Type(str), default=[])


def mathjax_file() -> Path:
    """tex-svg.js from the django-static-mathjax wheel: SVG output needs no font files."""
    try:
        import mathjax  # the package django-static-mathjax installs
    except ImportError as exc:  # pragma: no cover - a broken environment
        raise PluginError(
            "MathJax is not installed: run `make site` (or pip install '.[docs]') to set up"
        ) from exc
    path = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5" / "tex-svg.js"
    if not path.is_file():
        raise PluginError(f"MathJax file missing at {path}: reinstall django-static-mathjax")
    return path


class DiffusionNotesPlugin(BasePlugin[PluginConfig]):
    def on_config(self, config):
        self.root = Path(config.config_file_path).resolve().parent
        self.docs_dir = Path(config.docs_dir).resolve()
        self.library: Library | None = None
        self.lab_runs: dict[str, LabRun] = {}
        self.backlinks: dict[str, list[tuple[str, str]]] = {}
        self.notebook_css: dict[str, str] = {}  # file name -> CSS, written after the build
        self.page_css: dict[str, str] = {}  # lab page source -> its notebook CSS file
        self.math_pages: set[str] = set()  # source paths of pages that need MathJax
        return config

    # ----------------------------------------------------------------- 1. validate, execute
    def on_pre_build(self, config) -> None:
        bib = self.root / self.config.bib
        try:
            self.library = load_library(bib)
        except BibError as exc:
            raise PluginError(str(exc)) from None
        except FileNotFoundError:
            raise PluginError(f"{bib}: bibliography not found; set `bib:` of the "
                              "diffusion-notes plugin in mkdocs.yml") from None
        sources = list(walk_docs(self.docs_dir))
        self._scan_citations(sources)
        self.lab_runs = {}
        if self.config.execute_labs:
            # DIFFUSION_NOTES_LABS_CACHE moves the cache (benchmarks use a scratch one)
            cache = self.root / os.environ.get("DIFFUSION_NOTES_LABS_CACHE",
                                               self.config.labs_cache)
            labs = [(s.path, s.rel) for s in sources if s.is_lab]
            try:
                labs = order_labs(labs, self.config.labs_first)
            except ValueError as exc:
                raise PluginError(f"{config.config_file_path}: labs_first of the "
                                  f"diffusion-notes plugin: {exc}") from None
            try:
                jobs = lab_jobs(self.config.lab_jobs)
            except ValueError as exc:
                raise PluginError(f"lab_jobs: {exc}") from None
            try:
                self.lab_runs = execute_labs(labs, cache, smoke=is_smoke(), jobs=jobs,
                                             log=log.info)
            except LabError as exc:
                raise PluginError(f"lab failed: {exc}") from None
            for rel, run in self.lab_runs.items():
                if run.cached:
                    log.info(f"lab {rel}: cached execution reused")

    def _scan_citations(self, sources: list[DocSource]) -> None:
        assert self.library is not None
        problems: list[str] = []
        self.backlinks = {}
        for source in sources:
            citations = scan_source(source.text, is_lab=source.is_lab)
            message = unknown_keys_message(f"docs/{source.rel}", citations, self.library)
            if message:
                problems.append(message)
            for key in dict.fromkeys(c.key for c in citations if not c.malformed):
                self.backlinks.setdefault(key, []).append((source.title, source.url_uri))
        if problems:
            raise PluginError("\n".join(problems))

    # ----------------------------------------------------------------- 2. files
    @event_priority(50)  # before mkdocs-jupyter decides which files are notebooks
    def on_files(self, files: Files, config) -> Files:
        from diffusion_notes.bib.index_page import render_index

        for rel, run in self.lab_runs.items():
            old = files.get_file_from_path(rel)
            if old is not None:
                files.remove(old)
            files.append(File(rel[:-3] + ".ipynb", src_dir=str(run.root),
                              dest_dir=config.site_dir,
                              use_directory_urls=config.use_directory_urls))
        if files.get_file_from_path(INDEX_URI) is not None:
            raise PluginError(f"docs/{INDEX_URI} exists but the paper index is generated "
                              f"from {self.config.bib}: delete the hand-written file")
        assert self.library is not None
        index_url = _page_url(INDEX_URI, config)
        backlinks = {
            key: [(title, get_relative_url(_page_url(uri, config), index_url))
                  for title, uri in pages]
            for key, pages in self.backlinks.items()
        }
        files.append(File.generated(config, INDEX_URI,
                                    content=render_index(self.library, backlinks,
                                                         inline_assets=True)))
        files.append(File.generated(config, MATHJAX_URI, abs_src_path=str(mathjax_file())))
        try:  # mermaid for the lineage diagrams, stored by setup (site.vendor)
            mermaid = ensure_mermaid(fetch=False)
        except VendorError as exc:
            raise PluginError(str(exc)) from None
        files.append(File.generated(config, MERMAID_URI, abs_src_path=str(mermaid)))
        if files.get_file_from_path(CHECKS_URI) is not None:
            raise PluginError(f"docs/{CHECKS_URI} exists but that page is generated from "
                              "tests/: delete the hand-written file")
        tests = collect_tests(self.root / "tests", self.root)
        refs = collect_references(self.docs_dir)
        files.append(File.generated(config, CHECKS_URI, content=render_checks_page(tests, refs)))
        try:
            bench = render_benchmarks_page(self.root / "bench" / "results")
        except ValueError as exc:
            raise PluginError(str(exc)) from None
        files.append(File.generated(config, BENCH_URI, content=bench))
        return files

    # ----------------------------------------------------------------- 3. pages
    def on_page_content(self, html: str, page, config, files) -> str:
        assert self.library is not None
        src = page.file.src_uri
        notebook = src.endswith(".ipynb")
        if notebook:
            html = _NB_MATHJAX.sub("", html)
            html = _EXTERNAL_SCRIPT.sub("", html)
            html, css = extract_styles(html)
            if css is not None:
                name = css_file_name(css)
                self.notebook_css[name] = css
                self.page_css[src] = name
            run = self.lab_runs.get(src[:-6] + ".py")
            if run is not None:
                figs = figures(nbformat.read(run.notebook, as_version=4))
                html = apply_alts(html, figs, fallback=f"Output of the lab {page.title}")
        if has_math(html, notebook=notebook):
            self.math_pages.add(src)
        else:
            self.math_pages.discard(src)
        index_url = get_relative_url(_page_url(INDEX_URI, config), page.url)
        if src == INDEX_URI:
            index_url = ""

        def href(key: str) -> str:
            return f"{index_url}#{key}"

        html, cited = link_citations(html, self.library, href)
        strip_toc_citations(page.toc)
        return html + references_html(cited, self.library, href)

    def on_page_context(self, context, page, config, nav):
        if page.file.src_uri.endswith(".ipynb"):
            context["lab_download"] = posixpath.basename(page.file.src_uri)
            run = self.lab_runs.get(page.file.src_uri[:-6] + ".py")
            context["lab_run"] = _lab_run_summary(run, page.file.src_uri[:-6] + ".py")
        return context

    # ----------------------------------------------------------------- 4. page assets
    def on_post_page(self, output: str, page, config) -> str:
        base = get_relative_url(".", page.url)
        base = "" if base == "." else base.rstrip("/") + "/"
        css = self.page_css.get(page.file.src_uri)
        if css:
            output = output.replace("</head>", f'<link rel="stylesheet" href="{base}{css}">\n'
                                    "</head>", 1)
        if page.file.src_uri in self.math_pages:
            output = output.replace("</body>", mathjax_tags(base) + "</body>", 1)
        if 'class="mermaid"' in output:
            # before the theme's bundle, which draws with a global `mermaid` when there is one
            # and otherwise fetches mermaid from a CDN
            tag = f'<script src="{base}{MERMAID_URI}"></script>\n'
            found = _BUNDLE.search(output)
            if found is None:
                raise PluginError(f"{page.file.src_uri}: the theme's bundle script was not found, "
                                  "so mermaid cannot be loaded before it")
            output = output[:found.start()] + tag + output[found.start():]
        return output

    # ----------------------------------------------------------------- 5. site-wide files
    @event_priority(-100)  # after the search plugin wrote its index
    def on_post_build(self, config) -> None:
        site = Path(config.site_dir)
        for name, css in self.notebook_css.items():
            target = site / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(css, encoding="utf-8")
        index = site / "search" / "search_index.json"
        if index.is_file() and self.library is not None:
            location = _page_url(INDEX_URI, config)
            before, after = rewrite_search_index(
                index, self.library, location,
                f"{len(self.library.entries)} papers with filters and copyable BibTeX; "
                "each paper is its own search result.")
            log.info(f"search index: {before} documents -> {after} (one per paper)")


def _lab_run_summary(run: LabRun | None, rel: str) -> dict | None:
    """What the lab page says about where its outputs were computed, and how to run it."""
    if run is None:
        return None
    meta = nbformat.read(run.notebook, as_version=4).metadata.get("diffusion_notes", {})
    machine = meta.get("machine", {})
    return {"seconds": meta.get("seconds"), "smoke": meta.get("smoke"),
            "cores": machine.get("cores"), "device": machine.get("device"),
            "load_before": machine.get("load_before"), "load_after": machine.get("load_after"),
            "setup_html": markdown.markdown(setup_text(rel))}


def _page_url(uri: str, config) -> str:
    """The URL path of the page built from source ``uri`` (for relative back-links)."""
    f = File(uri, src_dir=None, dest_dir=config.site_dir,
             use_directory_urls=config.use_directory_urls)
    return f.url
