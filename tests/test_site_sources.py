"""The one walk over docs/, search-index rewriting, page assets and plain text from TeX."""

from __future__ import annotations

import base64
import json
import struct
import textwrap
import zlib
from pathlib import Path

import nbformat
import pytest

from diffusion_notes.bib.store import load_library
from diffusion_notes.site.page_assets import (
    apply_alts,
    extract_styles,
    figures,
    has_math,
)
from diffusion_notes.site.plaintext import clean_search_text, tex_math_to_text
from diffusion_notes.site.search_index import rewrite_search_index
from diffusion_notes.site.sources import lab_cells, walk_docs
from tests.conftest import REPO

LAB = textwrap.dedent("""\
    # ---
    # jupyter:
    #   kernelspec: {name: python3, display_name: Python 3, language: python}
    # ---

    # %% [markdown]
    # # Lab: a title
    #
    # Text with $x_t$ [@ho2020denoising].

    # %%
    x = 1
    # a comment, not markdown

    # %% [markdown]
    # ## Later
    """)


def _docs(tmp: Path) -> Path:
    docs = tmp / "docs"
    (docs / "part").mkdir(parents=True)
    (docs / "index.md").write_text("```\n# not a title\n```\n# Home page\n")
    (docs / "part" / "a-lab.py").write_text(LAB)
    (docs / "part" / "helper.py").write_text("def f():\n    return 1\n")  # no cells: no lab
    (docs / "part" / "untitled-note.md").write_text("no heading here\n")
    (docs / "part" / "figure.png").write_bytes(b"\x89PNG")
    return docs


def test_walk_docs_finds_notes_and_labs_with_titles(tmp_path: Path) -> None:
    found = {s.rel: s for s in walk_docs(_docs(tmp_path))}
    assert set(found) == {"index.md", "part/a-lab.py", "part/untitled-note.md"}
    assert found["index.md"].title == "Home page"  # the fenced "# ..." is code, not a title
    assert found["part/untitled-note.md"].title == "Untitled note"
    lab = found["part/a-lab.py"]
    assert lab.kind == "lab" and lab.title == "Lab: a title"
    assert lab.page_uri == "part/a-lab.ipynb" and lab.url_uri == "part/a-lab.md"
    assert [s.rel for s in walk_docs(_docs(tmp_path / "b"), kinds=("lab",))] == ["part/a-lab.py"]


def test_lab_cells_match_jupytext() -> None:
    """Kinds, sources and marker lines agree with jupytext's own reading of the file."""
    import jupytext

    cells = lab_cells(LAB)
    assert [c.kind for c in cells] == ["markdown", "code", "markdown"]
    assert [c.line for c in cells] == [6, 11, 15]
    nb = jupytext.reads(LAB, fmt="py:percent")
    assert [c.source for c in cells] == [c.source for c in nb.cells]


def test_walk_docs_covers_the_real_labs() -> None:
    labs = [s for s in walk_docs(REPO / "docs") if s.is_lab]
    assert {s.rel for s in labs} >= {"ddpm/forward-process-lab.py"}
    assert all(s.title.startswith("Lab") for s in labs), [s.title for s in labs]


def test_tex_and_chrome_leave_search_text() -> None:
    assert tex_math_to_text(r"\bar\alpha_t") == "α_t"
    text = clean_search_text(r"The schedule¶ \(\bar\alpha_t\) falls; Copied! \[q(x_t \mid x_0)\]")
    assert "\\" not in text and "¶" not in text and "Copied!" not in text
    assert "α_t" in text and "q(x_t | x_0)" in text


