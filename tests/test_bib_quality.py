"""The committed ``papers.bib`` as a researcher would cite from it: one test per class of
defect of issue 10, each on the real file (and each failed on the file before the fix).

The rules are those of ``papers check`` (:mod:`diffusion_notes.bib.rules`); the examples are
the entries the audit found wrong. Checks against ``authors.json`` run when the shared data
folder is present.
"""

from __future__ import annotations

import datetime
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from diffusion_notes.bib.export import is_preprint
from diffusion_notes.bib.metadata import Metadata
from diffusion_notes.bib.rules import RULES, strict_parse
from diffusion_notes.bib.store import format_bibtex, load_library

REPO = Path(__file__).resolve().parents[1]
BIB = REPO / "papers.bib"
META_DIR = REPO.parent / "shared" / "data" / "paper-metadata"
TODAY = datetime.date(2026, 12, 3)


@pytest.fixture(scope="module")
def lib():
    return load_library(BIB)  # bibtexparser: raises on any failed block


@pytest.fixture(scope="module")
def meta():
    return Metadata.load(META_DIR) if META_DIR.is_dir() else None


def by_title(lib, start):
    found = [p for p in lib if p.title.startswith(start)]
    assert len(found) == 1, [p.key for p in found]
    return found[0]


def test_valid_bibtex_for_both_parsers(lib, meta):
    assert strict_parse(BIB.read_text(encoding="utf-8"), str(BIB)) == []
    assert RULES["bibtex"](lib, meta) == []
    assert "@" not in "".join(ln for ln in BIB.read_text().splitlines() if ln.startswith("%"))


def test_authors(lib, meta):
    assert RULES["authors"](lib, meta) == []
    assert not lib["exploring2024variational"].has_authors  # 2411.07348: another paper's record
    hallo2 = by_title(lib, "Hallo2")
    assert hallo2.authors[-2:] == ["Siyu Zhu", "Jingdong Wang"]  # U+FE0F-fused names split
    names = {n for p in lib for n in p.authors}
    assert {"Weijia Mao", "Michal Irani", "Qinglin Lu", "Aether Team"} <= names
    assert "{Aether Team}" in by_title(lib, "Aether:").fields["author"]


def test_dates(lib, meta):
    assert RULES["dates"](lib, meta, TODAY) == []
    peekaboo = lib["jain2023peekaboo"]  # CVPR 2024, arXiv Dec 2023: no "CVPR, Dec 2024"
    assert peekaboo.year == "2024" and "month" not in peekaboo.fields
    assert lib["ng2024learning"].year == "2022"  # arXiv 2204; the list's "Oct., 2024" is not a date
    assert all(int(p.year) <= TODAY.year for p in lib if p.year)
    # An entry without arXiv id or venue has no date: the list's dates say when it was added.
    assert "year" not in lib["l3dg2024latent"].fields


def test_links_and_titles(lib, meta):
    assert RULES["links"](lib, meta) == []
    assert "sora.com" not in (lib["veo2"].url or "")
    assert lib["kling"].url == "https://klingai.com/"
    assert "arxiv" not in (lib["l3dg2024latent"].url or "")  # 2112.03288 was ruled out
    assert by_title(lib, "MCVD:").key and by_title(lib, "VMC:").key  # not McVd, Vmc
    assert by_title(lib, "ReconX").code == "https://github.com/liuff19/ReconX"
    assert by_title(lib, "DreamCinema").website == "https://liuff19.github.io/DreamCinema/"
    assert by_title(lib, "Allegro").title.startswith("Allegro: Open the Black Box")
    for gone in ("show1", "skyreelsv2", "stablevideo"):  # repository entries of papers
        assert gone not in lib
    assert "Open-source Toolboxes and Foundation Models" in lib["zhang2023show1"].sections
    assert not any("AgentMarket" in p.title for p in lib)  # the advert line


def test_preprints_print_their_arxiv_id(lib, meta):
    assert RULES["preprints"](lib, meta) == []
    dyn = lib["abdal2025dynamic"]
    assert dyn.fields["howpublished"] == "arXiv preprint arXiv:2502.14844"
    assert dyn.fields["doi"] == "10.48550/arXiv.2502.14844"
    venues = {p.venue for p in lib if p.entry_type == "inproceedings"}
    assert "CVPR" not in venues and all(len((v or "").split()) >= 3 for v in venues)


def test_exported_entries_carry_no_project_fields(lib):
    project = re.compile(r"^\s*(sections|code|website|listed|listids|flags|origin|importsig) =",
                         re.M)  # fmt: skip
    assert not any(project.search(format_bibtex(p)) for p in lib)


STYLES = ("plain", "unsrt", "alpha", "ieeetr", "apalike")


@pytest.mark.skipif(shutil.which("bibtex") is None, reason="BibTeX not installed")
@pytest.mark.parametrize("style", STYLES)
def test_classic_styles_print_every_preprint_id(lib, tmp_path, style):
    """Real BibTeX with the classic styles: no error, and every preprint's reference shows
    its arXiv id (before the fix they printed only title and date)."""
    (tmp_path / "papers.bib").write_text("\n".join(format_bibtex(p) for p in lib), "utf-8")
    (tmp_path / "t.aux").write_text(
        f"\\relax\n\\citation{{*}}\n\\bibdata{{papers}}\n\\bibstyle{{{style}}}\n", "utf-8"
    )
    run = subprocess.run(["bibtex", "-terse", "t"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0 and "error" not in run.stdout.lower(), run.stdout[-2000:]
    bbl = (tmp_path / "t.bbl").read_text(encoding="utf-8")  # also: no UTF-8 split by BibTeX
    items = dict(re.findall(r"\\bibitem(?:\[[^\]]*\])?\{([^}]+)\}(.*?)(?=\\bibitem|\\end\{the)",
                            bbl, re.S))  # fmt: skip
    preprints = [p for p in lib if is_preprint(p)]
    assert len(preprints) > 500
    missing = [p.key for p in preprints if p.eprint not in " ".join(items[p.key].split())]
    assert missing == []


@pytest.mark.skipif(shutil.which("biber") is None, reason="biber not installed")
def test_biber_reads_the_file_and_the_exports_cleanly(lib, tmp_path):
    """biber (what biblatex users run) reads papers.bib without a warning: the project's own
    fields are ignored, months are macros. The exported entries hold no field outside
    biblatex's data model (--validate-datamodel; its other warnings are the missing dates and
    authors of products and repositories, which the paper index flags)."""

    def biber(name: str, text: str, *flags: str) -> str:
        (tmp_path / name).write_text(text, encoding="utf-8")
        run = subprocess.run(["biber", "--tool", *flags, "--output-file", "out.bib", name],
                             cwd=tmp_path, capture_output=True, text=True)  # fmt: skip
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
        return run.stdout

    out = biber("papers.bib", BIB.read_text(encoding="utf-8"))
    assert "WARN" not in out and "ERROR" not in out, out[-2000:]
    sample = list(lib)[::10]  # every kind of entry, at a tenth of biber's time
    out = biber("export.bib", "\n".join(format_bibtex(p) for p in sample), "--validate-datamodel")
    assert "invalid in data model" not in out and "ERROR" not in out, out[-2000:]
    full = "\n".join(format_bibtex(p, internal=True) for p in sample)
    out = biber("full.bib", full, "--validate-datamodel")
    assert "Field 'sections' invalid in data model" in out  # the check sees project fields
