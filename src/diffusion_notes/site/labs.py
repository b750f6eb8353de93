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
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat

from diffusion_notes.atomic import atomic_write_text
from diffusion_notes.site.sources import is_lab_text, walk_docs

PACKAGE = "diffusion_notes"
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # src/diffusion_notes
EXECUTOR_VERSION = "4"  # bump to invalidate every cached lab when execution itself changes
ALT_HOOK_FILE = Path(__file__).resolve().parents[1] / "plots.py"
ALT_HOOK = "from diffusion_notes.plots import install_alt_text; install_alt_text()"
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
        return is_lab_text(path.read_text(encoding="utf-8"))
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


# Labs run side by side compute their cache keys in parallel threads, and CPython 3.11's
# ast.parse is not safe there: concurrent calls share the AST converter's recursion counter and
# fail with "SystemError: AST constructor recursion depth mismatch" (python/cpython#106905; seen
# in this project's CI). One parse at a time.
_PARSE_LOCK = threading.Lock()


def _imports(source: str, current: str | None, is_package: bool) -> set[str]:
    """``diffusion_notes`` modules named by the import statements of ``source``."""
    found: set[str] = set()
    try:
        with _PARSE_LOCK:
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
    h.update(b"\0alt-hook\0" + ALT_HOOK_FILE.read_bytes())  # runs in every lab's kernel
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
    threads: int | None = None,
    log=print,
) -> LabRun:
    """Execute ``lab`` (or reuse the cached result) and return where the ``.ipynb`` lies.

    ``rel`` is the lab's path relative to docs/ (default: its file name); the notebook is
    stored at ``<cache>/<slug>/<key>/<rel>.ipynb`` so that the folder ``<cache>/<slug>/<key>``
    mirrors docs/ and the file keeps the lab's name when downloaded.
    Raises :class:`LabError` naming the lab and the failing cell; nothing half-written is
    left in the cache (the notebook is written to a temporary name and renamed).
    ``threads`` caps the kernel's torch / BLAS threads (None: the library's default).
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
    # the kernel's environment is given to it, not set in this process: labs may run in
    # parallel threads (see execute_labs)
    env = kernel_environment(smoke=smoke, threads=threads)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", allow_errors=False,
        resources={"metadata": {"path": str(lab.parent)}},
        # every figure gets alt text derived from its titles (or given by plots.describe)
        extra_arguments=[f"--IPKernelApp.exec_lines={ALT_HOOK}"],
    )
    log(f"executing lab {lab.name} ({len(nb.cells)} cells{', smoke mode' if smoke else ''}"
        f"{f', {threads} torch thread' + ('s' if threads > 1 else '') if threads else ''})")
    load_before = _load_average()
    start = time.perf_counter()
    kernel_log = tempfile.TemporaryFile()
    try:
        # the kernel's own stderr (start-up chatter such as its TCP notice) goes to a log,
        # quoted below if the kernel dies; cell output reaches the notebook through Jupyter
        client.execute(stderr=kernel_log, env=env)
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
    seconds = time.perf_counter() - start
    _settle_progress_bars(nb)
    machine = Machine(os.cpu_count() or 1, _device(), load_before, _load_average(), threads)
    nb.metadata["diffusion_notes"] = {"source": lab.name, "smoke": smoke,
                                      "seconds": round(seconds, 1),
                                      "machine": machine.as_dict()}
    first = setup_cell(rel, seconds=seconds, smoke=smoke, machine=machine)
    if nb.get("nbformat_minor", 0) < 5:
        first.pop("id", None)  # cell ids exist from nbformat 4.5 on
    nb.cells.insert(0, first)
    nb.metadata["jupytext"] = {"formats": "ipynb,py:percent"}
    if slot.is_dir():  # older executions of this lab are stale now
        shutil.rmtree(slot)
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.validate(nb)
    atomic_write_text(out, nbformat.writes(nb))
    log(f"executed lab {lab.name} in {seconds:.1f} s")
    return LabRun(lab, out, slot / key, cached=False, seconds=seconds)


def kernel_environment(*, smoke: bool, threads: int | None) -> dict[str, str]:
    """The environment a lab's kernel starts with: this process's, plus the smoke flag,
    progress bars that draw only their first and last states (a page shows the final bar), and
    with ``threads`` the thread caps that torch and the BLAS libraries read at start-up."""
    env = dict(os.environ)
    env["DIFFUSION_NOTES_SMOKE"] = "1" if smoke else "0"
    env["TQDM_MININTERVAL"] = "1e6"
    if threads:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[name] = str(threads)
    return env


def lab_jobs(setting: int = 0) -> int:
    """How many labs run at once: ``$DIFFUSION_NOTES_LAB_JOBS``, else ``setting``; 0 means one
    per two CPU cores' worth of work, i.e. ``min(2, cores)`` (labs train small models, which
    use one core well and two poorly, so two one-thread labs side by side beat one two-thread
    lab; measured in bench/site_build.py)."""
    raw = os.environ.get("DIFFUSION_NOTES_LAB_JOBS", "").strip()
    if raw:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"DIFFUSION_NOTES_LAB_JOBS={raw!r}: give a whole number of labs "
                             "to run at once (1 runs them one after another)") from None
    else:
        value = setting
    if value < 0:
        raise ValueError(f"lab jobs must be >= 0 (0 = automatic), got {value}")
    return value or max(1, min(2, os.cpu_count() or 1))


def order_labs(labs: list[tuple[Path, str]], first: list[str]) -> list[tuple[Path, str]]:
    """``labs`` (``(path, rel)`` pairs) with the ``rel`` paths named in ``first`` moved to the
    front in that order; the rest keep their order. A name that is not a lab, or is named twice,
    is an error that says which and lists the labs."""
    by_rel = {rel: (path, rel) for path, rel in labs}
    seen: set[str] = set()
    for name in first:
        if name not in by_rel:
            raise ValueError(f"{name!r} is not a lab; labs are: {', '.join(sorted(by_rel))}")
        if name in seen:
            raise ValueError(f"{name!r} is named twice")
        seen.add(name)
    return [by_rel[name] for name in first] + [lab for lab in labs if lab[1] not in seen]


def execute_labs(
    labs: list[tuple[Path, str]],
    cache_dir: Path,
    *,
    smoke: bool,
    jobs: int = 1,
    log=print,
) -> dict[str, LabRun]:
    """Execute ``(lab, rel)`` pairs, ``jobs`` at a time (each kernel then gets
    ``cores // jobs`` torch threads); returns the runs by ``rel`` in the given order.

    Labs that need the same cached model do not train it twice: the model cache's build lock
    (:func:`diffusion_notes.cache_store.build_lock`) makes the second wait and load it. The
    first failure is raised as :class:`LabError` once the labs already running have ended;
    labs not yet started are not started.
    """
    if jobs <= 1 or len(labs) <= 1:
        return {rel: execute_lab(lab, cache_dir, smoke=smoke, rel=rel, log=log)
                for lab, rel in labs}
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

    threads = max(1, (os.cpu_count() or 1) // jobs)
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="lab") as pool:
        futures = {rel: pool.submit(execute_lab, lab, cache_dir, smoke=smoke, rel=rel,
                                    threads=threads, log=log) for lab, rel in labs}
        done, pending = wait(futures.values(), return_when=FIRST_EXCEPTION)
        failed = [f for f in done if f.exception() is not None]
        if failed:
            for f in pending:
                f.cancel()
            wait(pending)
            raise failed[0].exception()  # type: ignore[misc]
    return {rel: future.result() for rel, future in futures.items()}


@dataclass(frozen=True)
class Machine:
    """Where a lab was executed: the figures it prints were measured there."""

    cores: int
    device: str
    load_before: float | None  # 1-minute load average when execution started
    load_after: float | None
    threads: int | None = None  # torch threads of the kernel when capped (parallel labs)

    def as_dict(self) -> dict:
        return {"cores": self.cores, "device": self.device,
                "load_before": self.load_before, "load_after": self.load_after,
                "threads": self.threads}

    def describe(self) -> str:
        if self.threads:
            return (f"{self.threads} torch thread{'s' if self.threads > 1 else ''} of "
                    f"{self.cores} CPU cores, device {self.device} (the site build runs labs "
                    "side by side and splits the cores between them)")
        load = ""
        if self.load_before is not None and self.load_after is not None:
            load = (f", load average {self.load_before:.1f} at the start and "
                    f"{self.load_after:.1f} at the end (above {self.cores} means other work "
                    "shared the cores)")
        return f"{self.cores} CPU cores, device {self.device}{load}"


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):  # not available on every platform
        return None


def _device() -> str:
    from diffusion_notes.runtime import get_device

    return str(get_device())


SETUP_TAG = "diffusion-notes-setup"  # the page hides this cell; the notebook keeps it


def setup_text(rel: str) -> str:
    """How to run a lab outside the site (the lab page shows the same steps)."""
    return (
        "**How to run this notebook.** It is a lab of *diffusion-notes* and imports the "
        "project's Python package `diffusion_notes`, which is not on PyPI: run it inside the "
        "project.\n\n"
        "1. In the project folder (the repository this site is built from; needs Python "
        "3.10+), run `make setup`. It creates `.venv/` with the CPU build of PyTorch and "
        "the package.\n"
        "2. Make that environment a Jupyter kernel, once: "
        "`.venv/bin/python -m ipykernel install --user --name diffusion-notes`; then open "
        "this notebook in any Jupyter and choose the kernel **diffusion-notes**.\n"
        "3. Run all cells. Set `DIFFUSION_NOTES_SMOKE=1` in the environment for a quick pass "
        "with tiny step counts.\n\n"
        f"The source is the jupytext file `docs/{rel}`; "
        "`.venv/bin/jupytext --to ipynb` turns it into a notebook without outputs."
    )


def setup_cell(rel: str, *, seconds: float, smoke: bool, machine: Machine):
    """The first cell of a downloaded notebook: how to run it, and where this copy ran."""
    where = (f"\n\nThis copy was executed when the site was built, in {seconds:.0f} s on "
             f"{machine.describe()}{' (smoke mode: tiny step counts)' if smoke else ''}.")
    cell = nbformat.v4.new_markdown_cell(setup_text(rel) + where)
    cell.metadata["tags"] = [SETUP_TAG]
    return cell


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
    return [lab.path for lab in walk_docs(docs_dir, kinds=("lab",))]
