"""The strict site build: it passes on the real docs, and it stops loudly on bad input.

The bad-input builds run in a temporary copy holding only a home page and the bad piece, with
the real ``mkdocs.yml`` inherited, so each one takes seconds and cannot touch ``site/``.
"""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from pathlib import Path

import nbformat
import pytest

from tests.conftest import REPO, run_mkdocs_build

pytestmark = pytest.mark.slow


def _without_labs_first(text: str) -> str:
    """mkdocs.yml without the ``labs_first:`` key and its list items."""
    out, key_indent = [], None
    for line in text.splitlines(keepends=True):
        indent = len(line) - len(line.lstrip())
        if line.strip().startswith("labs_first:"):
            key_indent = indent
            continue
        if key_indent is not None and indent > key_indent and line.strip().startswith("- "):
            continue  # an item of the labs_first list
        key_indent = None
        out.append(line)
    result = "".join(out)
    assert "labs_first" not in result
    return result


def _mini_project(tmp: Path, pages: dict[str, str], *, nav: list[str] | None = None,
                  bib: str | None = None) -> Path:
    """A throwaway project: the real mkdocs.yml inherited, a few pages, a bibliography."""
    (tmp / "docs").mkdir()
    shutil.copytree(REPO / "overrides", tmp / "overrides")
    shutil.copytree(REPO / "docs" / "javascripts", tmp / "docs" / "javascripts")
    shutil.copytree(REPO / "docs" / "stylesheets", tmp / "docs" / "stylesheets")
    (tmp / "docs" / "index.md").write_text("# Home\n\nA page citing [@ho2020denoising].\n")
    for name, text in pages.items():
        (tmp / "docs" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / "docs" / name).write_text(textwrap.dedent(text).lstrip())
    (tmp / "papers.bib").write_text(bib if bib is not None
                                    else (REPO / "papers.bib").read_text(encoding="utf-8"))
    nav_lines = "\n".join(f"  - {p}" for p in (nav or ["index.md", *pages]))
    # the real config, less its lab start order (it names labs this project does not have; a
    # child config cannot empty it: its plugin list would replace the parent's whole list)
    (tmp / "base.yml").write_text(_without_labs_first((REPO / "mkdocs.yml").read_text("utf-8")))
    (tmp / "mkdocs.yml").write_text(
        f"INHERIT: {tmp / 'base.yml'}\ndocs_dir: docs\nwatch: []\nnav:\n{nav_lines}\n"
        "  - papers/index.md\n"
    )
    return tmp / "mkdocs.yml"


def test_strict_build_passes(built_site: Path) -> None:
    """The real site builds with --strict; the lab page carries executed outputs and figures."""
    assert (built_site / "index.html").is_file()
    assert (built_site / "papers" / "index.html").is_file()
    lab = built_site / "ddpm" / "forward-process-lab" / "index.html"
    html = lab.read_text(encoding="utf-8")
    assert "Download notebook (.ipynb)" in html
    assert html.count("<img") >= 3, "the lab's figures are missing from its page"
    assert "SNR falls below 1" in html, "printed output of the lab is missing"
    assert (built_site / "assets" / "vendor" / "mathjax" / "tex-svg.js").is_file()


def test_built_site_references_no_other_host(built_site: Path) -> None:
    """No script, stylesheet, font or image is loaded from another host (links to read are fine)."""
    loaded = re.compile(r"<(?:script|img|link|iframe|source)\b[^>]*?(?:src|href)=\"(https?:)?//",
                        re.IGNORECASE)
    offenders = []
    for page in built_site.rglob("*.html"):
        for m in loaded.finditer(page.read_text(encoding="utf-8")):
            tag = page.read_text(encoding="utf-8")[m.start(): m.start() + 160]
            if 'rel="canonical"' in tag or "127.0.0.1" in tag:
                continue
            offenders.append(f"{page.relative_to(built_site)}: {tag}")
    assert not offenders, "\n".join(offenders[:10])