def test_search_index_gets_one_document_per_paper(tmp_path: Path) -> None:
    lib = load_library(REPO / "papers.bib")
    index = tmp_path / "search_index.json"
    docs = [{"location": "", "title": "Home", "text": "A note on \\(x_t\\) ¶"},
            {"location": "papers/", "title": "Paper index", "text": "x" * 10_000},
            {"location": "papers/#section", "title": "s", "text": "y"}]
    index.write_text(json.dumps({"config": {}, "docs": docs}))
    before, after = rewrite_search_index(index, lib, "papers/", "summary")
    out = json.loads(index.read_text())["docs"]
    assert before == 3 and after == 2 + len(lib.entries)
    by_loc = {d["location"]: d for d in out}
    assert by_loc["papers/"]["text"] == "<p>summary</p>"
    ddpm = by_loc["papers/#ho2020denoising"]
    assert ddpm["title"] == "Denoising Diffusion Probabilistic Models"
    assert "Ho" in ddpm["text"] and "2020" in ddpm["text"]
    assert by_loc[""]["text"] == "A note on x_t"


def _png(width: int, height: int) -> str:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(
        ">I", zlib.crc32(b"IHDR" + ihdr))
    return base64.b64encode(b"\x89PNG\r\n\x1a\n" + chunk).decode()


def test_figures_get_their_alt_text_in_order() -> None:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("plot")
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={"image/png": _png(1800, 400)},
                               metadata={"alt": "Two <panels>"}),
        nbformat.v4.new_output("display_data", data={"image/png": _png(600, 400)}),
    ]
    nb.cells.append(cell)
    figs = figures(nb)
    assert [(f.width, f.height, f.wide) for f in figs] == [(1800, 400, True), (600, 400, False)]
    page = ('<img alt="No description has been provided for this image" src="a"/>'
            '<img alt="No description has been provided for this image" src="b"/>')
    out = apply_alts(page, figs, fallback="Output of the lab L")
    assert 'alt="Two &lt;panels&gt;" data-figure-wide src="a"' in out
    assert 'alt="Output of the lab L, figure 2" src="b"' in out


@pytest.mark.parametrize(("html", "notebook", "expected"), [
    ('<div class="arithmatex">\\(x\\)</div>', False, True),
    ("<p>costs $5 and $6</p>", False, False),
    ('<div data-mime-type="text/markdown"><p>$x_t$</p></div>', True, True),
    ('<div data-mime-type="text/markdown"><p>no maths</p></div><pre>$x$</pre>', True, False),
])
def test_mathjax_only_where_there_is_maths(html: str, notebook: bool, expected: bool) -> None:
    assert has_math(html, notebook=notebook) is expected


def test_inline_styles_move_out() -> None:
    html, css = extract_styles('<style type="text/css">a{b:c}</style><p>x</p><style>d{e:f}</style>')
    assert html == "<p>x</p>" and css == "a{b:c}\nd{e:f}\n"
    assert extract_styles("<p>x</p>") == ("<p>x</p>", None)


def test_figure_alt_from_titles_and_describe() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from diffusion_notes.plots import describe, figure_alt, install_alt_text

    fig, axes = plt.subplots(1, 2)
    fig.suptitle(r"Noising $x_t$")
    axes[0].set_title(r"$\bar\alpha_t$ against t")
    axes[0].set_xlabel("t")
    alt = figure_alt(fig)
    assert alt == "Noising x_t: 2 panels: α_t against t (x: t)."
    assert figure_alt(describe(fig, "Swiss roll at four noise levels")) == \
        "Swiss roll at four noise levels"
    with pytest.raises(ValueError, match="alt text"):
        describe(fig, " ")
    plt.close(fig)

    from matplotlib_inline import backend_inline

    install_alt_text()
    install_alt_text()  # idempotent: one wrapper, not two
    fig2, ax = plt.subplots()
    ax.set_title("loss")
    assert backend_inline._fetch_figure_metadata(fig2)["alt"] == "Figure: 1 panel: loss."
    plt.close(fig2)


def test_sources_hold_no_control_characters() -> None:
    """A stray control character (a BEL where a script wrote "\\approx" unescaped) drops a
    letter of the TeX and renders as "pprox": none may be in a note or a lab."""
    bad = []
    for path in sorted((REPO / "docs").rglob("*")):
        if path.suffix not in (".md", ".py") or not path.is_file():
            continue
        for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if any(ord(ch) < 32 and ch != "\t" for ch in line):
                bad.append(f"{path.relative_to(REPO)}:{no}")
    assert not bad, f"control characters in: {', '.join(bad)}"
