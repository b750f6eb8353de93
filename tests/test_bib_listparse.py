"""Reading the Awesome list: every oddity of the two snapshots, on fixtures written here."""

from __future__ import annotations

import pytest

from diffusion_notes.bib.listparse import parse_arxiv_url, parse_date, parse_list

FIXTURE = """\
# An awesome list [![Awesome](https://cdn.example/badge.svg)](https://github.com/x/awesome)
Intro text, not an entry.

## Table of Contents
- [Section A](#section-a)

### Section A

+ [Plain Paper: A Title](https://arxiv.org/abs/2301.01234) (Mar., 2023)
  [![Star](https://img.shields.io/github/stars/own/repo.svg?style=social&label=Star)](https://github.com/own/repo)
  [![arXiv](https://img.shields.io/badge/arXiv-b31b1b.svg)](https://arxiv.org/abs/2301.01234)
  [![Website](https://img.shields.io/badge/Website-9cf)](https://own.github.io/paper/)

+ Missing Bracket Paper](https://arxiv.org/abs/2302.00001) (Mar, 2023)

+ [**Bold Paper**](https://arxiv.org/pdf/2511.00511v3) (CVPR, 2026) [![arXiv](https://img.shields.io/badge/arXiv-b31b1b.svg)](https://arxiv.org/abs/2511.00511v3)

+ [Malformed Id](https://arxiv.org/abs/2307.000400) (Jul., 2023)
  [![arXiv](https://img.shields.io/badge/arXiv-b31b1b.svg)](https://arxiv.org/abs/2307.00040)

+ [Double Slash](https://arxiv.org/abs//2306.08707) (Jun., 2023)

+ [Www Host](https://www.arxiv.org/abs/2409.07450) (Sep., 2024)

+ [No Abs Path](https://arxiv.org/2503.19881) (Mar., 2025 | CVPR 2025)

+ [Venue Only](https://arxiv.org/abs/2303.08320) (CVPR 2023)

+ [No Space Date](https://arxiv.org/abs/2403.10179)(Mar., 2023|ECCV 2024)

+ [Openreview Badge](https://openreview.net/forum?id=abc) (ICLR 2023)
  [![arXiv](https://img.shields.io/badge/arXiv-b31b1b.svg)](https://openreview.net/forum?id=abc)

+ [Veo 2](https://sora.example/) ([Google](https://deepmind.example/veo/))

+ [Toolbox Without Date](https://github.com/tool/box)

+ [Señorita-2M: Mask²DiT costs $500 & uses a_b](https://arxiv.org/abs/2502.06734) (Feb., 2025)

+ [Star Elsewhere](https://arxiv.org/abs/2211.11743) (Nov., 2022)
  [![Star](https://img.shields.io/github/stars/other/lvdm.svg?style=social&label=Star)](https://github.com/real/sinfusion)

+ [Detached Badges](https://arxiv.org/abs/2503.18933) (CVPR 2025)

  [![Star](https://img.shields.io/github/stars/p/s.svg?style=social&label=Star)](https://github.com/p/syncvp)

+ [Described Tool](https://github.com/d/tool)
  A step-by-step teaching series, not an entry of its own.

+ [Website(I2V) Badges](https://modelscope.example/i2v)
  [![Website](https://img.shields.io/badge/Website(I2V)-9cf)](https://modelscope.example/i2v)

- [AgentMarket](https://agentmarket.example) - B2A marketplace for AI agents. 189 APIs.
"""


@pytest.fixture(scope="module")
def parsed():
    return parse_list(FIXTURE)


def by_title(parsed, prefix):
    found = [it for it in parsed.items if it.title.startswith(prefix)]
    assert len(found) == 1, [it.title for it in parsed.items]
    return found[0]


def test_entries_and_sections(parsed):
    assert parsed.sections == ["Section A"]
    assert len(parsed.items) == 17  # every '+' bullet, nothing from the ToC or the intro
    assert all(it.section == "Section A" for it in parsed.items)


def test_plain_entry(parsed):
    it = by_title(parsed, "Plain Paper")
    assert [a.id for a in it.arxiv] == ["2301.01234", "2301.01234"]
    assert it.code == "https://github.com/own/repo"
    assert it.website == "https://own.github.io/paper/"
    assert (it.month, it.year, it.venue) == (3, 2023, None)


def test_missing_bracket_and_bold(parsed):
    it = by_title(parsed, "Missing Bracket Paper")
    assert it.arxiv[0].id == "2302.00001" and (it.month, it.year) == (3, 2023)
    bold = by_title(parsed, "Bold Paper")
    assert "*" not in bold.title
    assert bold.venue == "CVPR" and bold.venue_year == 2026
    assert {a.id for a in bold.arxiv} == {"2511.00511"}  # versions dropped, badge on title line