def test_pages_carry_only_what_they_need(built_site: Path) -> None:
    """MathJax only where there is maths; notebook CSS once as a file; no local serve address."""
    def html(path: str) -> str:
        return (built_site / path / "index.html").read_text(encoding="utf-8")

    assert "tex-svg.js" in html("ddpm/loss") and "tex-svg.js" in html("ddpm/forward-process-lab")
    assert "tex-svg.js" not in html("papers") and "tex-svg.js" not in html("benchmarks")
    lab = html("ddpm/forward-process-lab")
    inline_css = sum(len(m) for m in re.findall(r"<style[^>]*>(.*?)</style>", lab, re.DOTALL))
    assert inline_css < 5_000, f"{inline_css} bytes of inline CSS on the lab page"
    links = re.findall(r'href="([^"]*assets/notebook/notebook-[0-9a-f]+\.css)"', lab)
    assert len(links) == 1 and (built_site / "ddpm/forward-process-lab" / links[0]).is_file()
    assert "No description has been provided" not in lab
    for page in built_site.rglob("*.html"):
        assert 'rel="canonical" href="http://127.0.0.1' not in page.read_text(encoding="utf-8")
    sitemap = built_site / "sitemap.xml"
    assert not sitemap.is_file() or "127.0.0.1" not in sitemap.read_text(encoding="utf-8")


def test_downloaded_notebook_says_how_to_run_it(built_site: Path) -> None:
    nb = nbformat.read(built_site / "ddpm/forward-process-lab/forward-process-lab.ipynb",
                       as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and "diffusion-notes-setup" in first.metadata["tags"]
    assert "make setup" in first.source and "ipykernel install" in first.source
    assert "CPU cores" in first.source, "where the outputs were computed"
    page = (built_site / "ddpm/forward-process-lab/index.html").read_text(encoding="utf-8")
    assert page.count("ipykernel install") == 1, "the page shows the steps once, above the lab"


def test_downloadable_notebook_is_valid_and_executed(built_site: Path) -> None:
    nb_path = built_site / "ddpm" / "forward-process-lab" / "forward-process-lab.ipynb"
    nb = nbformat.read(nb_path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.get("execution_count") for c in code), "cells were not executed"
    kinds = {o.output_type for c in code for o in c.outputs}
    assert "stream" in kinds and "display_data" in kinds
    assert json.loads(nb_path.read_text())["nbformat"] == 4


def test_failing_lab_cell_fails_the_build(tmp_path: Path) -> None:
    config = _mini_project(tmp_path, {"broken-lab.py": """
        # %% [markdown]
        # # A lab that breaks

        # %%
        x = 1

        # %%
        raise RuntimeError("deliberate failure in cell three")
        """}, nav=["index.md", "broken-lab.ipynb"])
    result = run_mkdocs_build(config, tmp_path / "site")
    assert result.returncode != 0
    err = result.stderr
    assert "broken-lab.py" in err and "cell 3 of 3" in err, err[-2000:]
    assert "deliberate failure in cell three" in err
    assert not (tmp_path / "site" / "index.html").exists(), "a failed build wrote a site"


def test_unknown_citation_key_fails_the_build(tmp_path: Path) -> None:
    config = _mini_project(tmp_path, {"note.md": """
        # A note

        Diffusion models [@ho2020denoisng] learn to denoise.
        """})
    result = run_mkdocs_build(config, tmp_path / "site")
    assert result.returncode != 0
    assert "docs/note.md:3: unknown citation key 'ho2020denoisng'" in result.stderr
    assert "ho2020denoising" in result.stderr, "the closest key should be suggested"
    assert not (tmp_path / "site" / "index.html").exists()


def test_unknown_citation_in_lab_markdown_fails_the_build(tmp_path: Path) -> None:
    config = _mini_project(tmp_path, {"cite-lab.py": """
        # %% [markdown]
        # # Lab
        # As shown by [@ho2020denoising; @nosuchpaper2099].

        # %%
        print("fine")
        """}, nav=["index.md", "cite-lab.ipynb"])
    result = run_mkdocs_build(config, tmp_path / "site")
    assert result.returncode != 0
    assert "docs/cite-lab.py:3: unknown citation key 'nosuchpaper2099'" in result.stderr


def test_malformed_bib_entry_fails_the_build(tmp_path: Path) -> None:
    good = (REPO / "papers.bib").read_text(encoding="utf-8")
    broken = good + "\n@article{broken2024,\n  title = {Unclosed brace,\n  year = 2024\n"
    line = good.count("\n") + 2
    config = _mini_project(tmp_path, {}, bib=broken)
    result = run_mkdocs_build(config, tmp_path / "site")
    assert result.returncode != 0
    assert f"papers.bib:{line}" in result.stderr, result.stderr[-2000:]


def test_missing_nav_page_fails_the_build(tmp_path: Path) -> None:
    config = _mini_project(tmp_path, {}, nav=["index.md", "no-such-page.md"])
    result = run_mkdocs_build(config, tmp_path / "site")
    assert result.returncode != 0
    assert "no-such-page.md" in result.stderr
