"""The mutation check of the part-1 equation links (bench/mutations.py): its table stays in step
with the code and the notes, and a run on a few equations finds every perturbation caught."""

from __future__ import annotations

import dataclasses
import importlib.util
import subprocess
import sys

import pytest

from tests.conftest import REPO

_spec = importlib.util.spec_from_file_location("mutations", REPO / "bench" / "mutations.py")
assert _spec is not None and _spec.loader is not None
mutations = importlib.util.module_from_spec(_spec)
sys.modules["mutations"] = mutations  # dataclasses look the module up by name
_spec.loader.exec_module(mutations)


def test_mutation_table_is_consistent() -> None:
    """Every perturbation's snippet occurs exactly once in the package, and every anchored
    equation of docs/ddpm has a "Checked by" link to an existing test and a perturbation."""
    assert mutations.consistency_errors() == []
    anchors = {lk.anchor for lk in mutations.equation_links()}
    assert {"eq-ddpm-step", "eq-eps-loss", "eq-tweedie", "eq-probability-flow"} <= anchors


def test_stale_snippet_is_reported() -> None:
    """A snippet that is no longer in the source names the equation, the file and the fix."""
    stale = dataclasses.replace(mutations.MUTATIONS[0], old="this text is not in the source")
    errors = mutations.consistency_errors(mutations=(stale, *mutations.MUTATIONS[1:]))
    assert len(errors) == 1
    assert stale.anchor in errors[0] and stale.file in errors[0] and "found 0 times" in errors[0]
    assert "update bench/mutations.py" in errors[0]


def test_unlinked_equation_is_reported(tmp_path) -> None:
    """An anchored equation without a "Checked by" link is a problem, as is one no perturbation
    covers."""
    (tmp_path / "note.md").write_text('<a id="eq-new"></a>\n\n$$ x = 1 $$\n', encoding="utf-8")
    links = mutations.equation_links(tmp_path)
    assert [(lk.anchor, lk.tests) for lk in links] == [("eq-new", ())]


@pytest.mark.slow
def test_mutation_run_on_a_subset() -> None:
    """Run the real check on two equations (about ten perturbed runs of their linked tests):
    every perturbation must be caught and every link must catch one."""
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "mutations.py"), "--only", "eq-snr", "eq-eps-score"],
        cwd=REPO, capture_output=True, text=True, timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "caught by NOTHING" not in result.stdout
    assert result.stdout.count("caught by test_") == 6
