"""Mutation check of the "Checked by" links of part 1 (docs/ddpm/*.md).

Every displayed equation with an ``eq-*`` anchor links to one or more tests. For each equation,
the table below names the code that implements it and small perturbations of that code: a
flipped sign, a coefficient scaled by 1.01 (1.02 where the issue measured it), an index shifted
by one. For each perturbation the script copies ``src/diffusion_notes`` to a temporary folder,
applies the edit there (never to the working tree), runs the equation's linked tests against the
copy (``PYTHONPATH`` puts the copy first) and records which of them fail.

It fails (exit status 1) when
* a perturbation's snippet is not found exactly once in the source (the code moved: update the
  table), or an anchored equation has no link or no perturbation in the table;
* a linked test fails on the unperturbed code;
* a link points to a test that catches none of its equation's perturbations;
* a perturbation is caught by none of its equation's linked tests.

Results go to ``bench/results/mutations.json``. Run: ``python bench/mutations.py`` (all, about
10-20 minutes on a loaded 2-core machine), ``--only eq-snr eq-tweedie`` for some equations,
``--check`` for the fast consistency check alone (snippets found, anchors covered).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "diffusion_notes"
NOTES = REPO / "docs" / "ddpm"
RESULTS = REPO / "bench" / "results" / "mutations.json"

EQ_ANCHOR = re.compile(r'<a id="(eq-[A-Za-z0-9_-]+)"></a>')
CHECK_LINK = re.compile(r"checks\.md#(test_[A-Za-z0-9_]+)")


@dataclass(frozen=True)
class Mutation:
    """One perturbation: replace ``old`` (found exactly once in ``file``) by ``new``."""

    anchor: str  # the equation it perturbs
    name: str  # short id, unique per anchor
    kind: str  # "sign", "coefficient" or "index"
    file: str  # path under src/diffusion_notes
    old: str
    new: str


def _m(anchor: str, name: str, kind: str, file: str, old: str, new: str) -> Mutation:
    return Mutation(anchor, name, kind, file, old, new)


D, S = "diffusion.py", "schedules.py"
DDPM, DDIM, ODE, DPM = "samplers/ddpm.py", "samplers/ddim.py", "samplers/ode.py", "samplers/dpm_solver.py"
Q_SAMPLE = "extract(schedule.sqrt_alpha_bar, t, x0) * x0 + extract(schedule.sigma, t, x0) * eps"
# The posterior coefficients are one formula (schedules.posterior_coefficients) shared by
# q_posterior, Schedule.posterior_variance, the DDPM sampler and DDIM's sigma; its lines are
# perturbed there, once per formula, under each equation whose tests must see them.
POST_C0 = "c0 = _sqrt(ab_prev) * beta / (1.0 - ab)"
POST_CT = "ct = _sqrt(alpha) * (1.0 - ab_prev) / (1.0 - ab)"
POST_VAR = "PosteriorCoefficients(c0, ct, beta * (1.0 - ab_prev) / (1.0 - ab), beta)"
X0_FROM_EPS = "return (xt - s * eps) / a"
DDIM_UPDATE = "x = c.a_prev * x0 + c.direction * eps"

# The perturbation table: equation anchor -> the code behind it, perturbed. Keep each ``old``
# long enough to be unique in its file; the script stops if it is not.
MUTATIONS: tuple[Mutation, ...] = (
    # forward-process.md
    _m("eq-forward-step", "signal-coef", "coefficient", D,
       "torch.sqrt(1.0 - beta) * x_prev", "1.01 * torch.sqrt(1.0 - beta) * x_prev"),
    _m("eq-forward-step", "noise-coef", "coefficient", D,
       "torch.sqrt(beta) * eps", "1.01 * torch.sqrt(beta) * eps"),
    _m("eq-forward-step", "noise-sign", "sign", D,
       "torch.sqrt(1.0 - beta) * x_prev + torch.sqrt(beta) * eps",
       "torch.sqrt(1.0 - beta) * x_prev - torch.sqrt(beta) * eps"),
    _m("eq-forward-step", "beta-index", "index", D,
       "beta = extract(schedule.betas, t, x_prev)", "beta = extract(schedule.betas, t - 1, x_prev)"),
    _m("eq-q-xt-x0", "signal-coef", "coefficient", D, Q_SAMPLE, "1.01 * " + Q_SAMPLE),
    _m("eq-q-xt-x0", "noise-coef", "coefficient", D, Q_SAMPLE,
       Q_SAMPLE.replace("+ extract", "+ 1.01 * extract")),
    _m("eq-q-xt-x0", "noise-sign", "sign", D, Q_SAMPLE, Q_SAMPLE.replace("+ extract", "- extract")),
    _m("eq-q-xt-x0", "index", "index", D, Q_SAMPLE,
       Q_SAMPLE.replace("sqrt_alpha_bar, t,", "sqrt_alpha_bar, t - 1,")),
    _m("eq-snr", "coef", "coefficient", S,
       "return self.alpha_bar / (1.0 - self.alpha_bar)",
       "return 1.01 * self.alpha_bar / (1.0 - self.alpha_bar)"),
    _m("eq-snr", "index", "index", S,
       "return self.alpha_bar / (1.0 - self.alpha_bar)",
       "return self.alpha_bar / (1.0 - self.alpha_bar_prev)"),
    _m("eq-snr", "log-sign", "sign", S,
       "return torch.log(self.alpha_bar) - torch.log1p(-self.alpha_bar)",
       "return torch.log(self.alpha_bar) + torch.log1p(-self.alpha_bar)"),
    # posterior.md
    _m("eq-posterior-variance", "coef", "coefficient", S,
       POST_VAR, POST_VAR.replace("c0, ct, beta", "c0, ct, 1.01 * beta")),
    _m("eq-posterior-variance", "index", "index", D,
       "return extract(schedule.alpha_bar_prev, t, schedule.betas).reshape(-1)",
       "return extract(schedule.alpha_bar_prev, t - 1, schedule.betas).reshape(-1)"),
    _m("eq-posterior-mean", "x0-coef", "coefficient", S,
       POST_C0, POST_C0.replace("c0 = ", "c0 = 1.01 * ")),
    _m("eq-posterior-mean", "xt-coef", "coefficient", S,
       POST_CT, POST_CT.replace("ct = ", "ct = 1.01 * ")),
    _m("eq-posterior-mean", "sign", "sign", D,
       "mean = shaped(c0) * x0 + shaped(ct) * xt", "mean = shaped(c0) * x0 - shaped(ct) * xt"),
    _m("eq-posterior-mean", "skip-index", "index", D,
       "return schedule.alpha_bar_padded()[tp + 1]", "return schedule.alpha_bar_padded()[tp]"),
    # x0_from_eps_at is the one formula; predict_x0_from_eps indexes it by t, and
    # x0_eps_from_output (the Denoiser's and the samplers' conversion) calls it on network output
    _m("eq-x0-from-eps", "sign", "sign", D, X0_FROM_EPS, "return (xt + s * eps) / a"),
    _m("eq-x0-from-eps", "coef", "coefficient", D, X0_FROM_EPS, "return (xt - 1.01 * s * eps) / a"),
    _m("eq-x0-from-eps", "index", "index", D,
       "return x0_from_eps_at(xt, eps, *_a_s(schedule, t, xt))",
       "return x0_from_eps_at(xt, eps, *_a_s(schedule, t - 1, xt))"),
    _m("eq-x0-from-eps", "output-conversion", "coefficient", D,
       "return x0_from_eps_at(xt, output, a, s), output",
       "return x0_from_eps_at(xt, output, a, 1.01 * s), output"),
    _m("eq-posterior-mean-eps", "eps-coef", "coefficient", D,
       "(xt - beta / extract(schedule.sigma, t, xt) * eps)",
       "(xt - 1.01 * beta / extract(schedule.sigma, t, xt) * eps)"),
    _m("eq-posterior-mean-eps", "sign", "sign", D,
       "(xt - beta / extract(schedule.sigma, t, xt) * eps)",
       "(xt + beta / extract(schedule.sigma, t, xt) * eps)"),
    _m("eq-posterior-mean-eps", "scale", "coefficient", D,
       "* eps) / torch.sqrt(1.0 - beta)", "* eps) / (1.01 * torch.sqrt(1.0 - beta))"),
    _m("eq-posterior-mean-eps", "index", "index", D,
       "beta = extract(schedule.betas, t, xt)", "beta = extract(schedule.betas, t - 1, xt)"),
    # loss.md and vae-elbo.md
    _m("eq-elbo", "kl-coef", "coefficient", D, "return 0.5 * (\n", "return 0.505 * (\n"),
    _m("eq-elbo", "reverse-variance-index", "index", D,
       "p_logvar = extract(log_var_p, tt, xt)", "p_logvar = extract(log_var_p, tt - 1, xt)"),
    _m("eq-elbo-decomposition", "kl-coef", "coefficient", D, "return 0.5 * (\n", "return 0.505 * (\n"),
    _m("eq-elbo-decomposition", "logvar-sign", "sign", D,
       "        + logvar2\n        - logvar1\n", "        + logvar2\n        + logvar1\n"),
    _m("eq-elbo-decomposition", "reverse-variance-index", "index", D,
       "p_logvar = extract(log_var_p, tt, xt)", "p_logvar = extract(log_var_p, tt - 1, xt)"),
    _m("eq-reparameterisation", "mu-coef", "coefficient", D, Q_SAMPLE, "1.01 * " + Q_SAMPLE),
    _m("eq-reparameterisation", "sigma-coef", "coefficient", D, Q_SAMPLE,
       Q_SAMPLE.replace("+ extract", "+ 1.01 * extract")),
    _m("eq-reparameterisation", "sign", "sign", D, Q_SAMPLE,
       Q_SAMPLE.replace("+ extract", "- extract")),
    _m("eq-eps-loss", "coef", "coefficient", D,
       "weight = betas**2 / (2.0 * var * alphas * (1.0 - ab))",
       "weight = 1.01 * betas**2 / (2.0 * var * alphas * (1.0 - ab))"),
    _m("eq-eps-loss", "index", "index", D,
       "weight = betas**2 / (2.0 * var * alphas * (1.0 - ab))",
       "weight = betas**2 / (2.0 * var * alphas * (1.0 - schedule.alpha_bar_prev))"),
    _m("eq-lambda-snr", "coef", "coefficient", D,
       "weight = betas**2 / (2.0 * var * alphas * (1.0 - ab))",
       "weight = 1.01 * betas**2 / (2.0 * var * alphas * (1.0 - ab))"),
    _m("eq-lambda-snr", "index", "index", D,
       "weight = betas**2 / (2.0 * var * alphas * (1.0 - ab))",
       "weight = betas**2 / (2.0 * var * alphas * (1.0 - schedule.alpha_bar_prev))"),
    _m("eq-simple-loss", "target-coef", "coefficient", D,
       'if prediction == "eps":\n        return eps\n',
       'if prediction == "eps":\n        return 1.01 * eps\n'),
    _m("eq-simple-loss", "model-index", "index", D, "out = model(xt, t)\n", "out = model(xt, t - 1)\n"),
    _m("eq-simple-loss", "t-range", "index", D,
       "t = torch.randint(0, schedule.T, (B,), generator=generator",
       "t = torch.randint(1, schedule.T, (B,), generator=generator"),
    _m("eq-loss-weights", "bound-row", "coefficient", D,
       "weight = betas**2 / (2.0 * var * alphas * (1.0 - ab))",
       "weight = 1.01 * betas**2 / (2.0 * var * alphas * (1.0 - ab))"),
    _m("eq-loss-weights", "v-row", "coefficient", D,
       "return clipped / (snr + 1.0)", "return clipped / (snr + 1.01)"),
    _m("eq-loss-weights", "eps-row", "coefficient", D,
       "snr > 0, clipped / snr.clamp(", "snr > 0, 1.01 * clipped / snr.clamp("),
    # sampling.md
    # the sampler's per-step coefficients come from schedules.posterior_coefficients
    _m("eq-ddpm-step", "xt-coef-1.02", "coefficient", S,
       POST_CT, POST_CT.replace("ct = ", "ct = 1.02 * ")),
    _m("eq-ddpm-step", "x0-coef", "coefficient", S,
       POST_C0, POST_C0.replace("c0 = ", "c0 = 1.01 * ")),
    _m("eq-ddpm-step", "variance-coef", "coefficient", S,
       POST_VAR, POST_VAR.replace("c0, ct, beta", "c0, ct, 1.01 * beta")),
    _m("eq-ddpm-step", "fixed-large-coef", "coefficient", DDPM,
       'if variance == "fixed_small" else post.beta', 'if variance == "fixed_small" else 1.01 * post.beta'),
    _m("eq-ddpm-step", "last-step-noise", "index", DDPM,
       "if (add_noise and tp >= 0) else 0.0", "if (add_noise and tp >= -1) else 0.0"),
    _m("eq-ddim-sigma", "coef", "coefficient", DDIM,
       "return eta * math.sqrt(max(posterior_coefficients(ab, ab_prev).variance, 0.0))",
       "return 1.01 * eta * math.sqrt(max(posterior_coefficients(ab, ab_prev).variance, 0.0))"),
    _m("eq-ddim-sigma", "index", "index", DDIM,
       "alpha_bar_at(schedule, t_prev, set_alpha_to_one=set_alpha_to_one),\n        eta,",
       "alpha_bar_at(schedule, t_prev - 1, set_alpha_to_one=set_alpha_to_one),\n        eta,"),
    # score.md
    _m("eq-tweedie", "coef", "coefficient", D,
       "return (xt + (1.0 - extract(schedule.alpha_bar, t, xt)) * score)",
       "return (xt + 1.01 * (1.0 - extract(schedule.alpha_bar, t, xt)) * score)"),
    _m("eq-tweedie", "sign", "sign", D,
       "return (xt + (1.0 - extract(schedule.alpha_bar, t, xt)) * score)",
       "return (xt - (1.0 - extract(schedule.alpha_bar, t, xt)) * score)"),
    _m("eq-tweedie", "index", "index", D,
       "return (xt + (1.0 - extract(schedule.alpha_bar, t, xt)) * score)",
       "return (xt + (1.0 - extract(schedule.alpha_bar, t - 1, xt)) * score)"),
    _m("eq-eps-score", "sign", "sign", D,
       "return -eps / extract(schedule.sigma, t, like)", "return eps / extract(schedule.sigma, t, like)"),
    _m("eq-eps-score", "coef", "coefficient", D,
       "return -eps / extract(schedule.sigma, t, like)",
       "return -eps / (1.01 * extract(schedule.sigma, t, like))"),
    _m("eq-eps-score", "index", "index", D,
       "return -eps / extract(schedule.sigma, t, like)",
       "return -eps / extract(schedule.sigma, t - 1, like)"),
    _m("eq-dsm", "score-sign", "sign", D,
       "return -eps / extract(schedule.sigma, t, like)", "return eps / extract(schedule.sigma, t, like)"),
    _m("eq-dsm", "score-coef", "coefficient", D,
       "return -eps / extract(schedule.sigma, t, like)",
       "return -eps / (1.01 * extract(schedule.sigma, t, like))"),
    _m("eq-probability-flow", "ddim-direction", "coefficient", DDIM,
       DDIM_UPDATE, DDIM_UPDATE.replace("+ c.direction", "+ 1.01 * c.direction")),
    _m("eq-probability-flow", "ddim-sign", "sign", DDIM,
       DDIM_UPDATE, DDIM_UPDATE.replace("+ c.direction", "- c.direction")),
    _m("eq-probability-flow", "euler-eps-coef", "coefficient", ODE,
       "x = math.sqrt(ab_p) * x0 + math.sqrt(1.0 - ab_p) * eps",
       "x = math.sqrt(ab_p) * x0 + 1.01 * math.sqrt(1.0 - ab_p) * eps"),
    # (Heun's correction scaled by 1.01 is left out: it changes the solver's error constant, not
    # the ODE, and moves the 200-step result by < 1e-5, below what the transport test resolves)
    _m("eq-probability-flow", "heun-correction-sign", "sign", ODE,
       "x = x_euler + (0.5 * (s_p - a_p * s / a)) * (eps2 - eps)",
       "x = x_euler - (0.5 * (s_p - a_p * s / a)) * (eps2 - eps)"),
    _m("eq-probability-flow", "dpm-solver-coef", "coefficient", DPM,
       "x = c.ratio * x + c.c_d * d", "x = c.ratio * x + 1.01 * c.c_d * d"),
    _m("eq-ddim-deterministic", "x0-coef", "coefficient", DDIM,
       DDIM_UPDATE, DDIM_UPDATE.replace("x = c.a_prev", "x = 1.01 * c.a_prev")),
    _m("eq-ddim-deterministic", "eps-coef", "coefficient", DDIM,
       DDIM_UPDATE, DDIM_UPDATE.replace("+ c.direction", "+ 1.01 * c.direction")),
)


@dataclass(frozen=True)
class Link:
    anchor: str
    page: str
    tests: tuple[str, ...]


def equation_links(notes: Path = NOTES) -> list[Link]:
    """Every ``eq-*`` anchor of the part-1 notes with the tests its "Checked by" line names.

    A link belongs to the nearest anchor above it, as on the generated checks page."""
    out: list[Link] = []
    for page in sorted(notes.glob("*.md")):
        current: str | None = None
        found: dict[str, list[str]] = {}
        for line in page.read_text(encoding="utf-8").splitlines():
            m = EQ_ANCHOR.search(line)
            if m:
                current = m.group(1)
                found.setdefault(current, [])
            for name in CHECK_LINK.findall(line):
                if current is not None and name not in found[current]:
                    found[current].append(name)
        out += [Link(a, page.name, tuple(t)) for a, t in found.items()]
    return out


def test_locations(tests_dir: Path = REPO / "tests") -> dict[str, str]:
    """test name -> ``tests/test_x.py`` (the first module defining it)."""
    where: dict[str, str] = {}
    pattern = re.compile(r"^def (test_[A-Za-z0-9_]+)\(", re.MULTILINE)
    for path in sorted(tests_dir.glob("test_*.py")):
        for name in pattern.findall(path.read_text(encoding="utf-8")):
            where.setdefault(name, path.relative_to(REPO).as_posix())
    return where


def consistency_errors(
    package: Path = PACKAGE, mutations: tuple[Mutation, ...] = MUTATIONS
) -> list[str]:
    """What makes the table unusable: snippets not found exactly once, anchors without links or
    without perturbations, perturbations of unknown anchors, links to unknown tests."""
    errors: list[str] = []
    links = {lk.anchor: lk for lk in equation_links()}
    where = test_locations()
    seen: set[tuple[str, str]] = set()
    for mu in mutations:
        if (mu.anchor, mu.name) in seen:
            errors.append(f"{mu.anchor}/{mu.name}: duplicate name in the table")
        seen.add((mu.anchor, mu.name))
        path = package / mu.file
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        count = text.count(mu.old)
        if count != 1:
            errors.append(
                f"{mu.anchor}/{mu.name}: snippet found {count} times in src/diffusion_notes/"
                f"{mu.file} (expected once); the code moved, update bench/mutations.py: {mu.old!r}"
            )
        if mu.anchor not in links:
            errors.append(f"{mu.anchor}/{mu.name}: no such equation anchor in docs/ddpm")
    for anchor, lk in links.items():
        if not lk.tests:
            errors.append(f"{lk.page}#{anchor}: no 'Checked by' link")
        if not any(mu.anchor == anchor for mu in mutations):
            errors.append(f"{lk.page}#{anchor}: no perturbation in bench/mutations.py")
        errors += [f"{lk.page}#{anchor}: links {t}, which no test module defines"
                   for t in lk.tests if t not in where]
    return errors


def mutated_copy(mu: Mutation, root: Path) -> Path:
    """A copy of the package under ``root`` with ``mu`` applied; returns the folder for PYTHONPATH."""
    dest = root / "diffusion_notes"
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(PACKAGE, dest, ignore=shutil.ignore_patterns("__pycache__"))
    path = dest / mu.file
    text = path.read_text(encoding="utf-8")
    if text.count(mu.old) != 1:
        raise SystemExit(f"{mu.anchor}/{mu.name}: snippet not found once in {mu.file}: {mu.old!r}")
    path.write_text(text.replace(mu.old, mu.new), encoding="utf-8")
    return root


PYTEST_ARGS = ("-q", "-p", "no:cacheprovider", "-o", "addopts=")


def _preload() -> None:
    """Import the heavy dependencies once, in this process, so forked runs start fast. Never
    imports diffusion_notes: each forked run must import the (mutated) copy it is given."""
    import numpy  # noqa: F401
    import pytest  # noqa: F401
    import torch  # noqa: F401

    assert "diffusion_notes" not in sys.modules, "the parent must not import the package"


def _pytest_forked(node_ids: list[str], pythonpath: Path | None, report: Path) -> None:
    """pytest in a forked child (torch already imported), output discarded."""
    pid = os.fork()
    if pid == 0:  # child
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            os.chdir(REPO)
            sys.path.insert(0, str(REPO))  # as `python -m pytest` from the root would have it
            if pythonpath is not None:
                sys.path.insert(0, str(pythonpath))
            import pytest

            pytest.main([*PYTEST_ARGS, f"--junitxml={report}", *node_ids])
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def _pytest_subprocess(node_ids: list[str], pythonpath: Path | None, report: Path) -> None:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath) + os.pathsep + env.get("PYTHONPATH", "")
    subprocess.run([sys.executable, "-m", "pytest", *PYTEST_ARGS, f"--junitxml={report}",
                    *node_ids], cwd=REPO, env=env, capture_output=True, text=True)


def run_tests(node_ids: list[str], pythonpath: Path | None) -> dict[str, bool]:
    """Run pytest on ``node_ids``; return test name -> passed (all its parametrisations)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.xml"
        if hasattr(os, "fork"):
            _pytest_forked(node_ids, pythonpath, report)
        else:
            _pytest_subprocess(node_ids, pythonpath, report)
        xml = report.read_text(encoding="utf-8") if report.is_file() else ""
    passed: dict[str, bool] = {}
    testcase = re.compile(r'<testcase\b[^>]*?\sname="([^"]+)"[^>]*?(/>|>(.*?)</testcase>)', re.S)
    for case in testcase.finditer(xml):
        name = case.group(1).split("[")[0]
        body = case.group(3) or ""
        ok = "<failure" not in body and "<error" not in body
        passed[name] = passed.get(name, True) and ok
    for node in node_ids:  # a test that did not run at all (import error) counts as failed
        passed.setdefault(node.split("::")[1], False)
    return passed


