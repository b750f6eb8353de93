"""Generated pages: the benchmarks page follows bench/results and says what is missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diffusion_notes.site.benchmarks import render_benchmarks_page
from tests.conftest import REPO


def test_benchmarks_page_reads_the_results(tmp_path: Path) -> None:
    site = {"cold_s": 123.4, "cached_s": 5.6, "smoke": False, "machine": "test box",
            "goals": {"cold_s": 900, "cached_s": 10}}
    (tmp_path / "site_build.json").write_text(json.dumps(site))
    page = render_benchmarks_page(tmp_path)
    assert "| cold (every lab executed, every model trained, full settings) | 123.4 |" in page
    assert "| cached rebuild | 5.6 | ≤ 10 |" in page
    # the others were not run: said so, with the command, never a number
    sections = page.count("\n## ")
    assert sections >= 5 and page.count("Not run yet") == sections - 1
    assert "`python bench/digits.py` writes `bench/results/digits.json`" in page


def test_benchmarks_page_rejects_a_broken_result(tmp_path: Path) -> None:
    (tmp_path / "digits.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"digits\.json: not valid JSON .*bench/digits\.py"):
        render_benchmarks_page(tmp_path)


def test_committed_results_render() -> None:
    page = render_benchmarks_page(REPO / "bench" / "results")
    assert "Not run yet" not in page, "a committed benchmark result is missing"
    weights = json.loads((REPO / "bench" / "results" / "site_weight.json").read_text())
    median = weights["current"]["first_search_result_ms"]["median"]
    assert f"median {median} ms" in page and "load average" in page
