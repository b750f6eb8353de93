"""The one atomic writer: all or nothing, no temporary file left, permissions kept."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from diffusion_notes.atomic import atomic_write, atomic_write_text


def test_writes_exact_text_and_keeps_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "papers.bib"
    atomic_write_text(path, "a\nb\n")
    assert path.read_bytes() == b"a\nb\n"
    assert path.stat().st_mode & 0o777 == 0o644  # a new file is world-readable, not mkstemp's 0600
    os.chmod(path, 0o640)
    atomic_write_text(path, "c\n")
    assert path.read_text() == "c\n" and path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["papers.bib"]


def test_a_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "lab.ipynb"
    atomic_write_text(path, "old")

    def half(fh) -> None:
        fh.write(b"new, half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, half)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["lab.ipynb"]


def test_fsyncs_before_the_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (order.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (order.append("replace"), real_replace(a, b))[1])
    atomic_write_text(tmp_path / "x.txt", "x")
    assert order == ["fsync", "replace"]
