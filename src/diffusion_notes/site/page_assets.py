"""What a built page loads: MathJax only where there is maths, notebook CSS once, figure alt text.

- MathJax (2 MB) is added to a page only when its HTML holds maths: a note's ``arithmatex``
  elements or the ``$...$`` / ``\\(...\\)`` of a lab's markdown cells. The paper index, the
  benchmarks and most pages have none and load none.
- mkdocs-jupyter inlines ~600 KB of notebook CSS into every lab page; the build moves those
  ``<style>`` blocks into one content-addressed file that every lab page links (cached once).
- nbconvert gives every figure the alt text "No description has been provided for this image";
  the lab's executed notebook carries real alt text (``diffusion_notes.plots.figure_alt``) in
  each image output's metadata, written here into the ``<img>`` tags in order.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass

import nbformat

MATHJAX_CONFIG = "javascripts/mathjax-config.js"
MATHJAX_URI = "assets/vendor/mathjax/tex-svg.js"
NOTEBOOK_CSS_DIR = "assets/notebook"

_STYLE = re.compile(r"<style[^>]*>(.*?)</style>", re.DOTALL)
_NB_MATH = re.compile(r"\$[^$\n]+\$|\\\(|\\\[")
_DEFAULT_ALT = 'alt="No description has been provided for this image"'
_ARITHMATEX = 'class="arithmatex"'


def has_math(html_text: str, *, notebook: bool) -> bool:
    """True when the page has formulas for MathJax to typeset."""
    if _ARITHMATEX in html_text:
        return True
    if not notebook:
        return False
    markdown = re.findall(r'data-mime-type="text/markdown">(.*?)</div>', html_text, re.DOTALL)
    return any(_NB_MATH.search(m) for m in markdown)


def mathjax_tags(base: str) -> str:
    """Script tags loading the config, then MathJax, from ``base`` (the page's path to root)."""
    return (f'<script src="{base}{MATHJAX_CONFIG}"></script>\n'
            f'<script src="{base}{MATHJAX_URI}" defer></script>\n')


def extract_styles(html_text: str) -> tuple[str, str | None]:
    """Remove the inline ``<style>`` blocks; return (html, their CSS joined) or (html, None)."""
    blocks = _STYLE.findall(html_text)
    if not blocks:
        return html_text, None
    return _STYLE.sub("", html_text), "\n".join(b.strip() for b in blocks) + "\n"


def css_file_name(css: str) -> str:
    """Content-addressed name: a changed notebook theme gets a new URL (no stale cache)."""
    return f"{NOTEBOOK_CSS_DIR}/notebook-{hashlib.sha256(css.encode()).hexdigest()[:12]}.css"


@dataclass(frozen=True)
class Figure:
    alt: str | None  # recorded by the kernel (None: nothing recorded)
    width: int  # PNG size in pixels (0 when unreadable)
    height: int

    @property
    def wide(self) -> bool:
        """A multi-panel row: on a phone it scrolls at a readable size instead of shrinking."""
        return self.width >= 1000 and self.width >= 2 * self.height


def _png_size(b64: str) -> tuple[int, int]:
    try:
        head = base64.b64decode(b64[:48])
        return struct.unpack(">II", head[16:24])  # IHDR width, height
    except (ValueError, struct.error):
        return 0, 0


def figures(nb: nbformat.NotebookNode) -> list[Figure]:
    """Every PNG output of an executed notebook, in page order."""
    found: list[Figure] = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            png = output.get("data", {}).get("image/png")
            if png:
                md = output.get("metadata", {})
                alt = md.get("alt") or md.get("image/png", {}).get("alt")
                found.append(Figure(alt, *_png_size(png if isinstance(png, str) else "".join(png))))
    return found


def apply_alts(html_text: str, figs: Iterable[Figure], fallback: str) -> str:
    """Replace nbconvert's default alt text of each figure, in order; mark wide figures.

    ``fallback`` (e.g. "Output of the lab <title>") is used where no alt was recorded.
    """
    it = iter(list(figs))
    counter = 0

    def repl(_: re.Match[str]) -> str:
        nonlocal counter
        counter += 1
        fig = next(it, None)
        alt = (fig.alt if fig else None) or f"{fallback}, figure {counter}"
        wide = " data-figure-wide" if fig is not None and fig.wide else ""
        return f'alt="{html.escape(alt, quote=True)}"{wide}'

    return re.sub(re.escape(_DEFAULT_ALT), repl, html_text)
