"""``diffusion-notes papers import|search|check`` and ``diffusion-notes cite``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diffusion_notes.cli import main

BIB = """\
@inproceedings{ho2020denoising,
  title = {Denoising Diffusion Probabilistic Models},
  author = {Ho, Jonathan and Jain, Ajay and Abbeel, Pieter},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year = {2020},
  eprint = {2006.11239},
  archivePrefix = {arXiv},
  code = {https://github.com/hojonathanho/diffusion},
  sections = {Foundations Extra},
}

@misc{song2020denoising,
  title = {Denoising Diffusion Implicit Models},
  author = {Song, Jiaming and Meng, Chenlin and Ermon, Stefano},
  howpublished = {arXiv preprint arXiv:2010.02502},
  year = {2020},
  eprint = {2010.02502},
  archivePrefix = {arXiv},
  doi = {10.48550/arXiv.2010.02502},
  sections = {Video Editing},
}
"""


@pytest.fixture
def bib(tmp_path):
    f = tmp_path / "papers.bib"
    f.write_text(BIB, encoding="utf-8")
    return f


def test_cite_prints_bibtex(bib, capsys):
    assert main(["cite", "ho2020denoising", "--bib", str(bib)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("@inproceedings{ho2020denoising,") and "sections" not in out


def test_cite_unknown_key_names_closest(bib, capsys):
    assert main(["cite", "ho2020denoisin", "song2020denoising", "--bib", str(bib)]) == 1
    cap = capsys.readouterr()
    assert "unknown key 'ho2020denoisin' (closest: ho2020denoising" in cap.err
    assert "@misc{song2020denoising," in cap.out  # the known key is still printed


def test_search_filters(bib, capsys):
    assert main(["papers", "search", "denoising", "--bib", str(bib)]) == 0
    out = capsys.readouterr().out
    assert "ho2020denoising" in out and "song2020denoising" in out
    assert main(["papers", "search", "denoising", "--has-code", "--bib", str(bib)]) == 0
    out = capsys.readouterr().out
    assert "ho2020denoising" in out and "song2020denoising" not in out
    assert (
        main(
            [
                "papers",
                "search",
                "implicit",
                "--year",
                "2020",
                "--section",
                "editing",
                "--bib",
                str(bib),
            ]
        )
        == 0
    )
    assert "song2020denoising" in capsys.readouterr().out
    assert main(["papers", "search", "implicit", "--year", "2019", "--bib", str(bib)]) == 1


def test_check_reports_file_line_key(bib, tmp_path, capsys):
    docs = tmp_path / "docs"
    (docs / "part1").mkdir(parents=True)
    (docs / "part1" / "ddpm.md").write_text(
        "# DDPM\n\nThe loss [@ho2020denoising] and DDIM [@song2020denoising].\n"
        "```python\nx = d['@notakey']  # [@inside_code_fence]\n```\n"
        "Mail me at a@b.org [a@b.org]. Typo here: [@ho2020denoisng; @song2020denoising].\n",
        encoding="utf-8",
    )
    (docs / "part1" / "lab.py").write_text(
        "# %% [markdown]\n# As in [@nobody2099]\n# %%\nx = '[@not_in_markdown_cell]'\n",
        encoding="utf-8",
    )
    assert main(["papers", "check", "--bib", str(bib), "--docs", str(docs)]) == 1
    err = capsys.readouterr().err
    md = docs / "part1" / "ddpm.md"
    assert f"{md}:7: unknown citation key 'ho2020denoisng' (did you mean ho2020denoising" in err
    assert f"{docs / 'part1' / 'lab.py'}:2: unknown citation key 'nobody2099'" in err
    assert "inside_code_fence" not in err and "b.org" not in err and "not_in_markdown" not in err
    assert "2 problem(s)" in err
    (docs / "part1" / "lab.py").unlink()
    (docs / "part1" / "ddpm.md").write_text("Fine [@ho2020denoising].\n", encoding="utf-8")
    assert main(["papers", "check", "--bib", str(bib), "--docs", str(docs)]) == 0


def test_check_reports_malformed_bib(tmp_path, capsys):
    bad = tmp_path / "papers.bib"
    bad.write_text(BIB + "\n@misc{ho2020denoising, title = {Twice}}\n", encoding="utf-8")
    assert main(["papers", "check", "--bib", str(bad), "--docs", str(tmp_path)]) == 1
    assert "duplicate entry key (key 'ho2020denoising')" in capsys.readouterr().err


def test_import_command_prints_report(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(
        "# L\n\n### Video Generation\n\n+ [Some Paper](https://arxiv.org/abs/2301.00001) (Jan., 2023)\n"
        "\n- [Spam](https://spam.example) - buy now\n",
        encoding="utf-8",
    )
    bib = tmp_path / "papers.bib"
    meta = tmp_path / "meta"
    meta.mkdir()
    assert main(["papers", "import", str(readme), "--bib", str(bib), "--metadata", str(meta)]) == 0
    out = capsys.readouterr().out
    assert "added: 1" in out and "skipped lines: 1" in out and "line 7:" in out
    assert "some2023paper" in bib.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- citing (issue 10)

REAL = str(Path(__file__).resolve().parents[1] / "papers.bib")


def test_cite_is_case_insensitive_and_shows_flags(capsys):
    assert main(["cite", "JAIN2023Peekaboo", "--bib", REAL]) == 0
    assert capsys.readouterr().out.startswith("@inproceedings{jain2023peekaboo,")
    assert main(["cite", "exploring2024variational", "--bib", REAL]) == 0
    cap = capsys.readouterr()
    assert "note: exploring2024variational: authors.json record for 2411.07348 names another " \
        "title" in cap.err and "author =" not in cap.out  # fmt: skip


def test_cite_formats(capsys):
    assert main(["cite", "abdal2025dynamic", "--format", "biblatex", "--bib", REAL]) == 0
    out = capsys.readouterr().out
    assert "date = {2025-02}" in out and "eprinttype = {arxiv}" in out and "year =" not in out
    assert main(["cite", "abdal2025dynamic", "team2025aether", "--format", "csl-json",
                 "--bib", REAL]) == 0  # fmt: skip
    items = json.loads(capsys.readouterr().out)
    assert [i["id"] for i in items] == ["abdal2025dynamic", "team2025aether"]
    assert items[0]["type"] == "article" and items[0]["number"] == "arXiv:2502.14844"
    assert items[0]["author"][0] == {"family": "Abdal", "given": "Rameen"}
    assert items[0]["issued"] == {"date-parts": [[2025, 2]]}
    assert items[1]["author"][0] == {"literal": "Aether Team"}
    with pytest.raises(SystemExit):  # argparse names the allowed values
        main(["cite", "abdal2025dynamic", "--format", "ris", "--bib", REAL])
    assert "choose from 'bibtex', 'biblatex', 'csl-json'" in capsys.readouterr().err


def test_search_phrases_and_the_year_a_paper_appeared(capsys):
    assert main(["papers", "search", "video editing", "--bib", REAL]) == 0
    phrase = capsys.readouterr().out.splitlines()
    assert main(["papers", "search", "video", "editing", "--bib", REAL]) == 0
    words = capsys.readouterr().out.splitlines()
    assert 0 < len(phrase) < len(words)  # a phrase is stricter than its words
    assert all("video editing" in " ".join(ln.lower().split()) for ln in phrase)
    assert main(["papers", "search", '"interactive video" peekaboo', "--bib", REAL]) == 0
    assert "jain2023peekaboo" in capsys.readouterr().out
    # PEEKABOO: CVPR 2024, on arXiv since Dec 2023: it appeared in 2023.
    assert main(["papers", "search", "peekaboo", "--year", "2023", "--bib", REAL]) == 0
    assert "jain2023peekaboo" in capsys.readouterr().out
    assert main(["papers", "search", "peekaboo", "--year", "2024", "--bib", REAL]) == 1
