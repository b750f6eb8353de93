"""Imports cannot destroy data: every bad input is one line, no traceback, papers.bib untouched.

Run on a copy of the committed ``papers.bib`` and ``curated.bib`` with the command line, as a
user would. Before the guard, an empty or broken list exited 0 and marked all 750 list entries
as no longer listed, and a run without the metadata folder dropped the authors of 565 entries.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from diffusion_notes.cli import main

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
NEW = DATA / "awesome-video-diffusion" / "README.md"
META = DATA / "paper-metadata"


@pytest.fixture
def work(tmp_path):
    shutil.copy(REPO / "papers.bib", tmp_path / "papers.bib")
    shutil.copy(REPO / "curated.bib", tmp_path / "curated.bib")
    return tmp_path


def _import(work: Path, readme: Path, *extra: str) -> list[str]:
    return ["papers", "import", str(readme), "--bib", str(work / "papers.bib"), *extra]


def _refused(work: Path, argv: list[str], capsys, expected: str) -> None:
    before = (work / "papers.bib").read_bytes()
    assert main(argv) == 1
    cap = capsys.readouterr()
    lines = [ln for ln in cap.err.splitlines() if ln.strip()]
    assert lines and all(ln.startswith("error: ") for ln in lines), cap.err
    assert expected in cap.err and "Traceback" not in cap.err
    assert (work / "papers.bib").read_bytes() == before  # untouched


BAD_LISTS = {
    "empty": (b"", "the list file is empty"),
    "blank": (b"\n  \n", "the list file is empty"),
    "not_utf8": ("# List\n### Video\n+ [Señorita](https://x.org)\n".encode("latin-1"), "not UTF-8"),
    "no_entries": (b"# Awesome\n\n| a | b |\n|---|\n| broken table |\n", "no list entries found"),
}


@pytest.mark.parametrize("case", sorted(BAD_LISTS))
def test_bad_list_files(work, capsys, case):
    data, expected = BAD_LISTS[case]
    readme = work / "README.md"
    readme.write_bytes(data)
    _refused(work, _import(work, readme, "--metadata", str(work)), capsys, expected)


def test_directory_and_missing_file(work, capsys):
    _refused(work, _import(work, work, "--metadata", str(work)), capsys, "not a file")
    _refused(work, _import(work, work / "nope.md"), capsys, "list file not found")


def test_missing_metadata_folder(work, capsys):
    argv = _import(work, work / "x.md", "--metadata", str(work / "missing"))
    (work / "x.md").write_text("# L\n\n### S\n\n+ [A](https://arxiv.org/abs/2301.00001)\n")
    _refused(work, argv, capsys, "metadata folder not found")


def test_broken_metadata_file(work, capsys):
    meta = work / "meta"
    meta.mkdir()
    (meta / "authors.json").write_text("{not json", encoding="utf-8")
    (work / "x.md").write_text("# L\n\n### S\n\n+ [A](https://arxiv.org/abs/2301.00001)\n")
    _refused(work, _import(work, work / "x.md", "--metadata", str(meta)), capsys, "authors.json")


real = pytest.mark.skipif(not (NEW.is_file() and META.is_dir()), reason="no shared list data")


@real
def test_truncated_list_is_refused_unless_allowed(work, capsys):
    """A list cut after its first sections would mark most entries as no longer listed."""
    text = NEW.read_text(encoding="utf-8")
    cut = text[: text.index("### Video Generation")]
    readme = work / "README.md"
    readme.write_text(cut, encoding="utf-8")
    _refused(work, _import(work, readme, "--metadata", str(META)), capsys, "--allow-removals")
    assert main(_import(work, readme, "--metadata", str(META), "--allow-removals")) == 0
    assert "listed = {no}" in (work / "papers.bib").read_text(encoding="utf-8")


@real
def test_import_without_metadata_cannot_drop_authors(work, capsys):
    empty = work / "meta"
    empty.mkdir()  # a folder without authors.json: no author data at all
    _refused(work, _import(work, NEW, "--metadata", str(empty)), capsys, "drop the authors of")


@real
def test_the_real_reimport_is_allowed_and_changes_nothing(work, capsys):
    before = (work / "papers.bib").read_bytes()
    assert main(_import(work, NEW, "--metadata", str(META))) == 0
    assert "not written" in capsys.readouterr().out
    assert (work / "papers.bib").read_bytes() == before
