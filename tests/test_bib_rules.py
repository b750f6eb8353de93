"""``papers check`` on one broken entry per class of defect (bib/rules.py, bib/validate.py).

Each case starts from a file that passes, breaks one thing the way issue 10 found it broken in
the real ``papers.bib``, and asserts that the check fails naming the entry and the defect.
"""

from __future__ import annotations

import datetime
import json

import pytest

from diffusion_notes.bib.metadata import Metadata
from diffusion_notes.bib.rules import RULES, strict_parse
from diffusion_notes.bib.store import load_library
from diffusion_notes.cli import main

GOOD = """\
% A comment without an at-sign.

@misc{abdal2025dynamic,
  title = {Dynamic Concepts Personalization from Single Videos},
  author = {Rameen Abdal and Or Patashnik and {Snap Research Team}},
  howpublished = {arXiv preprint arXiv:2502.14844},
  year = {2025},
  month = {Feb},
  eprint = {2502.14844},
  archivePrefix = {arXiv},
  doi = {10.48550/arXiv.2502.14844},
  url = {https://arxiv.org/abs/2502.14844},
}

@inproceedings{jain2023peekaboo,
  title = {{PEEKABOO:} Interactive Video Generation via {Masked-Diffusion} \\& More},
  author = {Yash Jain and Anshul Nasery},
  booktitle = {Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  year = {2024},
  eprint = {2312.07509},
  archivePrefix = {arXiv},
  url = {https://arxiv.org/abs/2312.07509},
  code = {https://github.com/microsoft/Peekaboo},
}

@misc{kling,
  title = {Kling},
  url = {https://klingai.com/},
}

@misc{sora,
  title = {Sora},
  url = {https://sora.com/},
}
"""

TODAY = datetime.date(2026, 12, 3)

# (class, old text, new text, expected words in the problem line)
BREAKS = [
    ("bibtex", "% A comment without an at-sign.", "% Cite as [@key].", "pybtex (strict)"),
    ("bibtex", "\\& More", "& More", "unescaped &"),
    ("bibtex", "Single Videos}", "Single_Videos 100%}", "unescaped % _"),
    ("authors", "Or Patashnik", "Or Patashnik\ufe0f", "invisible character"),
    ("authors", "Or Patashnik", "or Patashnik", "starts in lower case"),
    ("authors", "{Snap Research Team}", "Snap Research Team", "team author"),
    ("authors", "Or Patashnik", "Zhangyang “Atlas” Wang", "non-ASCII"),
    (
        "dates",
        "year = {2024},\n  eprint = {2312",
        "year = {2024},\n  month = {Dec},\n  eprint = {2312",
        "Dec 2024 is not the arXiv date",
    ),  # fmt: skip
    (
        "dates",
        "year = {2025},\n  month = {Feb}",
        "year = {2024},\n  month = {Feb}",
        "not the arXiv date",
    ),  # fmt: skip
    ("dates", "year = {2025},\n  month = {Feb}", "year = {2025}", "ok"),  # month optional
    (
        "dates",
        "year = {2024},\n  eprint = {2312",
        "year = {2027},\n  eprint = {2312",
        "after today",
    ),
    ("links", "https://klingai.com/", "https://klingai.com/?gad_source=1&gclid=Cj0", "tracking"),
    ("links", "https://klingai.com/", "https://sora.com/", "also the url of"),
    ("links", "https://klingai.com/", "https://arxiv.org/abs/2112.03288", "points at arXiv"),
    (
        "links",
        "@misc{kling,\n  title = {Kling},\n  url = {https://klingai.com/},",
        "@misc{peekaboo,\n  title = {{PEEKABOO}},\n  url = {https://github.com/microsoft/Peekaboo},",
        "the same work as jain2023peekaboo",
    ),  # fmt: skip
    (
        "preprints",
        "  howpublished = {arXiv preprint arXiv:2502.14844},\n",
        "",
        "do not print",
    ),  # fmt: skip
    ("preprints", "  doi = {10.48550/arXiv.2502.14844},\n", "", "arXiv DOI"),
    (
        "preprints",
        "{Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern "
        "Recognition (CVPR)}",
        "{CVPR}",
        "abbreviation",
    ),  # fmt: skip
]


