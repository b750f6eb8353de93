"""The importer on small lists written here: ids, merging, authors, keys, curated, writing."""

from __future__ import annotations

import json
import os

import pytest

from diffusion_notes import atomic
from diffusion_notes.bib.importer import import_list
from diffusion_notes.bib.keys import base_key, mint_key, same_title
from diffusion_notes.bib.store import BibError, load_library

HEAD = "# List\n\n## Table of Contents\n- [A](#a)\n\n"


def entry(title, url, date=None, badges=()):
    line = f"+ [{title}]({url})" + (f" ({date})" if date else "")
    return "\n".join(
        [line] + [f"  [![{lab}](https://img.shields.io/badge/x.svg)]({u})" for lab, u in badges]
    )


LIST_A = (
    HEAD
    + "\n\n".join(
        [
            "### Video Generation",
            entry(
                "Alpha: First Paper",
                "https://arxiv.org/abs/2301.00001",
                "Jan., 2023",
                [("Star", "https://github.com/alpha/alpha")],
            ),
            entry(
                "Beta: Title and Badge Disagree",
                "https://arxiv.org/abs/2301.00003",
                "Jan., 2023",
                [("arXiv", "https://arxiv.org/abs/2301.00002")],
            ),
            entry("Gamma: Owner of the Badge Id", "https://arxiv.org/abs/2301.00003", "Jan., 2023"),
            entry("Delta Toolbox", "https://github.com/delta/toolbox"),
            entry("Video Diffusion Models", "https://arxiv.org/abs/2204.03458", "Apr., 2022"),
            "### Video Editing",
            entry("Alpha: First Paper", "https://arxiv.org/abs/2301.00001", "Jan., 2023"),
            entry(
                "Shared One",
                "https://arxiv.org/abs/2302.00010",
                "Feb., 2023",
                [("Star", "https://github.com/shared/one")],
            ),
            entry("Completely Different Two", "https://arxiv.org/abs/2302.00010", "Feb., 2023"),
            entry("Openreview Only", "https://openreview.net/forum?id=xyz", "ICLR 2023"),
        ]
    )
    + "\n"
)

AUTHORS = {
    "2301.00001": {
        "title": "Alpha: First Paper",
        "authors": ["Ann Able", "Bob Baker"],
        "tier": "bibtex_or_list",
        "source": "alpha/alpha:README.md@1",
    },
    "2301.00002": {
        "title": "Beta: Title and Badge Disagree",
        "authors": ["Cy Cole"],
        "tier": "first_author_only",
        "first_author_only": True,
        "source": "x",
    },
    "2302.00010": {
        "title": "Clone this repository.",
        "authors": ["Sam Shared", "Ruoyi and Du"],
        "tier": "heuristic",
        "source": "shared/one:README.md@2",
        "truncated": True,
    },
    "2301.00003": {
        "title": "Something Else Entirely Unrelated",
        "authors": ["Wrong Person"],
        "tier": "bibtex_or_list",
        "source": "else/where:README.md@3",
    },
}
ISSUES = [
    {
        "title": "Openreview Only",
        "kind": "source_title_match_has_other_id",
        "list_ids": [],
        "other_ids": {"2209.99999": 1},
        "examples": ["somewhere:README.md@4"],
    },
]

CURATED = """\
@inproceedings{ho2022video,
  title = {Video Diffusion Models},
  author = {Ho, Jonathan and Salimans, Tim},
  booktitle = {NeurIPS},
  year = {2022},
  eprint = {2204.03458},
  archivePrefix = {arXiv},
}
"""


@pytest.fixture
def setup(tmp_path):
    meta = tmp_path / "meta"
    meta.mkdir()
    (meta / "authors.json").write_text(json.dumps(AUTHORS), encoding="utf-8")
    (meta / "list_id_issues.json").write_text(json.dumps(ISSUES), encoding="utf-8")
    (tmp_path / "curated.bib").write_text(CURATED, encoding="utf-8")
    (tmp_path / "list.md").write_text(LIST_A, encoding="utf-8")
    return tmp_path, meta


def run(tmp_path, meta, text=None, **kw):
    if text is not None:
        (tmp_path / "list.md").write_text(text, encoding="utf-8")
    return import_list(tmp_path / "list.md", tmp_path / "papers.bib", metadata_dir=meta, **kw)


def by_eprint(lib, eprint):
    found = [p for p in lib if p.eprint == eprint]
    assert len(found) == 1, [p.key for p in found]
    return found[0]


