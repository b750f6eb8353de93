"""Benchmark: fast sampling, on an exact-score ring and on the shared class-conditional digits model.

1. **Ring** (issue 13's few-step goal): the 8-mode ring (radius 2, isotropic component variance
   0.02, equal weights), linear betas 1e-4..0.02, T = 1000, driven by its exact eps through
   ``GaussianMixture.eps_model``. Sliced Wasserstein distance (256 random directions) between
   ``--ring-n`` samples (200,000) and a fresh target sample of the same size; the floor is the
   distance between two target samples. Our samplers and placements and diffusers' best options
   (UniPC, DEIS with Karras sigmas, DPM-Solver++ 3M with uniform-lambda steps, and the
   defaults) run side by side, from the same noise, at 5 to 20 network evaluations (NFE).
   The placement tuned here (``snr_window``) is then rerun on a second, different mixture
   (seven elongated modes, unequal weights; ``bench/samplers.py``'s target).
2. **Digits**: DDPM, DDIM, DPM-Solver++ (2M, 3M) and the exponential Adams solver on
   ``train.PRESETS["digits_cond"]`` (through the model cache), class-conditional (labels
   0..9 in turn): digits FD against the held-out digits (``metrics.score_digits_held_out``)
   with its floor, precision, recall, class accuracy (the classifier's label against the asked
   one) and seconds per 64 samples, measured in one run. The rows are data: ``DIGITS_ROWS``
   is a list of :class:`Row` (method, steps, sampler callable); add a row to add a method.

Writes ``bench/results/fast_sampling.json`` and ``fast_sampling.png`` (copied to
``docs/fast-sampling/``). ``DIFFUSION_NOTES_SMOKE=1`` runs tiny sizes into a temporary folder.

Run:  .venv/bin/python bench/fast_sampling.py   (not yet timed on a quiet machine: on the shared
2-core box at load 7 to 25 the ring part alone took over 30 minutes; see --methods, --targets)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from diffusion_notes.consistency import DEFAULT_GAMMA  # noqa: E402
from diffusion_notes.data.gmm import GaussianMixture  # noqa: E402
from diffusion_notes.denoiser import Denoiser  # noqa: E402
from diffusion_notes.runtime import is_smoke  # noqa: E402
from diffusion_notes.samplers import (  # noqa: E402
    sample_ddim,
    sample_ddpm,
    sample_dpm_solver_pp,
    sample_dpm_solver_pp_3m,
    sample_exp_adams,
)
from diffusion_notes.schedules import Schedule, make_schedule  # noqa: E402
from diffusion_notes.timesteps import full_pairs, timestep_pairs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DOC_DIR = ROOT / "docs" / "fast-sampling"
T = 1000
GOALS = {5: 5.5, 8: 1.8, 10: 1.3, 20: 1.05}  # ring: SWD / floor at these NFE (issue 13)

Pairs = list[tuple[int, int]]
# a ring/mixture method: (denoiser, noise x_T, NFE) -> samples
RingMethod = Callable[[Denoiser, torch.Tensor, int], torch.Tensor]


# ----------------------------------------------------------------------------- targets
def ring() -> GaussianMixture:
    """Issue 13's ring: 8 equal modes on radius 2, isotropic variance 0.02."""
    k = 8
    ang = torch.arange(k, dtype=torch.float64) * (2 * math.pi / k)
    means = 2.0 * torch.stack([ang.cos(), ang.sin()], 1)
    covs = 0.02 * torch.eye(2, dtype=torch.float64).expand(k, 2, 2).clone()
    return GaussianMixture(means, covs, torch.full((k,), 1.0 / k, dtype=torch.float64))