def _check(tmp_path, text, capsys) -> tuple[int, str]:
    bib = tmp_path / "papers.bib"
    bib.write_text(text, encoding="utf-8")
    meta = tmp_path / "meta"
    meta.mkdir(exist_ok=True)
    code = main(["papers", "check", "--bib", str(bib), "--docs", str(tmp_path / "none"),
                 "--metadata", str(meta)])  # fmt: skip
    return code, capsys.readouterr().err


def test_the_good_file_passes(tmp_path, capsys):
    assert _check(tmp_path, GOOD, capsys) == (0, "")


@pytest.mark.parametrize("cls,old,new,expected", BREAKS)
def test_each_break_is_caught(tmp_path, capsys, cls, old, new, expected):
    assert old in GOOD
    broken = GOOD.replace(old, new, 1)
    if expected == "ok":  # a change the rules must accept
        assert _check(tmp_path, broken, capsys) == (0, "")
        return
    code, err = _check(tmp_path, broken, capsys)
    assert code == 1 and expected in err, err
    if cls != "bibtex" or "pybtex" not in expected:  # the rule of that class names it
        lib = load_library(tmp_path / "papers.bib")
        rule = RULES[cls]
        found = rule(lib, None, TODAY) if cls == "dates" else rule(lib, None)
        assert any(expected in line for line in found), found


def test_strict_parse_names_the_line():
    problems = strict_parse("% see [@key]\n@misc{a, title = {A}}\n", "x.bib")
    assert len(problems) == 1 and problems[0].startswith("x.bib:2: pybtex (strict)")


def test_authors_checked_against_metadata(tmp_path, capsys):
    """An imported entry whose authors come from a record of another title fails."""
    meta = tmp_path / "meta"
    meta.mkdir()
    record = {"title": "Evaluating Relaxations of Logic for Neural Networks: A Comprehensive "
              "Study", "authors": ["Mattia Medina Grespan"], "tier": "bibtex_or_list"}  # fmt: skip
    (meta / "authors.json").write_text(json.dumps({"2502.14844": record}), encoding="utf-8")
    bib = tmp_path / "papers.bib"
    bib.write_text(GOOD, encoding="utf-8")
    lib = load_library(bib)
    found = RULES["authors"](lib, Metadata.load(meta))
    assert len(found) == 1 and "come from a record of another title" in found[0]
    assert "abdal2025dynamic" in found[0]


def test_clear_title_match_on_the_measured_boundary_cases():
    from diffusion_notes.bib.keys import clear_title_match, same_title

    grespan = ("Evaluating Relaxations of Logic for Neural Networks: A Comprehensive Study",
               "Exploring Variational Autoencoders for Medical Image Generation: A Comprehensive "
               "Study")  # fmt: skip
    assert same_title(*grespan) and not clear_title_match(*grespan)  # 0.61: another paper
    assert clear_title_match("From Slow Bidirectional to Fast Autoregressive Video Diffusion "
                             "Models", "From Slow Bidirectional to Fast Causal Video Generators")  # fmt: skip
    assert clear_title_match("Allegro: Open the Black Box of Commercial-Level Video", "Allegro")
    assert clear_title_match("SinMDM: Single Motion Diffusion", "Single Motion Diffusion")
    assert not clear_title_match("Clone this repository.", "Shared One")
    assert not clear_title_match("", "FlipSketch: Flipping Static Drawings")


def test_author_names_repaired_and_flagged():
    from diffusion_notes.bib.authors import clean_names

    names, truncated, repairs = clean_names(
        [
            "Siyu Zhu and\ufe0f Jingdong Wang",
            "weijia Mao",
            "Ludwig van der Berg",
            "Zhangyang “Atlas” Wang",
            "Aether Team",
            "others",
        ]  # fmt: skip
    )
    assert names == ["Siyu Zhu", "Jingdong Wang", "Weijia Mao", "Ludwig van der Berg",
                     "Zhangyang Wang", "Aether Team"]  # fmt: skip
    assert truncated and len(repairs) == 3 and "U+FE0F" in repairs[0]