def test_malformed_and_odd_arxiv_links(parsed):
    it = by_title(parsed, "Malformed Id")
    assert it.arxiv[0].id is None and it.arxiv[0].raw == "2307.000400"
    assert it.arxiv[1].id == "2307.00040"
    assert any("malformed" in n for n in it.notes)
    assert by_title(parsed, "Double Slash").arxiv[0].id == "2306.08707"
    assert by_title(parsed, "Www Host").arxiv[0].id == "2409.07450"
    no_abs = by_title(parsed, "No Abs Path")
    assert no_abs.arxiv[0].id == "2503.19881"
    assert (no_abs.month, no_abs.year, no_abs.venue, no_abs.venue_year) == (3, 2025, "CVPR", 2025)


def test_date_forms(parsed):
    v = by_title(parsed, "Venue Only")
    assert (v.year, v.venue, v.venue_year) == (None, "CVPR", 2023)
    ns = by_title(parsed, "No Space Date")
    assert (ns.month, ns.year, ns.venue, ns.venue_year) == (3, 2023, "ECCV", 2024)
    assert by_title(parsed, "Toolbox Without Date").date_text is None


def test_badge_pointing_elsewhere(parsed):
    it = by_title(parsed, "Openreview Badge")
    assert it.arxiv == [] and it.paper_url == "https://openreview.net/forum?id=abc"
    assert any("points elsewhere" in n for n in it.notes)
    star = by_title(parsed, "Star Elsewhere")
    assert star.code == "https://github.com/real/sinfusion"  # the link, not the badge image


def test_vendor_parentheses(parsed):
    it = by_title(parsed, "Veo 2")
    assert it.vendor == "Google" and it.date_text is None and it.year is None
    assert it.website == "https://deepmind.example/veo/"


def test_special_characters_in_title(parsed):
    it = by_title(parsed, "Señorita")
    assert it.title == "Señorita-2M: Mask²DiT costs $500 & uses a_b"


def test_badges_after_blank_line_belong_to_entry(parsed):
    it = by_title(parsed, "Detached Badges")
    assert it.code == "https://github.com/p/syncvp"


def test_badge_label_with_parentheses(parsed):
    it = by_title(parsed, "Website(I2V)")
    assert it.website == "https://modelscope.example/i2v"


def test_non_entries_are_reported_not_imported(parsed):
    reasons = {s.line: s.reason for s in parsed.skipped}
    text = {s.line: s.text for s in parsed.skipped}
    assert len(parsed.skipped) == 2
    advert = next(n for n, t in text.items() if "AgentMarket" in t)
    assert "not the list's entry bullet" in reasons[advert]
    desc = next(n for n, t in text.items() if "teaching series" in t)
    assert "not an entry" in reasons[desc]
    assert not any("AgentMarket" in it.title for it in parsed.items)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://arxiv.org/abs/2307.04725", "2307.04725"),
        ("https://arxiv.org/pdf/2406.08659v1", "2406.08659"),
        ("https://arxiv.org/pdf/2406.08659.pdf", "2406.08659"),
        ("https://export.arxiv.org/abs/1412.6980", "1412.6980"),  # 4 digits before 2015
        ("https://arxiv.org/abs/1412.69801", None),  # 5 digits before 2015: malformed
        ("https://arxiv.org/abs/2313.00001", None),  # month 13
        ("https://arxiv.org/abs/cs/0112017", "cs/0112017"),
    ],
)
def test_parse_arxiv_url(url, expected):
    is_arxiv, aid, _raw = parse_arxiv_url(url)
    assert is_arxiv and aid == expected


def test_parse_arxiv_url_rejects_lookalikes():
    assert parse_arxiv_url("https://example.com/arxiv.org/abs/2301.00001")[0] is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mar., 2023", {"month": 3, "year": 2023}),
        ("July., 2025", {"month": 7, "year": 2025}),
        ("June, 2024", {"month": 6, "year": 2024}),
        ("Sept., 2023", {"month": 9, "year": 2023}),
        ("Nov. 2022", {"month": 11, "year": 2022}),
        ("NeurIPS, 2024", {"venue": "NeurIPS", "venue_year": 2024}),
        ("SIGGRAPH Asia 2023", {"venue": "SIGGRAPH Asia", "venue_year": 2023}),
        (
            "Oct., 2024 | NeurIPS 2024",
            {"month": 10, "year": 2024, "venue": "NeurIPS", "venue_year": 2024},
        ),
    ],
)
def test_parse_date(text, expected):
    assert parse_date(text) == expected
