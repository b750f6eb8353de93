"""Loading and checking ``.bib`` files; LaTeX <-> text; the committed bibliography files."""

from __future__ import annotations

from pathlib import Path

import pytest

from diffusion_notes.bib.latex import protect_case, to_latex, to_text
from diffusion_notes.bib.store import BibError, format_bibtex, load_library, parse_bib_text

REPO = Path(__file__).resolve().parents[1]

GOOD = """\
@inproceedings{ho2020denoising,
  title = {Denoising Diffusion Probabilistic Models},
  author = {Ho, Jonathan and Jain, Ajay and Abbeel, Pieter},
  booktitle = {NeurIPS},
  year = {2020},
  eprint = {2006.11239},
  sections = {Video Generation; Video Editing},
  listed = {yes},
}

@misc{x2024y,
  title = {Se{\\~n}orita and {GAN}s: \\$500 \\& a\\_b},
  author = {First Author and others},
  year = {2024},
}
"""


def test_load_good_and_properties(tmp_path):
    f = tmp_path / "p.bib"
    f.write_text(GOOD, encoding="utf-8")
    lib = load_library(f)
    assert list(lib.entries) == ["ho2020denoising", "x2024y"]
    p = lib["ho2020denoising"]
    assert p.line == 1 and lib["x2024y"].line == 11
    assert p.authors == ["Jonathan Ho", "Ajay Jain", "Pieter Abbeel"]
    assert p.year == "2020" and p.venue == "NeurIPS" and p.eprint == "2006.11239"
    assert p.sections == ["Video Generation", "Video Editing"] and p.listed
    q = lib["x2024y"]
    assert q.title == "Señorita and GANs: $500 & a_b"
    assert q.authors == ["First Author"] and q.et_al and q.authors_text == "First Author et al."
    assert q.venue is None and not q.listed


def test_malformed_entry_reported_with_line(tmp_path):
    text = (
        GOOD
        + "\n@misc{broken2024,\n  title = {unclosed brace,\n  year = 2024\n\n@misc{ok2024, title = {Fine}}\n"
    )
    f = tmp_path / "p.bib"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(BibError) as info:
        load_library(f)
    msg = str(info.value)
    assert f"{f}:17:" in msg and "malformed entry" in msg and "broken2024" in msg


def test_missing_comma_between_fields_reported(tmp_path):
    # bibtexparser reads "{IEEE ICCV}\n year={2023}" as one bare value: must not pass silently.
    text = "@misc{zhang2023adding,\n  title={Adding},\n  booktitle={IEEE ICCV}\n  year={2023},\n}\n"
    with pytest.raises(BibError, match=r"p\.bib:3: field 'booktitle' has an unbraced value"):
        parse_bib_text(text, tmp_path / "p.bib")


def test_duplicate_keys_rejected(tmp_path):
    text = GOOD + "\n@misc{ho2020denoising, title = {Again}}\n"
    with pytest.raises(BibError, match=r":17: duplicate entry key \(key 'ho2020denoising'\)"):
        parse_bib_text(text, tmp_path / "p.bib")
    # BibTeX compares keys case-insensitively: Ho2020Denoising is the same key.
    text2 = GOOD + "\n@misc{Ho2020Denoising, title = {Again}}\n"
    with pytest.raises(BibError, match=r"line 1 has the same key"):
        parse_bib_text(text2, tmp_path / "p.bib")


def test_entry_without_title_and_bad_key(tmp_path):
    text = "@misc{no title here, year = {2020}}\n@misc{notitle2020, year = {2020}}\n"
    with pytest.raises(BibError) as info:
        parse_bib_text(text, tmp_path / "p.bib")
    assert "entry has no title (key 'notitle2020')" in str(info.value)


def test_closest_keys_and_unknown_key_message(tmp_path):
    lib = parse_bib_text(GOOD, tmp_path / "p.bib")
    assert lib.closest("ho2020denoisng") == ["ho2020denoising"]
    with pytest.raises(KeyError, match="closest: ho2020denoising"):
        lib["ho2020denosing"]


def test_format_bibtex_round_trip(tmp_path):
    lib = parse_bib_text(GOOD, tmp_path / "p.bib")
    p = lib["ho2020denoising"]
    clean = format_bibtex(p)
    assert "sections" not in clean and "listed" not in clean  # project fields left out
    full = format_bibtex(p, internal=True)
    again = parse_bib_text(full, tmp_path / "q.bib")["ho2020denoising"]
    assert dict(again.fields) == dict(p.fields) and again.entry_type == p.entry_type


@pytest.mark.parametrize(
    "text",
    [
        "Señorita-2M",
        "Mask²DiT",
        "PUSA V1.0 $500",
        "R&D 50% #1 a_b {x} ~ ^ \\ back",
        "a--b---c",
        "Łódź Ø ß",
    ],
)
def test_latex_round_trip(text):
    assert to_text(to_latex(text)) == text
    assert to_text(protect_case(to_latex(text))) == text


def test_to_text_reads_hand_written_bibtex():
    assert to_text(r"Bj{\"o}rn Ommer") == "Björn Ommer"
    assert to_text(r"Andr{\'e}s") == "Andrés"
    assert to_text(r"Diffusion models beat {GAN}s") == "Diffusion models beat GANs"
    assert to_text(r"IEEE/CVF Vision \& Pattern") == "IEEE/CVF Vision & Pattern"
    assert to_text("pages 1--2") == "pages 1\u20132"


def test_committed_curated_bib_is_valid_and_has_required_papers():
    cur = load_library(REPO / "curated.bib")
    for key in (
        "ho2020denoising",
        "song2020denoising",
        "song2021scorebased",
        "Kingma.Welling.2014",
    ):
        assert key in cur
    by_id = {p.eprint: p for p in cur if p.eprint}
    # Written from the papers' facts (no public BibTeX was found for them).
    assert "Make-A-Video" in by_id["2209.14792"].title
    assert "DiffEdit" in by_id["2210.11427"].title
    assert "SDXL" in by_id["2307.01952"].title
    for p in cur:  # one style: every curated entry has authors and a year
        assert p.has_authors and p.year, p.key


def test_committed_papers_bib_is_valid():
    lib = load_library(REPO / "papers.bib")
    cur = load_library(REPO / "curated.bib")
    assert set(cur.entries) <= set(lib.entries)  # the curated file is merged in whole


def test_norm_url_keeps_identifying_query_and_drops_tracking() -> None:
    from diffusion_notes.bib.keys import norm_url

    a = norm_url("https://openreview.net/forum?id=zrWNtzSZsf")
    b = norm_url("https://openreview.net/forum?id=PxTIG12RRHS")
    assert a != b  # two papers on one host differ only in ?id=
    assert norm_url("https://www.Kling.ai/?utm_source=x&ref=y#top") == "kling.ai"
    assert norm_url("http://github.com/a/b/") == norm_url("https://github.com/a/b")