def seven_modes() -> GaussianMixture:
    """The samplers benchmark's target: six elongated modes on a ring of radius 2.5 and a broad
    one in the middle, weights 0.05 to 0.3 (a different shape, scale and weighting)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from samplers import target  # bench/samplers.py

    return target()


def directions(n: int = 256, seed: int = 123) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    d = torch.randn(2, n, generator=g, dtype=torch.float64)
    return d / d.norm(dim=0, keepdim=True)


def sorted_projections(a: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    return torch.sort(a.double() @ dirs, dim=0).values


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, dirs: torch.Tensor) -> float:
    """sqrt of the mean over directions of the squared W2 between sorted 1-D projections
    (``b`` may be given already as :func:`sorted_projections`, shape (n, directions))."""
    pb = b if b.shape[1] == dirs.shape[1] and b.shape[1] != 2 else sorted_projections(b, dirs)
    return math.sqrt(((sorted_projections(a, dirs) - pb) ** 2).mean().item())


# ----------------------------------------------------------------------------- our methods
def ours(sampler: Callable, spacing: str, **kw) -> RingMethod:
    def run(den: Denoiser, x: torch.Tensor, nfe: int) -> torch.Tensor:
        pairs = timestep_pairs(T, nfe, spacing, schedule=den.schedule)
        return sampler(den, x, pairs, progress=False, **kw)

    return run


RING_OURS: dict[str, RingMethod] = {
    "ours: exp. Adams 3+corrector, snr_window": ours(sample_exp_adams, "snr_window"),
    "ours: DPM-Solver++(3M), snr_window": ours(sample_dpm_solver_pp_3m, "snr_window"),
    "ours: DPM-Solver++(2M), trailing (default)": ours(sample_dpm_solver_pp, "trailing"),
    "ours: DDIM, trailing (default)": ours(sample_ddim, "trailing"),
    "ours: exp. Adams 3+corrector, logsnr": ours(sample_exp_adams, "logsnr"),
    "ours: exp. Adams 3+corrector, karras": ours(sample_exp_adams, "karras"),
    "ours: DPM-Solver++(3M), logsnr": ours(sample_dpm_solver_pp_3m, "logsnr"),
}
SECOND_TARGET = (
    "ours: DPM-Solver++(2M), trailing (default)",
    "ours: DPM-Solver++(3M), snr_window",
    "ours: exp. Adams 3+corrector, snr_window",
    "diffusers: DPM-Solver++(2M) (default)",
    "diffusers: DEIS, Karras sigmas",
    "diffusers: DPM-Solver++(3M), uniform lambda",
)


# ----------------------------------------------------------------------------- diffusers
def diffusers_method(kind: str, **options) -> RingMethod:
    """diffusers' scheduler loop driven by the same exact eps (float32, as UniPC needs)."""

    def run(den: Denoiser, x: torch.Tensor, nfe: int) -> torch.Tensor:
        from diffusers import (
            DDIMScheduler,
            DEISMultistepScheduler,
            DPMSolverMultistepScheduler,
            UniPCMultistepScheduler,
        )

        cls = {
            "ddim": DDIMScheduler,
            "deis": DEISMultistepScheduler,
            "dpm": DPMSolverMultistepScheduler,
            "unipc": UniPCMultistepScheduler,
        }[kind]
        sched = cls(
            num_train_timesteps=T,
            beta_schedule="linear",
            beta_start=1e-4,
            beta_end=0.02,
            **options,
        )
        sched.set_timesteps(nfe)
        xs = x.float() * float(sched.init_noise_sigma)
        for t in sched.timesteps:
            tt = torch.full((xs.shape[0],), int(t), dtype=torch.long)
            eps = den.net(xs, tt)
            xs = sched.step(eps, t, xs).prev_sample
        return xs.double()

    return run


RING_DIFFUSERS: dict[str, RingMethod] = {
    "diffusers: DEIS, Karras sigmas": diffusers_method("deis", use_karras_sigmas=True),
    "diffusers: DPM-Solver++(3M), uniform lambda": diffusers_method(
        "dpm", solver_order=3, use_lu_lambdas=True
    ),
    "diffusers: UniPC": diffusers_method("unipc"),
    "diffusers: DPM-Solver++(2M) (default)": diffusers_method("dpm", timestep_spacing="trailing"),
    "diffusers: DDIM (default)": diffusers_method("ddim", timestep_spacing="trailing"),
}