def test_one_paper_in_two_sections_is_one_entry(setup):
    tmp, meta = setup
    report = run(tmp, meta)
    lib = load_library(tmp / "papers.bib")
    alpha = by_eprint(lib, "2301.00001")
    assert alpha.key == "able2023alpha"
    assert alpha.sections == ["Video Generation", "Video Editing"]
    assert alpha.authors == ["Ann Able", "Bob Baker"] and not alpha.flags
    assert alpha.code == "https://github.com/alpha/alpha" and alpha.listed
    assert any("Alpha" in m for m in report.merged)


def test_badge_id_owned_by_another_entry_is_dropped(setup):
    tmp, meta = setup
    report = run(tmp, meta)
    lib = load_library(tmp / "papers.bib")
    beta = next(p for p in lib if p.title.startswith("Beta"))
    gamma = next(p for p in lib if p.title.startswith("Gamma"))
    # 2301.00003 is Gamma's own title link: Beta keeps its badge id and records both.
    assert beta.eprint == "2301.00002" and set(beta.listids) == {"2301.00002", "2301.00003"}
    assert any("dropped" in f for f in beta.flags)
    assert gamma.eprint == "2301.00003"
    assert any("Beta" in d and "dropped" in d for d in report.id_decisions)


def test_authors_tiers_and_mismatch(setup):
    tmp, meta = setup
    report = run(tmp, meta)
    lib = load_library(tmp / "papers.bib")
    beta = by_eprint(lib, "2301.00002")
    assert beta.authors == ["Cy Cole"] and beta.et_al  # first_author_only -> "and others"
    assert "Cole and others" in beta.fields["author"]
    gamma = by_eprint(lib, "2301.00003")  # authors.json record names another title: left out
    assert not gamma.has_authors and any("authors left out" in n for n in report.author_notes)
    assert gamma.entry_type == "misc" and gamma.year == "2023"  # still citable
    assert gamma.url == "https://arxiv.org/abs/2301.00003"


def test_two_papers_under_one_id_stay_two_entries(setup):
    tmp, meta = setup
    report = run(tmp, meta)
    lib = load_library(tmp / "papers.bib")
    shared = [p for p in lib if "2302.00010" in p.listids]
    assert len(shared) == 2
    # The authors.json record comes from "shared/one", the first entry's repository: that
    # entry keeps the id and the authors (heuristic, truncated, "Ruoyi and Du" repaired).
    one = next(p for p in shared if p.title == "Shared One")
    two = next(p for p in shared if p.title == "Completely Different Two")
    assert one.eprint == "2302.00010" and two.eprint is None
    assert one.authors == ["Sam Shared", "Ruoyi Du"] and one.et_al
    assert any("heuristically" in f for f in one.flags)
    assert any("2302.00010" in s for s in report.shared_ids)


def test_evidence_supplies_missing_id_and_curated_wins(setup):
    tmp, meta = setup
    run(tmp, meta)
    lib = load_library(tmp / "papers.bib")
    op = next(p for p in lib if p.title == "Openreview Only")
    assert op.eprint == "2209.99999" and op.venue == "ICLR" and op.year == "2023"
    vdm = lib["ho2022video"]  # curated: its fields win, the list adds the section
    assert vdm.curated and vdm.venue == "NeurIPS" and vdm.sections == ["Video Generation"]
    assert len([p for p in lib if p.eprint == "2204.03458"]) == 1
    assert (tmp / "curated.bib").read_text(encoding="utf-8") == CURATED  # never written


def test_idempotent_and_dry_run(setup):
    tmp, meta = setup
    run(tmp, meta)
    first = (tmp / "papers.bib").read_bytes()
    report = run(tmp, meta)
    assert (tmp / "papers.bib").read_bytes() == first
    assert not report.written and not report.added and not report.updated
    (tmp / "papers.bib").unlink()
    run(tmp, meta, dry_run=True)
    assert not (tmp / "papers.bib").exists()


