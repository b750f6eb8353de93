"""The page "How the maths is checked", generated from the test files at every build.

Notes link a key equation to its test as ``checks.md#<test name>``; this page gives every test
function an anchor of that name, its docstring, its source (collapsed) and links back to the
equations that cite it. A link to a test that does not exist is a broken anchor, which the
strict build rejects, so the links cannot rot.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from diffusion_notes.site.sources import walk_docs

CHECK_LINK = re.compile(r"checks\.md#(test_[A-Za-z0-9_]+)")
EQ_ANCHOR = re.compile(r"<a id=\"(eq-[A-Za-z0-9_-]+)\"></a>")


@dataclass(frozen=True)
class TestDoc:
    path: str  # tests/test_x.py
    name: str  # test function name (the anchor)
    line: int
    doc: str  # first paragraph of the docstring, or ""
    source: str


@dataclass(frozen=True)
class EquationRef:
    page: str  # docs-relative path of the note
    title: str  # the note's title
    anchor: str | None  # eq-... anchor just above the link, when there is one


def collect_tests(tests_dir: Path, repo: Path) -> list[TestDoc]:
    """Every ``test_*`` function (module level or in a class) of ``tests/test_*.py``."""
    found: list[TestDoc] = []
    for path in sorted(tests_dir.glob("test_*.py")):
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and \
                    node.name.startswith("test_"):
                doc = (ast.get_docstring(node) or "").split("\n\n")[0].replace("\n", " ")
                source = ast.get_source_segment(text, node) or ""
                found.append(TestDoc(path.relative_to(repo).as_posix(), node.name,
                                     node.lineno, doc, source))
    return found


def collect_references(docs_dir: Path) -> dict[str, list[EquationRef]]:
    """test name -> the notes (and equation anchors) that link to it."""
    refs: dict[str, list[EquationRef]] = {}
    for note in walk_docs(docs_dir, kinds=("note",)):
        last_anchor: str | None = None
        for line in note.text.splitlines():
            m = EQ_ANCHOR.search(line)
            if m:
                last_anchor = m.group(1)
            for name in CHECK_LINK.findall(line):
                ref = EquationRef(note.rel, note.title, last_anchor)
                if ref not in refs.setdefault(name, []):
                    refs[name].append(ref)
    return refs


def render_checks_page(tests: Iterable[TestDoc], refs: Mapping[str, list[EquationRef]]) -> str:
    tests = list(tests)
    cited = [t for t in tests if t.name in refs]
    lines = [
        "# How the maths is checked",
        "",
        "Every key equation in the notes links here, to the test that checks it numerically; "
        "each test links back to the equations it checks. This page is generated from the "
        "files in `tests/` at every build, so a note cannot point at a test that does not "
        "exist: the build would stop on the broken link. Run them all with `make test`, or "
        "one with `pytest tests/test_diffusion.py -k posterior`.",
        "",
        f"{len(cited)} tests are cited by equations in the notes; "
        f"{len(tests)} tests exist in all.",
        "",
        "## Tests cited by the notes",
        "",
    ]
    by_module: dict[str, list[TestDoc]] = {}
    for t in tests:
        by_module.setdefault(t.path, []).append(t)
    seen: set[str] = set()

    def entry(t: TestDoc, level: str) -> list[str]:
        # the first test of a name owns the anchor (names can repeat across modules)
        heading = f"{level} `{t.name}`" + ("" if t.name in seen else f" {{ #{t.name} }}")
        seen.add(t.name)
        out = [heading, ""]
        out.append(f"`{t.path}::{t.name}` (line {t.line})" + (f": {t.doc}" if t.doc else ""))
        out.append("")
        for ref in refs.get(t.name, []):
            target = ref.page + (f"#{ref.anchor}" if ref.anchor else "")
            label = f"equation `{ref.anchor}`" if ref.anchor else "a statement"
            out.append(f"- checks {label} in [{ref.title}]({target})")
        if refs.get(t.name):
            out.append("")
        out.append('??? example "The test"')
        out.append("")
        out.append("    ```python")
        out.extend("    " + ln if ln else "" for ln in t.source.splitlines())
        out.append("    ```")
        out.append("")
        return out

    for t in cited:
        lines.extend(entry(t, "###"))
    lines += ["## All tests, by module", ""]
    for module, items in by_module.items():
        lines += [f"### `{module}`", ""]
        for t in items:
            if t.name in seen:
                lines.append(f"- [`{t.name}`](#{t.name})" + (f": {t.doc}" if t.doc else ""))
            else:
                seen.add(t.name)
                lines.append(f'- <span id="{t.name}"></span>`{t.name}`'
                             + (f": {t.doc}" if t.doc else ""))
        lines.append("")
    return "\n".join(lines)