@dataclass(frozen=True)
class Outcome:
    anchor: str
    mutation: str
    kind: str
    file: str
    caught_by: tuple[str, ...]
    missed_by: tuple[str, ...]
    seconds: float


def run(anchors: set[str] | None = None, log=print) -> tuple[list[Outcome], list[str]]:
    """Baseline, then every perturbation of the selected equations; returns outcomes and problems."""
    problems = consistency_errors()
    if problems:
        return [], problems
    links = {lk.anchor: lk for lk in equation_links() if anchors is None or lk.anchor in anchors}
    where = test_locations()
    todo = [mu for mu in MUTATIONS if mu.anchor in links]

    def nodes(tests: tuple[str, ...]) -> list[str]:
        return [f"{where[t]}::{t}" for t in tests]

    _preload()
    all_tests = sorted({t for lk in links.values() for t in lk.tests})
    log(f"baseline: {len(all_tests)} linked tests on the unperturbed code")
    base = run_tests(nodes(tuple(all_tests)), None)
    problems += [f"{t} fails on the unperturbed code" for t, ok in base.items() if not ok]
    if problems:
        return [], problems
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, mu in enumerate(todo, 1):
            tests = links[mu.anchor].tests
            start = time.perf_counter()
            result = run_tests(nodes(tests), mutated_copy(mu, Path(tmp)))
            out = Outcome(mu.anchor, mu.name, mu.kind, mu.file,
                          tuple(t for t in tests if not result[t]),
                          tuple(t for t in tests if result[t]), time.perf_counter() - start)
            outcomes.append(out)
            log(f"[{i}/{len(todo)}] {mu.anchor} / {mu.name}: caught by "
                f"{', '.join(out.caught_by) or 'NOTHING'} ({out.seconds:.0f} s)")
    for lk in links.values():
        mine = [o for o in outcomes if o.anchor == lk.anchor]
        for t in lk.tests:
            if not any(t in o.caught_by for o in mine):
                problems.append(f"{lk.page}#{lk.anchor}: linked test {t} catches none of its "
                                f"perturbations ({', '.join(o.mutation for o in mine)})")
        problems += [f"{lk.page}#{lk.anchor}: perturbation {o.mutation} is caught by no linked test"
                     for o in mine if not o.caught_by]
    return outcomes, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="ANCHOR", help="only these equations")
    parser.add_argument("--check", action="store_true", help="consistency check only (fast)")
    args = parser.parse_args(argv)
    if args.check:
        errors = consistency_errors()
        print("\n".join(errors) or f"table consistent: {len(MUTATIONS)} perturbations")
        return 1 if errors else 0
    start = time.perf_counter()
    outcomes, problems = run(set(args.only) if args.only else None)
    links = {lk.anchor: lk for lk in equation_links()}
    table = [
        {"anchor": lk.anchor, "page": lk.page, "test": t,
         "catches": [o.mutation for o in outcomes if o.anchor == lk.anchor and t in o.caught_by],
         "misses": [o.mutation for o in outcomes if o.anchor == lk.anchor and t in o.missed_by]}
        for lk in links.values() for t in lk.tests
        if any(o.anchor == lk.anchor for o in outcomes)
    ]
    if not args.only:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps({
            "benchmark": "mutations",
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "seconds": round(time.perf_counter() - start, 1),
            "n_perturbations": len(outcomes),
            "links": table,
            "perturbations": [asdict(o) for o in outcomes],
            "problems": problems,
        }, indent=2) + "\n", encoding="utf-8")
    print("\n".join(f"PROBLEM: {p}" for p in problems) or "every link catches a perturbation, "
          "and every perturbation is caught")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
