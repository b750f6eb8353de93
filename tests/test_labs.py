"""Every lab executes in smoke mode, and the lab cache follows the code a lab imports."""

from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat
import pytest

from diffusion_notes.site import labs
from diffusion_notes.site.labs import LabError, cache_key, execute_lab, find_labs
from tests.conftest import REPO

LABS = list(find_labs(REPO / "docs"))


def test_labs_are_found() -> None:
    assert any(p.name == "forward-process-lab.py" for p in LABS)


@pytest.mark.slow
@pytest.mark.parametrize("lab", LABS, ids=[p.stem for p in LABS])
def test_lab_executes_in_smoke_mode(lab: Path, tmp_path: Path) -> None:
    run = execute_lab(lab, tmp_path, smoke=True, log=lambda *_: None)
    nb = nbformat.read(run.notebook, as_version=4)
    nbformat.validate(nb)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    assert nb.metadata["diffusion_notes"]["smoke"] is True
    # a second run with unchanged content is a cache hit and executes nothing
    again = execute_lab(lab, tmp_path, smoke=True, log=lambda *_: None)
    assert again.cached and again.notebook == run.notebook


def _fake_package(root: Path) -> Path:
    """A throwaway ``diffusion_notes`` package: a imports b (relatively), c stands alone."""
    pkg = root / "diffusion_notes"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub import b\n")
    (pkg / "sub" / "b.py").write_text("VALUE = 1\n")
    (pkg / "c.py").write_text("OTHER = 1\n")
    return pkg


def test_cache_key_follows_transitive_imports(tmp_path: Path, monkeypatch) -> None:
    pkg = _fake_package(tmp_path)
    monkeypatch.setattr(labs, "PACKAGE_DIR", pkg)
    lab = tmp_path / "lab.py"
    lab.write_text("# %%\nfrom diffusion_notes.a import *\n")
    deps = {p.relative_to(pkg).as_posix() for p in labs.package_dependencies(lab.read_text())}
    assert deps == {"__init__.py", "a.py", "sub/__init__.py", "sub/b.py"}
    key = cache_key(lab, smoke=True)
    (pkg / "c.py").write_text("OTHER = 2\n")  # not imported: same key
    assert cache_key(lab, smoke=True) == key
    (pkg / "sub" / "b.py").write_text("VALUE = 2\n")  # imported through a: new key
    changed = cache_key(lab, smoke=True)
    assert changed != key
    assert cache_key(lab, smoke=False) != changed  # smoke and full runs are cached apart


def test_real_lab_dependencies() -> None:
    lab = REPO / "docs" / "ddpm" / "forward-process-lab.py"
    deps = {p.name for p in labs.package_dependencies(lab.read_text())}
    assert {"schedules.py", "diffusion.py", "toy2d.py", "digits.py", "runtime.py"} <= deps
    assert "store.py" not in deps  # the bibliography code does not affect this lab


def test_failing_cell_names_lab_and_cell(tmp_path: Path) -> None:
    lab = tmp_path / "bad-lab.py"
    lab.write_text(textwrap.dedent("""\
        # %% [markdown]
        # # Bad

        # %%
        y = 1 / 0
        """))
    with pytest.raises(LabError, match=r"bad-lab\.py: cell 2 of 2: 'y = 1 / 0' failed: .*ZeroDivisionError"):
        execute_lab(lab, tmp_path / "cache", smoke=True, log=lambda *_: None)
    assert not list((tmp_path / "cache").rglob("*.ipynb")), "a failed run left a notebook"


def test_progress_bars_keep_their_final_state(tmp_path: Path) -> None:
    lab = tmp_path / "bars-lab.py"
    lab.write_text("# %%\nimport sys, time\nfrom tqdm import tqdm\n"
                   "sys.stderr.write('step 1\\rstep 2\\rdone\\n')\n"
                   "for _ in tqdm(range(40), desc='work'):\n    time.sleep(0.01)\n"
                   "print('plain line')\n")
    run = execute_lab(lab, tmp_path / "cache", smoke=True, log=lambda *_: None)
    cells = nbformat.read(run.notebook, as_version=4).cells
    outputs = next(c for c in cells if c.cell_type == "code").outputs  # after the setup cell
    texts = [(o.name, o.text) for o in outputs]
    assert texts[0] == ("stderr", "done\n")
    assert texts[1][0] == "stderr" and texts[1][1].startswith("work: 100%")  # only the last bar
    assert texts[2] == ("stdout", "plain line\n") and len(texts) == 3


