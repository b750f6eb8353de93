"""The ``diffusion-notes`` mkdocs plugin: labs, citations, the paper index, offline math.

Order of work in one build:

1. ``on_pre_build`` (before mkdocs empties ``site/``): load ``papers.bib``, scan every note and
   lab for citations (an unknown key stops the build naming page and line), and execute every
   lab through the content-addressed cache (a failing cell stops the build naming lab and cell).
   Nothing has been written to ``site/`` when any of these fail.
2. ``on_files``: swap each lab's ``.py`` for its executed ``.ipynb`` (rendered by mkdocs-jupyter,
   which must come after this plugin in ``plugins:``), add the generated paper index page and
   the MathJax files taken from the installed ``django-static-mathjax`` package.
3. ``on_page_content``: turn citations into links, append References, drop the CDN MathJax
   loader that nbconvert puts into notebook pages.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
from pathlib import Path

from mkdocs.config import config_options as opt
from mkdocs.config.base import Config
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin, event_priority
from mkdocs.structure.files import File, Files
from mkdocs.utils import get_relative_url

from diffusion_notes.bib.citations import (
    link_citations,
    references_html,
    scan_source,
    unknown_keys_message,
)
from diffusion_notes.bib.store import BibError, Library, load_library
from diffusion_notes.runtime import is_smoke
from diffusion_notes.site.benchmarks import render_benchmarks_page
from diffusion_notes.site.checks import collect_references, collect_tests, render_checks_page
from diffusion_notes.site.labs import LabError, LabRun, execute_lab, is_lab

log = logging.getLogger("mkdocs.plugins.diffusion_notes")

INDEX_URI = "papers/index.md"
CHECKS_URI = "checks.md"
BENCH_URI = "benchmarks.md"
MATHJAX_URI = "assets/vendor/mathjax/tex-svg.js"
_NB_MATHJAX = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->",
                         re.DOTALL)
_EXTERNAL_SCRIPT = re.compile(r"<script[^>]+src=\"https?://[^\"]*\"[^>]*>\s*</script>")


class PluginConfig(Config):
    bib = opt.Type(str, default="papers.bib")
    labs_cache = opt.Type(str, default=".cache/labs")
    execute_labs = opt.Type(bool, default=True)


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
        self._scan_citations()
        self.lab_runs = {}
        if self.config.execute_labs:
            # DIFFUSION_NOTES_LABS_CACHE moves the cache (benchmarks use a scratch one)
            cache = self.root / os.environ.get("DIFFUSION_NOTES_LABS_CACHE",
                                               self.config.labs_cache)
            for lab in sorted(self.docs_dir.rglob("*.py")):
                if not is_lab(lab):
                    continue
                rel = lab.relative_to(self.docs_dir).as_posix()
                try:
                    run = execute_lab(lab, cache, smoke=is_smoke(), rel=rel, log=log.info)
                except LabError as exc:
                    raise PluginError(f"lab failed: {exc}") from None
                if run.cached:
                    log.info(f"lab {rel}: cached execution reused")
                self.lab_runs[rel] = run

    def _scan_citations(self) -> None:
        assert self.library is not None
        problems: list[str] = []
        self.backlinks = {}
        for path in sorted(self.docs_dir.rglob("*")):
            lab = is_lab(path)
            if path.suffix != ".md" and not lab:
                continue
            rel = path.relative_to(self.docs_dir).as_posix()
            text = path.read_text(encoding="utf-8")
            citations = scan_source(text, is_lab=lab)
            message = unknown_keys_message(f"docs/{rel}", citations, self.library)
            if message:
                problems.append(message)
            title = _page_title(text, rel, lab)
            uri = rel[:-3] + ".md" if lab else rel  # a lab page gets the URL an .md would
            for key in dict.fromkeys(c.key for c in citations if not c.malformed):
                self.backlinks.setdefault(key, []).append((title, uri))
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
        if page.file.src_uri.endswith(".ipynb"):
            html = _NB_MATHJAX.sub("", html)
            html = _EXTERNAL_SCRIPT.sub("", html)
        index_url = get_relative_url(_page_url(INDEX_URI, config), page.url)
        if page.file.src_uri == INDEX_URI:
            index_url = ""

        def href(key: str) -> str:
            return f"{index_url}#{key}"

        html, cited = link_citations(html, self.library, href)
        return html + references_html(cited, self.library, href)

    def on_page_context(self, context, page, config, nav):
        if page.file.src_uri.endswith(".ipynb"):
            context["lab_download"] = posixpath.basename(page.file.src_uri)
            run = self.lab_runs.get(page.file.src_uri[:-6] + ".py")
            context["lab_source"] = posixpath.basename(run.source.name) if run else None
        return context


def _page_url(uri: str, config) -> str:
    """The URL path of the page built from source ``uri`` (for relative back-links)."""
    f = File(uri, src_dir=None, dest_dir=config.site_dir,
             use_directory_urls=config.use_directory_urls)
    return f.url


def _page_title(text: str, rel: str, lab: bool) -> str:
    prefix = "# # " if lab else "# "
    for line in text.splitlines():
        if line.startswith(prefix):
            return line[len(prefix):].strip()
    return os.path.splitext(posixpath.basename(rel))[0].replace("-", " ").capitalize()
