"""Generated pages: the benchmarks page follows bench/results and says what is missing."""

from __future__ import annotations

import json
import math
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


def test_fast_sampling_section_renders_ring_and_digits(tmp_path: Path) -> None:
    ring = [{"target": "ring", "method": "ours: A", "nfe": 5, "swd": 0.05, "ratio": 2.76,
             "seconds": 1.0},
            {"target": "ring", "method": "diffusers: B", "nfe": 5, "swd": math.inf,
             "ratio": math.inf, "seconds": 1.0}]
    digits = [{"method": "DDIM", "steps": 50, "fd": 12.345, "floor": 10.0, "precision": 0.9,
               "recall": 0.8, "class_accuracy": 0.95, "seconds_per_64": 0.5}]
    data = {"date": "2026-12-03T07:00:00+00:00", "ring": ring, "digits": digits,
            "ring_floor": 0.0175, "seven_floor": 0.0175, "goals": {"5": 5.5},
            "ring_settings": {"ring_n": 200000, "digits_n": 64},
            "machine": {"cpu_count": 2, "load_average_1min": 3.0, "torch": "x"}}
    (tmp_path / "fast_sampling.json").write_text(json.dumps(data))
    page = render_benchmarks_page(tmp_path)
    assert "| **goal** | ≤ 5.5 |" in page
    assert "| ours: A | 2.76 |" in page and "| diffusers: B | failed |" in page
    assert "| DDIM | 50 | 12.35 | 10.00 | 0.900 | 0.800 | 0.950 | 0.500 |" in page


