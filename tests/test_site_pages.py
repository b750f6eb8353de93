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
    assert page.count("Not run yet") == 4
    assert "`python bench/digits.py` writes `bench/results/digits.json`" in page


def test_benchmarks_page_rejects_a_broken_result(tmp_path: Path) -> None:
    (tmp_path / "digits.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"digits\.json: not valid JSON .*bench/digits\.py"):
        render_benchmarks_page(tmp_path)


def test_committed_results_render() -> None:
    page = render_benchmarks_page(REPO / "bench" / "results")
    assert "Not run yet" not in page, "a committed benchmark result is missing"


def test_benchmarks_page_shows_the_video_comparison(tmp_path: Path) -> None:
    score = {"class_consistency": 0.95, "motion_error_px": 0.4}
    video = {
        "date": "2026-12-03T07:00:00+00:00",
        "machine": {"device": "cpu", "cpu_count": 2, "torch": "2.13.0"},
        "train": {"image_seconds": 50.0, "video_seconds": 40.0, "trainable_parameters": 10,
                  "total_parameters": 100},
        "sampling": {"n_clips": 256, "frames": 8, "steps": 25},
        "unconditional": {"video": dict(score, seconds_per_clip=0.05),
                          "frame_by_frame": {"class_consistency": 0.3, "motion_error_px": 2.5,
                                             "seconds_per_clip": 0.04}},
        "from_first_frame": {"video": score, "frame_by_frame": score},
        "goals": {"class_consistency_at_least": 0.9, "motion_error_ratio_at_most": 0.5,
                  "motion_error_ratio": 0.16},
    }
    (tmp_path / "video.json").write_text(json.dumps(video))
    page = render_benchmarks_page(tmp_path)
    assert "| unconditional | video model | 95.0% | 0.40 | 0.050 |" in page
    assert "| unconditional | frame by frame | 30.0% | 2.50 | 0.040 |" in page
    assert "| from a first frame | video model | 95.0% | 0.40 | - |" in page
    assert "ratio video / frame by frame 0.16" in page