def test_keys_stable_removed_marked_and_new_minted(setup):
    tmp, meta = setup
    run(tmp, meta)
    keys_a = {p.key: p.eprint for p in load_library(tmp / "papers.bib")}
    # Newer list: Gamma gone, Alpha got a venue (its fresh key would be able2024alpha),
    # a new paper whose natural key collides with Alpha's.
    list_b = LIST_A.replace(
        entry("Gamma: Owner of the Badge Id", "https://arxiv.org/abs/2301.00003", "Jan., 2023"), ""
    ).replace("(Jan., 2023)\n  [![Star]", "(Jan., 2023 | CVPR 2024)\n  [![Star]", 1)
    list_b += (
        "\n" + entry("Alpha: Second Paper", "https://arxiv.org/abs/2301.00009", "Jan., 2023") + "\n"
    )
    authors = dict(AUTHORS)
    authors["2301.00009"] = {
        "title": "Alpha: Second Paper",
        "authors": ["Ann Able"],
        "tier": "bibtex_or_list",
        "source": "y",
    }
    (meta / "authors.json").write_text(json.dumps(authors), encoding="utf-8")
    report = run(tmp, meta, list_b)
    lib = load_library(tmp / "papers.bib")
    for key, eprint in keys_a.items():  # nothing lost, every key kept
        assert key in lib and lib[key].eprint == eprint
    alpha = lib["able2023alpha"]
    assert alpha.venue == "CVPR" and alpha.year == "2024" and alpha.entry_type == "inproceedings"
    gamma = by_eprint(lib, "2301.00003")
    assert gamma.fields["listed"] == "no" and (gamma.key, gamma.title) in report.marked_removed
    new = by_eprint(lib, "2301.00009")
    assert new.key == "able2023alphab"  # collision with able2023alpha gets a letter
    assert ("able2023alphab", new.title) in report.added


def test_hand_edits_survive_reimport(setup):
    tmp, meta = setup
    run(tmp, meta)
    bib = tmp / "papers.bib"
    text = bib.read_text(encoding="utf-8")
    text = text.replace("title = {Alpha: First Paper}", "title = {Alpha: The First Paper, Fixed}")
    text = text.replace(
        "  eprint = {2301.00003},\n", "  eprint = {2301.00003},\n  note = {Hand note},\n"
    )
    assert "Fixed" in text and "Hand note" in text
    bib.write_text(text, encoding="utf-8")
    # The list changes Alpha's date; the hand-edited title must stay, the date must follow.
    report = run(tmp, meta, LIST_A.replace("(Jan., 2023)", "(Feb., 2023)", 1))
    lib = load_library(bib)
    alpha = lib["able2023alpha"]
    assert alpha.title == "Alpha: The First Paper, Fixed" and alpha.fields["month"] == "Feb"
    assert by_eprint(lib, "2301.00003").fields["note"] == "Hand note"
    assert any("able2023alpha: title" in h for h in report.hand_edits_kept)


def test_atomic_write_keeps_old_file_on_failure(setup, monkeypatch):
    tmp, meta = setup
    run(tmp, meta)
    bib = tmp / "papers.bib"
    before = bib.read_bytes()
    real_fdopen = os.fdopen

    class Exploding:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()
            return False

        def write(self, text):
            self.fh.write(text[: len(text) // 2])  # half the file, then the disk "fails"
            raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "fdopen", lambda *a, **k: Exploding(real_fdopen(*a, **k)))
    with pytest.raises(OSError, match="disk full"):
        run(tmp, meta, LIST_A.replace("Delta Toolbox", "Delta Toolbox Renamed"))
    assert bib.read_bytes() == before
    assert sorted(p.name for p in tmp.iterdir() if p.name.startswith(".papers.bib")) == []


def test_malformed_existing_bib_stops_import(setup):
    tmp, meta = setup
    bib = tmp / "papers.bib"
    bib.write_text(
        "@misc{a2020x,\n  title = {ok},\n}\n@misc{b2020y,\n  title = {broken,\n", encoding="utf-8"
    )
    before = bib.read_bytes()
    with pytest.raises(BibError, match=r"papers\.bib:4: malformed entry"):
        run(tmp, meta)
    assert bib.read_bytes() == before


def test_keys_helpers():
    assert (
        base_key("Jonathan Ho", 2020, "Denoising Diffusion Probabilistic Models")
        == "ho2020denoising"
    )
    assert base_key("Ho, Jonathan", "2020", "The Denoising Thing") == "ho2020denoising"
    assert base_key(None, 2026, "Helios: Real Real-Time Long Video") == "helios2026real"
    assert base_key("Zoë Müller-Lüdenscheidt", 2024, "Señorita") == "mullerludenscheidt2024senorita"
    assert mint_key("Jonathan Ho", 2020, "Denoising", {"ho2020denoising", "ho2020denoisingb"}) == (
        "ho2020denoisingc"
    )
    assert same_title(
        "Allegro", "Allegro: Open the Black Box of Commercial-Level Video Generation Model"
    )
    assert same_title(
        "Hunyuanvideo: a systematic framework", "HunyuanVideo: A Systematic Framework"
    )
    assert not same_title(
        "L3DG: Latent 3D Gaussian Diffusion", "Dense Depth Priors for Neural Radiance Fields"
    )