def test_benchmarks_page_shows_the_video_comparison(tmp_path: Path) -> None:
    score = {"class_consistency": 0.95, "motion_error_px": 0.4}
    video = {
        "date": "2026-12-03T07:00:00+00:00",
        "machine": {"device": "cpu", "cpu_count": 2, "torch": "2.13.0"},
        "train": {"image_seconds": 50.0, "video_seconds": 40.0, "trainable_parameters": 10,
                  "total_parameters": 100},
        "sampling": {"n_clips": 64, "frames": 8, "steps": 25},
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
    assert "Variants of the lab's model" not in page  # none written yet
    variant = dict(video, variant={"temporal": "spacetime", "steps": 3000},
                   unconditional={"video": {"class_consistency": 0.529, "motion_error_px": 1.98},
                                  "frame_by_frame": {"class_consistency": 0.316,
                                                     "motion_error_px": 1.96}})
    (tmp_path / "video-spacetime-3000steps.json").write_text(json.dumps(variant))
    (tmp_path / "video-smoke.json").write_text("not read")  # smoke runs are left out
    good = dict(video, variant={"temporal": "previous", "prediction": "v"},
                unconditional={"video": {"class_consistency": 0.93, "motion_error_px": 0.9},
                               "frame_by_frame": {"class_consistency": 0.3,
                                                  "motion_error_px": 1.9}})
    (tmp_path / "video-previous.json").write_text(json.dumps(good))
    page = render_benchmarks_page(tmp_path)
    assert ("| `temporal=spacetime`, `steps=3000` | 2026-12-03 | 52.9% / 31.6% | 1.98 / 1.96 | "
            "95.0% | 40 | not met, not met |" in page)
    # the goals are judged from the numbers: 93 % >= 90 %, and 0.9 <= 0.5 * 1.9
    assert ("| `temporal=previous`, `prediction=v` | 2026-12-03 | 93.0% / 30.0% | 0.90 / 1.90 | "
            "95.0% | 40 | met, met |" in page)
    # the same model sampled otherwise is its own row, which says how it was sampled
    stochastic = dict(good, sampling={"n_clips": 64, "frames": 8, "steps": 50, "eta": 1.0})
    (tmp_path / "video-previous-eta1-ddim50.json").write_text(json.dumps(stochastic))
    page = render_benchmarks_page(tmp_path)
    assert ("| `temporal=previous`, `prediction=v`; sampled by DDIM with 50 steps, eta 1 | "
            "2026-12-03 | 93.0% / 30.0% |" in page)
    assert "| `temporal=previous`, `prediction=v` | 2026-12-03 |" in page  # eta 0, 25 steps
    more = dict(stochastic, sampling=dict(stochastic["sampling"], n_clips=256))
    (tmp_path / "video-previous-eta1-ddim50-256clips.json").write_text(json.dumps(more))
    assert ("sampled by DDIM with 50 steps, eta 1; 256 clips | 2026-12-03 |"
            in render_benchmarks_page(tmp_path))


def test_display_math_blocks_open_after_a_blank_line() -> None:
    """Arithmatex takes a ``$$`` block as display math only when it starts a paragraph: after an
    anchor line such as ``<a id="eq-...">`` with no blank line between, or after a stray ``$$``,
    the page shows the raw LaTeX."""
    bad = []
    for path in sorted((REPO / "docs").rglob("*.md")):
        lines = path.read_text(encoding="utf-8").splitlines()
        inside = fence = False
        for number, line in enumerate(lines, 1):
            if line.strip().startswith("```"):
                fence = not fence
            if fence or line.strip() != "$$":
                continue
            if not inside and number > 1 and lines[number - 2].strip():
                bad.append(f"{path.relative_to(REPO)}:{number}: this $$ block does not start a "
                           "paragraph: add a blank line before it, or remove an unpaired $$ "
                           "earlier in the file")
            inside = not inside
    assert not bad, "\n".join(bad)


def test_docs_hold_no_control_characters() -> None:
    """A note written through a Python string can turn LaTeX's \\tilde, \\varnothing or \\beta
    into a tab, a vertical tab or a backspace; MathJax then shows the broken command."""
    bad = []
    for path in sorted((REPO / "docs").rglob("*")):
        if path.suffix not in (".md", ".py"):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            found = sorted({hex(ord(c)) for c in line if ord(c) < 32 and c != "\n"})
            if found:
                bad.append(f"{path.relative_to(REPO)}:{number}: {', '.join(found)}")
    assert not bad, "control characters (write the LaTeX backslash as \\\\):\n" + "\n".join(bad)


def test_table_of_contents_drops_citation_keys() -> None:
    """Headings that cite a paper keep their words in the table of contents, not the raw key."""
    from mkdocs.structure.toc import AnchorLink

    from diffusion_notes.site.plugin import strip_toc_citations

    top = AnchorLink("The lineage", "the-lineage", 2)
    child = AnchorLink("Latent image-to-image [@rombach2022high; @podell2024sdxl]", "x", 3)
    grandchild = AnchorLink("SDEdit [@meng2022sdedit, sec. 3] in practice", "y", 4)
    child.children.append(grandchild)
    top.children.append(child)
    strip_toc_citations([top])
    assert [top.title, child.title, grandchild.title] == [
        "The lineage", "Latent image-to-image", "SDEdit in practice"]


def _lcm_row(sampler: str, steps: int, fd: float) -> dict:
    return {"sampler": sampler, "steps": steps, "network_evaluations": steps, "fd": fd,
            "fd_seeds": [fd - 1, fd + 1], "floor": 8.0, "precision": 0.9, "recall": 0.8,
            "class_accuracy": 0.95, "seconds_per_64": 0.01, "w": 0.0}


def test_consistency_and_ddim_ratio_sections_render_their_goals(tmp_path: Path) -> None:
    """The LCM section states each goal from the file's verdict and the numbers it compares,
    adds the ten-seed means when that run exists; the DDIM ratio section recomputes each
    seed's ratio and the verdict against the stored goal."""
    rows = [_lcm_row("DDIM", 10, 11.0), _lcm_row("DDIM", 20, 10.0), _lcm_row("TCD", 2, 10.5),
            _lcm_row("TCD", 4, 10.25)]
    lcm = {"date": "2026-12-04T21:44:00+00:00", "device": "cpu", "torch_threads": 2,
           "load_average_before": 1.0, "n_samples": 640, "seeds": 2, "gamma": 0.3,
           "distill_config": {"trajectory_fraction": 0.5}, "rows": rows,
           "goals": {"lcm2_no_worse_than_ddim10": True, "lcm4_no_worse_than_ddim20": False}}
    (tmp_path / "lcm.json").write_text(json.dumps(lcm))
    page = render_benchmarks_page(tmp_path)
    assert "| TCD | 4 | 4 | 10.25 | 9.25 / 11.25 | 8.00 |" in page
    assert "- 2 steps no worse than DDIM at 10: met (10.50 against 11.00)" in page
    assert "- 4 steps no worse than DDIM at 20: not met (10.25 against 10.00)" in page
    assert "10 seeds" not in page  # no ten-seed run in this folder
    (tmp_path / "lcm-10seeds.json").write_text(json.dumps({**lcm, "seeds": 10}))
    page = render_benchmarks_page(tmp_path)
    assert "| TCD |  | 10.50 | 10.25 |  |  |" in page and "Goals met on these means: 1 of 2." in page
    ratio = {"date": "2026-12-04T20:15:00+00:00", "n_samples": 640, "goal_ratio": 1.25,
             "rows": [{"seed": 0, "ddim50": 12.0, "ddpm1000": 8.0},
                      {"seed": 1, "ddim50": 9.0, "ddpm1000": 10.0}],
             "all_seeds": {"seeds": 2, "ddim50_mean": 10.5, "ddpm1000_mean": 9.0,
                           "ratio_of_means": 1.1667, "per_seed_ratio_sd": 0.42},
             "first_three_seeds": {"seeds": 2, "ratio_of_means": 1.1667}, "speedup": 19.0}
    (tmp_path / "ddim_ratio.json").write_text(json.dumps(ratio))
    page = render_benchmarks_page(tmp_path)
    assert "| 0 | 12.00 | 8.00 | 1.50 |" in page and "| 1 | 9.00 | 10.00 | 0.90 |" in page
    assert "ratio 1.17 (goal ≤ 1.25: met)" in page
