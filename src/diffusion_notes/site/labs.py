"""Labs: jupytext percent-format ``.py`` files executed into ``.ipynb`` notebooks.

A lab is executed once per *content*: the cache key hashes the lab's text, the text of every
``diffusion_notes`` module it imports (followed transitively through the package), the smoke
flag and the device override. Edit ``diffusion/schedules.py`` and every lab that imports it,
directly or through another module, runs again; edit an unrelated module and none do.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat

from diffusion_notes.atomic import atomic_write_text

PACKAGE = "diffusion_notes"
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # src/diffusion_notes
EXECUTOR_VERSION = "3"  # bump to invalidate every cached lab when execution itself changes
_CELL_MARK = re.compile(r"^# %%", re.MULTILINE)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class LabError(RuntimeError):
    """A lab failed to execute; the message names the lab file and the cell."""


@dataclass(frozen=True)
class LabRun:
    source: Path  # the .py lab
    notebook: Path  # the executed .ipynb in the cache: <root>/<rel>.ipynb
    root: Path  # cache folder that mirrors docs/ for this execution
    cached: bool  # True when the cache already held this exact content
    seconds: float  # execution time (0 on a cache hit)


def is_lab(path: Path) -> bool:
    """A ``.py`` file under docs/ is a lab when it has jupytext percent cells."""
    if path.suffix != ".py":
        return False
    try:
        return bool(_CELL_MARK.search(path.read_text(encoding="utf-8")))
    except OSError:
        return False


def _module_file(name: str) -> Path | None:
    """File of a ``diffusion_notes`` module (package ``__init__`` or plain module)."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE_DIR.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(source: str, current: str | None, is_package: bool) -> set[str]:
    """``diffusion_notes`` modules named by the import statements of ``source``."""
    found: set[str] = set()
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return found
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom):
            if node.level and current:
                # relative import: resolve against the current package
                pkg = current.split(".")
                pkg = pkg if is_package else pkg[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != PACKAGE:
                continue
            found.add(base)
            # "from pkg import name" may name a submodule
            found.update(f"{base}.{a.name}" for a in node.names)
    return found


def package_dependencies(lab_source: str) -> list[Path]:
    """Every package file that executing ``lab_source`` can import, sorted."""
    seen: set[Path] = set()
    todo = list(_imports(lab_source, None, False))
    while todo:
        name = todo.pop()
        # importing a.b.c runs a/__init__, a/b/__init__ as well
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            path = _module_file(".".join(parts[:i]))
            if path is None or path in seen:
                continue
            seen.add(path)
            text = path.read_text(encoding="utf-8")
            todo.extend(_imports(text, _module_name(path), path.name == "__init__.py"))
    return sorted(seen)


def cache_key(lab: Path, *, smoke: bool) -> str:
    """Content hash deciding whether a cached execution of ``lab`` is still valid."""
    text = lab.read_text(encoding="utf-8")
    h = hashlib.sha256()
    h.update(f"executor={EXECUTOR_VERSION};smoke={int(smoke)};".encode())
    h.update(f"device={os.environ.get('DIFFUSION_NOTES_DEVICE', 'auto')};".encode())
    h.update(b"lab\0" + text.encode("utf-8"))
    for dep in package_dependencies(text):
        h.update(b"\0" + dep.name.encode() + b"\0" + dep.read_bytes())
    return h.hexdigest()[:20]


def _cell_label(nb: nbformat.NotebookNode, index: int) -> str:
    """'cell 4 (code, source line 37)': where a failing cell sits in the .py file."""
    line = 1
    # jupytext puts a header, then one "# %%" marker line per cell before its source
    for i, cell in enumerate(nb.cells):
        if i == index:
            break
        line += cell.source.count("\n") + 2
    first = nb.cells[index].source.strip().splitlines()[:1]
    snippet = f": {first[0][:60]!r}" if first else ""
    return f"cell {index + 1} of {len(nb.cells)}{snippet}"


def execute_lab(
    lab: Path,
    cache_dir: Path,
    *,
    smoke: bool,
    rel: str | None = None,
    timeout: int = 1800,
    log=print,
) -> LabRun:
    """Execute ``lab`` (or reuse the cached result) and return where the ``.ipynb`` lies.

    ``rel`` is the lab's path relative to docs/ (default: its file name); the notebook is
    stored at ``<cache>/<slug>/<key>/<rel>.ipynb`` so that the folder ``<cache>/<slug>/<key>``
    mirrors docs/ and the file keeps the lab's name when downloaded.
    Raises :class:`LabError` naming the lab and the failing cell; nothing half-written is
    left in the cache (the notebook is written to a temporary name and renamed).
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, DeadKernelError

    lab = lab.resolve()
    key = cache_key(lab, smoke=smoke)
    rel = rel or lab.name
    slot = cache_dir / rel[:-3].replace("/", "__")
    out = slot / key / (rel[:-3] + ".ipynb")
    if out.is_file():
        return LabRun(lab, out, slot / key, cached=True, seconds=0.0)
    try:
        nb = jupytext.read(lab)
    except Exception as exc:  # jupytext raises several types for a malformed file
        raise LabError(f"{lab}: not a readable jupytext lab ({exc}); fix the file") from exc
    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3",
                                          "language": "python"})
    nb.metadata["kernelspec"]["name"] = "python3"
    env_before = {k: os.environ.get(k) for k in ("DIFFUSION_NOTES_SMOKE", "TQDM_MININTERVAL")}
    os.environ["DIFFUSION_NOTES_SMOKE"] = "1" if smoke else "0"
    # progress bars draw their first and last states only: a page shows the final bar
    os.environ["TQDM_MININTERVAL"] = "1e6"
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", allow_errors=False,
        resources={"metadata": {"path": str(lab.parent)}},
    )
    log(f"executing lab {lab.name} ({len(nb.cells)} cells{', smoke mode' if smoke else ''})")
    start = time.perf_counter()
    kernel_log = tempfile.TemporaryFile()
    try:
        # the kernel's own stderr (start-up chatter such as its TCP notice) goes to a log,
        # quoted below if the kernel dies; cell output reaches the notebook through Jupyter
        client.execute(stderr=kernel_log)
    except CellExecutionError as exc:
        index = _failing_cell(nb)
        where = _cell_label(nb, index) if index is not None else "a cell"
        text = _ANSI.sub("", str(exc)).strip()
        last = text.splitlines()[-1:] or ["error"]
        raise LabError(f"{lab}: {where} failed: {last[0]}") from None
    except DeadKernelError as exc:
        kernel_log.seek(0)
        tail = kernel_log.read().decode("utf-8", "replace").strip().splitlines()[-3:]
        raise LabError(f"{lab}: the kernel died while executing ({exc}); "
                       f"its last words: {' | '.join(tail) or 'none'}") from None
    finally:
        kernel_log.close()
        for name, value in env_before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    seconds = time.perf_counter() - start
    _settle_progress_bars(nb)
    nb.metadata["diffusion_notes"] = {"source": lab.name, "smoke": smoke,
                                      "seconds": round(seconds, 1)}
    nb.metadata["jupytext"] = {"formats": "ipynb,py:percent"}
    if slot.is_dir():  # older executions of this lab are stale now
        shutil.rmtree(slot)
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.validate(nb)
    atomic_write_text(out, nbformat.writes(nb))
    log(f"executed lab {lab.name} in {seconds:.1f} s")
    return LabRun(lab, out, slot / key, cached=False, seconds=seconds)


def _settle_progress_bars(nb: nbformat.NotebookNode) -> None:
    """Keep only the final state of progress bars (tqdm) in the executed notebook.

    A bar redraws itself with carriage returns; the kernel hands each redraw over as its own
    stream output without a trailing newline. A terminal or Jupyter shows only the last state,
    and so should the page and the downloaded notebook: a stream output without a final
    newline is replaced by the next output of the same stream (unless that one only ends the
    line), ``\\r`` inside a text keeps
    what follows it, and outputs left holding only whitespace are dropped.
    """
    for cell in nb.cells:
        kept: list = []
        for output in cell.get("outputs", []):
            if output.get("output_type") != "stream":
                kept.append(output)
                continue
            text = output["text"]
            if "\r" in text:
                text = "\n".join(line.rstrip("\r").split("\r")[-1] for line in text.split("\n"))
            output["text"] = text
            previous = next((o for o in reversed(kept) if o.get("output_type") == "stream"
                             and o["name"] == output["name"]), None)
            if previous is not None and not previous["text"].endswith("\n"):
                if text.startswith("\n"):  # the line ends here: it was the final state
                    previous["text"] += text
                    continue
                kept.remove(previous)  # redrawn: the newer state replaces it
            kept.append(output)
        if "outputs" in cell:
            cell["outputs"] = [o for o in kept
                               if o.get("output_type") != "stream" or o["text"].strip()]


def _failing_cell(nb: nbformat.NotebookNode) -> int | None:
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return i
    return None


def find_labs(docs_dir: Path) -> Iterable[Path]:
    return sorted(p for p in docs_dir.rglob("*.py") if is_lab(p))
