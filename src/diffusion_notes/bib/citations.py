"""Citations in notes and labs: ``[@key]``, ``[@key1; @key2]``, and with a locator
``[@key, Sec. 3.4]`` or ``[@key1, Eq. 5; @key2]`` (pandoc's syntax).

Two passes, both here so that they agree on the syntax:

* :func:`scan_source` reads a page's source (markdown, or a lab's markdown cells) and returns
  every citation with its line, so that an unknown key stops the build naming page and line;
* :func:`link_citations` rewrites the rendered HTML of a page, outside ``<code>`` and
  ``<pre>``, turning each citation into links to the paper index, and
  :func:`references_html` builds the "References" section appended to the page.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from diffusion_notes.bib.store import Library, Paper

KEY = r"[A-Za-z0-9_](?:[A-Za-z0-9_:.+\-/]*[A-Za-z0-9_])?"
LOCATOR = r"(?:,[^;\]\[]+)?"  # ", Eq. 5": any text up to the next ';' or ']'
CITATION = re.compile(rf"\[(@{KEY}{LOCATOR}(?:\s*;\s*@{KEY}{LOCATOR})*)\]")
_FENCE = re.compile(r"^\s*(```|~~~)")
_INLINE_CODE = re.compile(r"`[^`]*`")
_CODE_BLOCKS = re.compile(
    r"(<pre\b.*?</pre>|<code\b.*?</code>|<script\b.*?</script>)", re.DOTALL | re.IGNORECASE
)


@dataclass(frozen=True)
class Citation:
    key: str  # for a malformed citation: the text that follows "[@"
    line: int  # 1-based line in the source file
    malformed: bool = False


def items_of(group: str) -> list[tuple[str, str]]:
    """``'@a, Eq. 5; @b'`` -> ``[('a', 'Eq. 5'), ('b', '')]``."""
    items = []
    for part in group.split(";"):
        key, _, locator = part.strip()[1:].partition(",")
        if key:
            items.append((key.strip(), locator.strip()))
    return items


def keys_of(group: str) -> list[str]:
    """``'@a; @b, p. 3'`` -> ``['a', 'b']``."""
    return [key for key, _ in items_of(group)]


def _scan_lines(lines: Iterable[tuple[int, str]]) -> list[Citation]:
    found: list[Citation] = []
    for number, line in lines:
        prose = _INLINE_CODE.sub("", line)
        covered: set[int] = set()
        for match in CITATION.finditer(prose):
            found.extend(Citation(k, number) for k in keys_of(match.group(1)))
            covered.add(match.start())
        # "[@" that the syntax does not accept would silently stay text: report it instead
        for m in re.finditer(r"\[@", prose):
            if m.start() not in covered:
                found.append(Citation(prose[m.start() : m.start() + 40], number, malformed=True))
    return found


def _markdown_prose(text: str) -> Iterable[tuple[int, str]]:
    """Lines of a markdown text outside fenced code blocks, numbered from 1."""
    fenced = False
    for number, line in enumerate(text.splitlines(), start=1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def _lab_markdown(text: str) -> Iterable[tuple[int, str]]:
    """Lines of a jupytext percent lab that belong to markdown cells."""
    in_markdown = False
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("# %%"):
            in_markdown = "[markdown]" in line or "[md]" in line
            continue
        if in_markdown:
            yield number, line


def scan_source(text: str, *, is_lab: bool) -> list[Citation]:
    """Every citation in a page's source, with its line number."""
    return _scan_lines(_lab_markdown(text) if is_lab else _markdown_prose(text))


def unknown_keys_message(path: str, citations: Sequence[Citation], library: Library) -> str | None:
    """One line per unknown key, naming the page, the line and the closest known keys."""
    problems = []
    for c in citations:
        if c.malformed:
            problems.append(
                f"{path}:{c.line}: malformed citation '{c.key}': write [@key], "
                "[@key, Eq. 5] or [@key1; @key2]"
            )
        elif c.key not in library:
            near = library.closest(c.key)
            hint = f"did you mean {', '.join(near)}?" if near else "add it to curated.bib"
            problems.append(f"{path}:{c.line}: unknown citation key '{c.key}' ({hint})")
    return "\n".join(problems) or None


def short_label(paper: Paper) -> str:
    """'Ho et al., 2020' / 'Song & Ermon, 2019' / a short title when authors are unknown."""
    names = [a.split()[-1] for a in paper.authors if a.split()]
    if not names:
        title = paper.title
        who = title if len(title) <= 40 else title[:37].rstrip() + "..."
    elif len(names) == 1 and not paper.et_al:
        who = names[0]
    elif len(names) == 2 and not paper.et_al:
        who = f"{names[0]} & {names[1]}"
    else:  # three or more, or a list known to be incomplete ("First and others")
        who = f"{names[0]} et al."
    return f"{who}, {paper.year}" if paper.year else who


def link_citations(
    content: str, library: Library, href: Callable[[str], str]
) -> tuple[str, list[str]]:
    """Rewrite citations in rendered HTML; return the new HTML and the cited keys in order.

    ``href(key)`` gives the link to a key's entry in the paper index. Text inside ``<pre>``,
    ``<code>`` and ``<script>`` is left alone. Unknown keys were rejected by the scan; one that
    reaches this point (for example from generated text) raises ``KeyError``.
    """
    cited: list[str] = []

    def one(match: re.Match[str]) -> str:
        parts = []
        for key, locator in items_of(html.unescape(match.group(1))):
            paper = library[key]  # KeyError for an unknown key
            if key not in cited:
                cited.append(key)
            label = html.escape(short_label(paper) + (f", {locator}" if locator else ""))
            title = html.escape(paper.title, quote=True)
            parts.append(
                f'<a class="citation" href="{html.escape(href(key), quote=True)}" '
                f'title="{title}">{label}</a>'
            )
        return '<span class="citation-group">[' + "; ".join(parts) + "]</span>"

    pieces = _CODE_BLOCKS.split(content)
    for i in range(0, len(pieces), 2):  # even pieces lie outside code
        pieces[i] = CITATION.sub(one, pieces[i])
    return "".join(pieces), cited


def references_html(keys: Sequence[str], library: Library, href: Callable[[str], str]) -> str:
    """The "References" section: one entry per cited key, in order of first citation."""
    if not keys:
        return ""
    items = []
    for key in keys:
        p = library[key]
        authors = ", ".join(p.authors) if p.authors else "authors not recorded"
        venue = f" <em>{html.escape(p.venue)}</em>." if p.venue else ""
        year = f" ({html.escape(p.year)})" if p.year else ""
        links = [f'<a href="{html.escape(href(key), quote=True)}">paper index</a>']
        if p.url and p.url.startswith(("https://", "http://")):
            links.append(f'<a href="{html.escape(p.url, quote=True)}">paper</a>')
        items.append(
            f'<li id="ref-{html.escape(key, quote=True)}">{html.escape(authors)}{year}. '
            f"{html.escape(p.title)}.{venue} [{' | '.join(links)}]</li>"
        )
    return (
        '\n<h2 id="references">References</h2>\n<ol class="references">\n'
        + "\n".join(items)
        + "\n</ol>\n"
    )