def ring_order() -> dict[str, RingMethod]:
    """Ours and diffusers' interleaved, best candidates first (a partial run is still useful)."""
    o, d = list(RING_OURS.items()), list(RING_DIFFUSERS.items())
    return dict([*o[:1], *d[:3], *o[1:4], *d[3:], *o[4:]])


@dataclass(frozen=True)
class RingRow:
    target: str
    method: str
    nfe: int
    swd: float
    ratio: float  # swd / floor
    seconds: float


def ring_section(
    target: GaussianMixture,
    name: str,
    methods: dict[str, RingMethod],
    n: int,
    budgets: list[int],
    save: Callable[[list[RingRow], float], None] | None = None,
) -> tuple[list[RingRow], float]:
    """Every method at every budget; ``save(rows, floor)`` after each method (partial runs)."""
    schedule = make_schedule("linear", T)
    den = Denoiser(target.eps_model(schedule), schedule)
    dirs = directions()
    x_T = torch.randn(n, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref = sorted_projections(target.sample(n, generator=torch.Generator().manual_seed(1)), dirs)
    floor = sliced_wasserstein(target.sample(n, generator=torch.Generator().manual_seed(2)),
                               ref, dirs)
    rows = []
    for label, method in methods.items():
        for nfe in budgets:
            start = time.perf_counter()
            try:
                y = method(den, x_T, nfe)
                swd = sliced_wasserstein(y, ref, dirs) if bool(torch.isfinite(y).all()) else math.inf
            except Exception as exc:  # a diffusers option that fails is itself a result
                print(f"  {label} at {nfe}: {type(exc).__name__}: {exc}")
                swd = math.inf
            rows.append(RingRow(name, label, nfe, swd, swd / floor, time.perf_counter() - start))
            print(f"  {name:6s} {label:48s} NFE {nfe:3d}  {swd / floor:7.2f}x floor", flush=True)
        if save is not None:
            save(rows, floor)
    return rows, floor


# ----------------------------------------------------------------------------- digits
@dataclass(frozen=True)
class Row:
    """One line of the digits table: ``sample(den, x_T) -> x0`` (den carries the labels)."""

    method: str
    steps: int
    sample: Callable[[Denoiser, torch.Tensor], torch.Tensor]
    prepare: Callable[[object], None] | None = None  # untimed set-up, given the teacher config


def _pairs(schedule: Schedule, steps: int, spacing: str) -> Pairs:
    if steps == schedule.T:
        return full_pairs(schedule.T)
    return timestep_pairs(schedule.T, steps, spacing, schedule=schedule)


def ddpm_row(steps: int) -> Row:
    def run(den: Denoiser, x: torch.Tensor) -> torch.Tensor:
        g = torch.Generator(device=x.device).manual_seed(7)
        return sample_ddpm(den, x, _pairs(den.schedule, steps, "trailing"), generator=g,
                           progress=False)

    return Row("DDPM", steps, run)


def ddim_row(steps: int) -> Row:
    def run(den: Denoiser, x: torch.Tensor) -> torch.Tensor:
        return sample_ddim(den, x, _pairs(den.schedule, steps, "trailing"), progress=False)

    return Row("DDIM", steps, run)


def dpm2m_row(steps: int) -> Row:
    def run(den: Denoiser, x: torch.Tensor) -> torch.Tensor:
        return sample_dpm_solver_pp(den, x, _pairs(den.schedule, steps, "trailing"),
                                    progress=False)

    return Row("DPM-Solver++(2M)", steps, run)


def new_row(label: str, sampler: Callable, steps: int, spacing: str, **kw) -> Row:
    def run(den: Denoiser, x: torch.Tensor) -> torch.Tensor:
        return sampler(den, x, _pairs(den.schedule, steps, spacing), progress=False, **kw)

    return Row(label, steps, run)


_STUDENT: dict[str, torch.nn.Module] = {}


def lcm_row(steps: int, w: float = 0.0, gamma: float | None = None) -> Row:
    """The consistency student distilled from the same teacher (``consistency.get_student``:
    distilled once and cached; that set-up is not timed), sampled on its own skipping grid at
    guidance scale ``w`` (0: the conditional model, like the other rows), its first step at
    ``consistency.lcm_start``: LCM's sampler, or TCD's strategic stochastic one at ``gamma``."""
    from diffusion_notes.consistency import (
        DistillConfig,
        get_student,
        sample_consistency,
        smoke_config,
        student_pairs,
        with_w,
    )
    from diffusion_notes.runtime import pick

    distill = pick(DistillConfig(), smoke_config(DistillConfig()))

    def prepare(config: object) -> None:
        _STUDENT["net"], _ = get_student(distill, teacher=config, device="cpu")  # type: ignore[arg-type]

    def run(den: Denoiser, x: torch.Tensor) -> torch.Tensor:
        net = with_w(_STUDENT["net"], w)
        pairs = student_pairs(den.schedule, steps, distill.skip)
        g = torch.Generator(device=x.device).manual_seed(7)
        student = Denoiser(net, den.schedule, cond=den.cond)  # eps-prediction, as distilled
        return sample_consistency(student, x, pairs, gamma=gamma, generator=g)

    return Row("LCM student" if gamma is None else f"LCM student, TCD sampler (gamma {gamma})",
               steps, run, prepare)


DIGITS_ROWS: list[Row] = [
    *(ddpm_row(n) for n in (10, 20, 50, 100, 1000)),
    *(ddim_row(n) for n in (1, 2, 4, 10, 20, 50, 100)),
    *(dpm2m_row(n) for n in (2, 4, 10, 20, 50)),
    *(new_row("DPM-Solver++(3M), snr_window", sample_dpm_solver_pp_3m, n, "snr_window")
      for n in (4, 10, 20)),
    *(new_row("exp. Adams 2+corrector, snr_window", sample_exp_adams, n, "snr_window", order=2)
      for n in (4, 10, 20)),
    *(new_row("exp. Adams 2+corrector, logsnr", sample_exp_adams, n, "logsnr", order=2)
      for n in (4, 10, 20)),
    *(lcm_row(n) for n in (1, 2, 4)),
    *(lcm_row(n, gamma=DEFAULT_GAMMA) for n in (2, 4)),
]


@dataclass(frozen=True)
class DigitsRow:
    method: str
    steps: int
    fd: float
    floor: float
    precision: float
    recall: float
    class_accuracy: float
    seconds_per_64: float


def digits_section(rows: list[Row], n: int, model_steps: int | None) -> list[DigitsRow]:
    from diffusion_notes.cache import get_or_train
    from diffusion_notes.metrics import get_digit_classifier, score_digits_held_out
    from diffusion_notes.train import make_schedule_for, preset

    overrides = {} if model_steps is None else {"steps": model_steps}
    config = preset("digits_cond", **overrides)
    net, info = get_or_train(config, device="cpu", progress=True)
    print(f"digits_cond model: {info.path} (from cache: {info.from_cache})")
    classifier, _ = get_digit_classifier(device="cpu")
    schedule = make_schedule_for(config)
    labels = torch.arange(n) % 10
    den = Denoiser(net, schedule, cond=labels)
    x_T = torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    out = []
    for row in rows:
        if row.steps > schedule.T:
            continue
        if row.prepare is not None:
            row.prepare(config)
        start = time.perf_counter()
        with torch.no_grad():
            y = row.sample(den, x_T).clamp(-1, 1)
        seconds = time.perf_counter() - start
        score = score_digits_held_out(y, classifier)
        with torch.no_grad():
            acc = (classifier(y).argmax(1) == labels).double().mean().item()
        out.append(DigitsRow(row.method, row.steps, score.fd, score.floor, score.precision,
                             score.recall, acc, seconds * 64 / n))
        print(f"  {row.method:36s} {row.steps:5d} steps  FD {score.fd:7.2f} (floor "
              f"{score.floor:.2f})  P {score.precision:.3f} R {score.recall:.3f}  acc {acc:.3f}"
              f"  {seconds * 64 / n:.3f} s/64", flush=True)
    return out


# ----------------------------------------------------------------------------- figure, main
def n_of(result: dict, target: str) -> int:
    """Sample size of a ring target (the second mixture may have run at its own size)."""
    rs = result["ring_settings"]
    return rs.get("seven_n", rs["ring_n"]) if target == "seven" else rs["ring_n"]


def figure(result: dict, path: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(16, 5))
    for ax, target in zip(axes[:2], ("ring", "seven"), strict=True):
        rows = [r for r in result["ring"] if r["target"] == target]
        for method in dict.fromkeys(r["method"] for r in rows):
            pts = [(r["nfe"], r["ratio"]) for r in rows if r["method"] == method
                   and math.isfinite(r["ratio"])]
            if pts:
                style = "--" if method.startswith("diffusers") else "-"
                ax.plot(*zip(*pts, strict=True), style, marker="o", ms=3, label=method)
        if target == "ring":
            ax.plot(list(GOALS), list(GOALS.values()), "k*", ms=12, label="goal")
        if not rows:
            ax.set_title(f"{target}: not run")
            continue
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set(xscale="log", yscale="log", xlabel="network evaluations (NFE)",
               ylabel="sliced Wasserstein / floor",
               title=f"{target}: exact eps, {n_of(result, target)} samples")
        ax.legend(fontsize=6)
    ax = axes[2]
    drows = result["digits"]
    for method in dict.fromkeys(r["method"] for r in drows):
        pts = [(r["steps"], r["fd"]) for r in drows if r["method"] == method]
        ax.plot(*zip(*pts, strict=True), marker="o", ms=3, label=method)
    if drows:
        ax.axhline(drows[0]["floor"], color="k", ls=":", label="real-data floor")
    ax.set(xscale="log", yscale="log", xlabel="steps", ylabel="digits FD (held out)",
           title="digits_cond, class-conditional")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


NOTE = DOC_DIR / "ode-solvers.md"
START, END = "<!-- bench:fast:start -->", "<!-- bench:fast:end -->"


def update_note(result: dict, page: Path = NOTE) -> None:
    """Rewrite the ring tables between the note's markers from the results (never by hand)."""
    from diffusion_notes.site.benchmarks import _ring_table

    text = page.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise ValueError(f"{page} lacks the markers {START} ... {END}")
    rs = result.get("ring_settings", {})
    lines = [
        f"Written by `bench/fast_sampling.py` ({result['date'][:16]} UTC): sliced Wasserstein "
        f"distance / floor, {rs.get('ring_n')} samples, ring floor {result['ring_floor']:.4f}.",
        "",
        *_ring_table(result["ring"], "ring", result.get("goals", {})),
        f"Second mixture, {n_of(result, 'seven')} samples, floor {result['seven_floor']:.4f}:",
        "",
        *_ring_table(result["ring"], "seven", {}),
    ]
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    page.write_text(f"{head}{START}\n" + "\n".join(lines) + f"\n{END}{tail}", encoding="utf-8")


def machine_now() -> dict:
    """Where a part of the benchmark ran, with the load average as it ends."""
    return {
        "processor": platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ring-n", type=int, default=None, help="ring samples (200,000)")
    parser.add_argument("--digits-n", type=int, default=None, help="digit samples (640)")
    parser.add_argument("--skip-digits", action="store_true",
                        help="keep the digits rows of the existing results file")
    parser.add_argument("--skip-ring", action="store_true",
                        help="keep the ring rows of the existing results file")
    parser.add_argument("--model-steps", type=int, default=None,
                        help="train digits_cond for this many steps instead of the preset's "
                             "(recorded in the results; for machines too slow for the preset)")
    parser.add_argument("--methods", default="",
                        help="substrings separated by |: run only the ring methods that match")
    parser.add_argument("--targets", default="ring,seven", help="ring targets to run")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    smoke = is_smoke()
    out = args.out or (Path(tempfile.mkdtemp(prefix="bench-fast-")) if smoke else RESULTS)
    out.mkdir(parents=True, exist_ok=True)
    settings = {
        "ring_n": args.ring_n or (2000 if smoke else 200_000),
        "budgets": [5, 8] if smoke else [5, 8, 10, 20],
        "digits_n": args.digits_n or (20 if smoke else 640),
        "smoke": smoke,
        "digits_model": "digits_cond" + (f", steps={args.model_steps}" if args.model_steps else ""),
        "dtype": "float64 (ours), float32 (diffusers; its UniPC fails on float64)",
    }
    torch.set_num_threads(1)  # several OpenMP threads on a shared 2-core box: 30x slower GMM calls
    previous = {}
    if (out / "fast_sampling.json").is_file() and (args.skip_ring or args.skip_digits):
        previous = json.loads((out / "fast_sampling.json").read_text("utf-8"))
    if args.skip_ring:
        ring_part = {k: previous.get(k, math.nan) for k in ("ring_floor", "seven_floor")}
        ring_part["ring"] = previous.get("ring", [])
        ring_part["ring_settings"] = previous.get("ring_settings", previous.get("settings"))
    else:
        ring_part = {"ring_floor": math.nan, "seven_floor": math.nan, "ring": [],
                     "ring_settings": settings, "ring_complete": False}

        def save(key: str, done: list[RingRow]) -> Callable[[list[RingRow], float], None]:
            def write(rows: list[RingRow], floor: float) -> None:
                ring_part[f"{key}_floor"] = floor
                ring_part["ring"] = [r.__dict__ for r in done + rows]
                partial = {**ring_part, "digits": previous.get("digits", [])}
                (out / "fast_sampling.json").write_text(json.dumps(partial, indent=2) + "\n")

            return write

        wanted = [w.strip() for w in args.methods.split("|") if w.strip()]
        methods = {k: v for k, v in ring_order().items()
                   if not wanted or any(w in k for w in wanted)}
        ring_rows: list[RingRow] = []
        if "ring" in args.targets:
            print("ring")
            ring_rows, _ = ring_section(ring(), "ring", methods, settings["ring_n"],
                                        settings["budgets"], save("ring", []))
        if "seven" in args.targets:
            print("second mixture")
            second = {k: v for k, v in methods.items() if k in SECOND_TARGET}
            ring_section(seven_modes(), "seven", second, settings["ring_n"], settings["budgets"],
                         save("seven", ring_rows))
        ring_part["ring_complete"] = True
    # each part keeps the settings and machine of the run that measured it
    if args.skip_ring:
        ring_part["ring_machine"] = previous.get("ring_machine", previous.get("machine"))
        ring_part["ring_complete"] = previous.get("ring_complete", bool(ring_part["ring"]))
    if args.skip_digits:
        digits = previous.get("digits", [])
        digits_settings = previous.get("digits_settings", previous.get("settings"))
        digits_machine = previous.get("digits_machine", previous.get("machine"))
    else:
        rows = DIGITS_ROWS if not smoke else DIGITS_ROWS[5:7]
        steps = args.model_steps if not smoke else 20
        digits = [r.__dict__ for r in digits_section(rows, settings["digits_n"], steps)]
        digits_settings = settings
        digits_machine = machine_now()
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": settings,
        "goals": {str(k): v for k, v in GOALS.items()},
        **ring_part,
        "digits": digits,
        "digits_settings": digits_settings,
        "digits_machine": digits_machine,
    }
    if not args.skip_ring:
        result["ring_machine"] = machine_now()
    (out / "fast_sampling.json").write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    figure(result, out / "fast_sampling.png")
    if not smoke and args.out is None:
        shutil.copyfile(out / "fast_sampling.png", DOC_DIR / "fast_sampling.png")
        if result.get("ring") and not args.skip_ring:  # the note's ring tables, when rerun
            update_note(result)
    print(f"wrote {out / 'fast_sampling.json'}")
    return result


if __name__ == "__main__":
    main()