def test_labs_run_side_by_side_with_their_own_environment(tmp_path: Path, monkeypatch) -> None:
    """Two labs at once: each kernel gets the smoke flag and one torch thread through its own
    environment (nothing is set in this process), results come back under their names in the
    given order, and a failing lab is reported by name."""
    monkeypatch.delenv("DIFFUSION_NOTES_SMOKE", raising=False)
    body = ("# %%\nimport os\nprint(os.environ['DIFFUSION_NOTES_SMOKE'], "
            "os.environ['OMP_NUM_THREADS'])\n")
    pairs = []
    for name in ("a-lab.py", "b-lab.py"):
        (tmp_path / name).write_text(body + f"# {name}\n")
        pairs.append((tmp_path / name, name))
    monkeypatch.setattr(labs.os, "cpu_count", lambda: 2)
    runs = labs.execute_labs(pairs, tmp_path / "cache", smoke=True, jobs=2, log=lambda *_: None)
    assert list(runs) == ["a-lab.py", "b-lab.py"]
    for run in runs.values():
        nb = nbformat.read(run.notebook, as_version=4)
        out = next(c for c in nb.cells if c.cell_type == "code").outputs[0].text
        assert out == "1 1\n"
        assert nb.metadata["diffusion_notes"]["machine"]["threads"] == 1
    assert "DIFFUSION_NOTES_SMOKE" not in __import__("os").environ
    (tmp_path / "c-lab.py").write_text("# %%\nraise RuntimeError('boom')\n")
    with pytest.raises(LabError, match=r"c-lab\.py: .*boom"):
        labs.execute_labs(pairs + [(tmp_path / "c-lab.py", "c-lab.py")], tmp_path / "cache2",
                          smoke=True, jobs=2, log=lambda *_: None)


def test_lab_jobs_setting(monkeypatch) -> None:
    monkeypatch.setenv("DIFFUSION_NOTES_LAB_JOBS", "3")
    assert labs.lab_jobs(0) == 3
    monkeypatch.setenv("DIFFUSION_NOTES_LAB_JOBS", "two")
    with pytest.raises(ValueError, match="DIFFUSION_NOTES_LAB_JOBS='two'"):
        labs.lab_jobs(0)
    monkeypatch.delenv("DIFFUSION_NOTES_LAB_JOBS")
    monkeypatch.setattr(labs.os, "cpu_count", lambda: 8)
    assert labs.lab_jobs(0) == 2 and labs.lab_jobs(1) == 1
    monkeypatch.setattr(labs.os, "cpu_count", lambda: 1)
    assert labs.lab_jobs(0) == 1


def test_order_labs_moves_named_labs_first_and_names_bad_entries() -> None:
    pairs = [(Path(f"/docs/{n}"), n) for n in ("a-lab.py", "b-lab.py", "c-lab.py", "d-lab.py")]
    ordered = labs.order_labs(pairs, ["c-lab.py", "a-lab.py"])
    assert [rel for _, rel in ordered] == ["c-lab.py", "a-lab.py", "b-lab.py", "d-lab.py"]
    assert labs.order_labs(pairs, []) == pairs
    with pytest.raises(ValueError, match="'e-lab.py' is not a lab; labs are: a-lab.py"):
        labs.order_labs(pairs, ["e-lab.py"])
    with pytest.raises(ValueError, match="'b-lab.py' is named twice"):
        labs.order_labs(pairs, ["b-lab.py", "b-lab.py"])


def test_labs_first_in_mkdocs_yml_names_real_labs(monkeypatch) -> None:
    """The site's start order names labs that exist (a renamed lab must be renamed there too)."""
    from mkdocs.config import load_config

    monkeypatch.setenv("NO_MKDOCS_2_WARNING", "1")
    root = REPO
    config = load_config(str(root / "mkdocs.yml"))
    first = list(config["plugins"]["diffusion-notes"].config.labs_first)
    assert first, "mkdocs.yml sets no labs_first: the longest labs would start last"
    existing = [(p, p.relative_to(root / "docs").as_posix()) for p in (root / "docs").rglob("*-lab.py")]
    assert len(labs.order_labs(existing, first)) == len(existing)
