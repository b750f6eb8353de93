"""Benchmark the samplers: quality against model evaluations, and per-step overhead vs diffusers.

1. Quality: a 2-D Gaussian mixture whose exact eps is the "network", so every difference
   between samplers is discretisation error. For DDPM, DDIM, DPM-Solver++(2M), Euler and Heun
   at about 5, 10, 20, 50, 100 and 1000 network evaluations (NFE, counted by wrapping the
   network: Heun spends two per step but one on the last) we report the sliced Wasserstein
   distance to fresh target samples and the mean true negative log-likelihood of the samples.
2. Overhead: the same tiny network and steps through our sampling loop and through diffusers'
   ``scheduler.step`` loop (DDIM and DPM-Solver++), timed side by side, median of repeats. The
   network's own time is measured separately and subtracted, leaving the sampler's per-step cost.

Writes bench/results/samplers.json and samplers.png, copies the figure to
docs/fast-sampling/samplers.png and rewrites the table between the markers of
docs/fast-sampling/samplers-benchmark.md. ``--smoke`` (or DIFFUSION_NOTES_SMOKE=1) runs tiny
sizes into a temporary folder and leaves the committed results and the page alone.

Run:  python bench/samplers.py            (about two minutes on 2 CPU cores)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from diffusion_notes.data.gmm import GaussianMixture  # noqa: E402
from diffusion_notes.denoiser import Denoiser  # noqa: E402
from diffusion_notes.runtime import is_smoke  # noqa: E402
from diffusion_notes.samplers import (  # noqa: E402
    sample_ddim,
    sample_ddpm,
    sample_dpm_solver_pp,
    sample_euler,
    sample_heun,
)
from diffusion_notes.schedules import make_schedule  # noqa: E402
from diffusion_notes.timesteps import timestep_pairs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DOC_DIR = ROOT / "docs" / "fast-sampling"
PAGE = DOC_DIR / "samplers-benchmark.md"
START, END = "<!-- bench:samplers:start -->", "<!-- bench:samplers:end -->"
T = 1000
SPACING = "trailing"
SAMPLERS: dict[str, Callable] = {
    "DDPM": sample_ddpm,
    "DDIM": sample_ddim,
    "DPM-Solver++(2M)": sample_dpm_solver_pp,
    "Euler": sample_euler,
    "Heun": sample_heun,
}


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    """Run a block with n intra-op threads, restoring the previous setting afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def target() -> GaussianMixture:
    """Seven components: six tight, elongated ones on a ring plus a broad one in the middle,
    weights from 0.05 to 0.25 (thin modes make few-step samplers visibly blur)."""
    k = 6
    ang = torch.arange(k, dtype=torch.float64) * (2 * math.pi / k)
    means = torch.cat(
        [2.5 * torch.stack([ang.cos(), ang.sin()], 1), torch.zeros(1, 2, dtype=torch.float64)]
    )
    covs = []
    for a in ang.tolist():
        rot = torch.tensor(
            [[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=torch.float64
        )
        covs.append(rot @ torch.diag(torch.tensor([0.02, 0.15], dtype=torch.float64)) @ rot.T)
    covs.append(0.3 * torch.eye(2, dtype=torch.float64))
    w = torch.tensor([0.05, 0.1, 0.15, 0.05, 0.1, 0.3, 0.25], dtype=torch.float64)
    return GaussianMixture(means, torch.stack(covs), w / w.sum())


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, n_dirs: int = 180) -> float:
    """Sliced 2-Wasserstein distance between equal-size 2-D samples: project on n_dirs evenly
    spaced directions, sort, and average the squared gaps; square root of the mean."""
    ang = torch.arange(n_dirs, dtype=torch.float64) * (math.pi / n_dirs)
    dirs = torch.stack([ang.cos(), ang.sin()], 0)  # (2, n_dirs)
    pa = torch.sort(a.double() @ dirs, dim=0).values
    pb = torch.sort(b.double() @ dirs, dim=0).values
    return math.sqrt(((pa - pb) ** 2).mean().item())


def counted(model: Callable) -> tuple[Callable, list[int]]:
    calls = [0]

    def wrapped(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        calls[0] += 1
        return model(x, t)

    return wrapped, calls


def quality(n_samples: int, budgets: list[int]) -> tuple[list[dict], dict]:
    schedule = make_schedule("linear", T)
    gm = target()
    model = gm.eps_model(schedule)
    x_T = torch.randn(n_samples, 2, generator=torch.Generator().manual_seed(0))
    fresh = gm.sample(n_samples, generator=torch.Generator().manual_seed(1)).float()
    # the floor: target against target at this sample size; its spread over 8 independent
    # pairs says which differences between samplers are noise
    floors = torch.tensor(
        [
            sliced_wasserstein(
                gm.sample(n_samples, generator=torch.Generator().manual_seed(100 + i)),
                gm.sample(n_samples, generator=torch.Generator().manual_seed(200 + i)),
            )
            for i in range(8)
        ]
    )
    floor = {
        "swd_floor": floors.mean().item(),
        "swd_floor_std": floors.std().item(),
        "nll_floor": -gm.log_prob(fresh).mean().item(),  # entropy estimate of the target
    }
    rows = []
    for name, sampler in SAMPLERS.items():
        for budget in budgets:
            steps = (budget + 1) // 2 if name == "Heun" else budget
            net, calls = counted(model)
            kwargs = {"generator": torch.Generator().manual_seed(3)} if name == "DDPM" else {}
            t0 = time.perf_counter()
            y = sampler(
                Denoiser(net, schedule),
                x_T,
                timestep_pairs(T, steps, SPACING),
                progress=False,
                **kwargs,
            )
            seconds = time.perf_counter() - t0
            rows.append(
                {
                    "sampler": name,
                    "nfe": calls[0],
                    "steps": steps,
                    "swd": sliced_wasserstein(y, fresh),
                    "nll": -gm.log_prob(y).mean().item(),
                    "seconds": seconds,
                }
            )
            print(
                f"  {name:17s} NFE {calls[0]:5d}  SWD {rows[-1]['swd']:.4f}  NLL {rows[-1]['nll']:.3f}"
            )
    return rows, floor


def tiny_model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The network of the overhead test: as cheap as possible, the same for both loops."""
    return 0.9 * x


def overhead(n_steps: int, repeats: int) -> list[dict]:
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

    schedule = make_schedule("linear", T)
    x = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(4))
    den = Denoiser(tiny_model, schedule)

    def ours_ddim() -> torch.Tensor:
        return sample_ddim(den, x, timestep_pairs(T, n_steps, SPACING), progress=False)

    def ours_dpm() -> torch.Tensor:
        pairs = timestep_pairs(T, n_steps, SPACING, convention="dpm_solver")
        return sample_dpm_solver_pp(den, x, pairs, progress=False)

    def theirs(scheduler) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            scheduler.set_timesteps(n_steps)
            y = x
            for t in scheduler.timesteps:
                y = scheduler.step(tiny_model(y, t.expand(y.shape[0])), t, y).prev_sample
            return y

        return run

    def model_only() -> torch.Tensor:
        y = x
        for t in range(n_steps):
            y = tiny_model(y, torch.full((1,), t, dtype=torch.long))
        return y

    cases = {
        "DDIM": (
            ours_ddim,
            theirs(
                DDIMScheduler(num_train_timesteps=T, timestep_spacing=SPACING, clip_sample=False)
            ),
        ),
        "DPM-Solver++(2M)": (
            ours_dpm,
            theirs(
                DPMSolverMultistepScheduler(
                    num_train_timesteps=T,
                    timestep_spacing=SPACING,
                    algorithm_type="dpmsolver++",
                    solver_order=2,
                )
            ),
        ),
    }
    rows = []
    for name, (ours, diffusers_loop) in cases.items():
        times: dict[str, list[float]] = {"ours": [], "diffusers": [], "model": []}
        for fn in (ours, diffusers_loop, model_only):  # warm up
            fn()
        for _ in range(repeats):  # interleaved, so slow drifts of the machine hit all three
            for key, fn in (("ours", ours), ("diffusers", diffusers_loop), ("model", model_only)):
                t0 = time.perf_counter()
                fn()
                times[key].append((time.perf_counter() - t0) / n_steps * 1e6)
        med = {k: statistics.median(v) for k, v in times.items()}
        ours_us, theirs_us = med["ours"] - med["model"], med["diffusers"] - med["model"]
        rows.append(
            {
                "sampler": name,
                "steps": n_steps,
                "ours_us_per_step": ours_us,
                "diffusers_us_per_step": theirs_us,
                "ratio": ours_us / theirs_us,
                "model_us_per_step": med["model"],
                "ours_total_us_per_step": med["ours"],
                "diffusers_total_us_per_step": med["diffusers"],
            }
        )
        print(
            f"  {name:17s} ours {ours_us:7.1f} us/step  diffusers {theirs_us:7.1f} us/step  ratio {ours_us / theirs_us:.2f}"
        )
    return rows


def machine() -> dict:
    import diffusers

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": 1,
        "load_average_1min": os.getloadavg()[0],  # the box is shared: timings vary with load
        "python": platform.python_version(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
    }


def figure(result: dict, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    markers = dict(zip(SAMPLERS, "osD^v", strict=True))
    for name in SAMPLERS:
        rows = [r for r in result["quality"] if r["sampler"] == name]
        nfe = [r["nfe"] for r in rows]
        style = {"ls": ":", "ms": 4} if name == "Euler" else {"ms": 6}  # Euler coincides with DDIM
        axes[0].plot(nfe, [r["swd"] for r in rows], marker=markers[name], label=name, **style)
        axes[1].plot(nfe, [r["nll"] for r in rows], marker=markers[name], label=name, **style)
    lo = result["swd_floor"] - 2 * result["swd_floor_std"]
    hi = result["swd_floor"] + 2 * result["swd_floor_std"]
    axes[0].axhline(result["swd_floor"], color="gray", ls="--", label="target vs target (±2 sd)")
    axes[0].axhspan(max(lo, 1e-4), hi, color="gray", alpha=0.15)
    axes[1].axhline(result["nll_floor"], color="gray", ls="--", label="target entropy")
    axes[0].set(
        xscale="log",
        yscale="log",
        xlabel="network evaluations (NFE)",
        ylabel="sliced Wasserstein-2",
    )
    axes[1].set(
        xscale="log", xlabel="network evaluations (NFE)", ylabel="mean -log p(sample) (nats)"
    )
    axes[0].set_title("distance to the target (lower is better)")
    axes[1].set_title("true NLL of the samples (target: dashed)")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(
        f"Exact-score sampling of a 2-D Gaussian mixture, n = {result['settings']['n_samples']}, {SPACING} spacing"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def table(result: dict) -> str:
    """Markdown tables rendered from the JSON (the page shows exactly these numbers)."""
    budgets = sorted({r["nfe"] for r in result["quality"] if r["sampler"] == "DDIM"})
    lines = [
        "| sampler | " + " | ".join(f"NFE {b}" for b in budgets) + " |",
        "|---|" + "---|" * len(budgets),
    ]
    for name in SAMPLERS:
        rows = [r for r in result["quality"] if r["sampler"] == name]
        cells = [
            f"{r['swd']:.3f} / {r['nll']:.2f}" + (f" ({r['nfe']})" if r["nfe"] != b else "")
            for r, b in zip(rows, budgets, strict=True)
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Cells: sliced Wasserstein-2 / mean NLL in nats (actual NFE in brackets where it differs). "
        f"Floor: SWD {result['swd_floor']:.3f} ± {result['swd_floor_std']:.3f} (mean ± sd over 8 pairs "
        f"of target samples of this size; differences below that are noise); target entropy "
        f"{result['nll_floor']:.2f} nats. n = {result['settings']['n_samples']} samples.",
        "",
        "| sampler | ours (us/step) | diffusers (us/step) | ratio | network (us/step) |",
        "|---|---|---|---|---|",
    ]
    for r in result["overhead"]:
        lines.append(
            f"| {r['sampler']} | {r['ours_us_per_step']:.1f} | {r['diffusers_us_per_step']:.1f} | "
            f"{r['ratio']:.2f} | {r['model_us_per_step']:.1f} |"
        )
    m = result["machine"]
    lines += [
        "",
        f"Machine: {m['processor']}, {m['cpu_count']} cores (load average {m['load_average_1min']:.1f} "
        f"at the end of the run), 1 torch thread; torch {m['torch']}, diffusers {m['diffusers']}.",
    ]
    return "\n".join(lines)


def update_page(result: dict, page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise ValueError(f"{page} lacks the markers {START} ... {END}")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    page.write_text(f"{head}{START}\n{table(result)}\n{END}{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, results in a temp folder")
    parser.add_argument(
        "--out", type=Path, default=None, help="results folder (default bench/results)"
    )
    args = parser.parse_args(argv)
    smoke = args.smoke or is_smoke()
    out = args.out or (Path(tempfile.mkdtemp(prefix="bench-samplers-")) if smoke else RESULTS)
    out.mkdir(parents=True, exist_ok=True)
    settings = {
        "n_samples": 1000 if smoke else 40_000,
        "budgets": [5, 10, 20] if smoke else [5, 10, 20, 50, 100, 1000],
        "overhead_steps": 10 if smoke else 50,
        "overhead_repeats": 3 if smoke else 41,
        "spacing": SPACING,
        "schedule": f"linear, T={T}",
        "smoke": smoke,
    }
    # One intra-op thread: the CPU box is shared and small; several OpenMP threads there made
    # the mixture evaluations ~30x slower, and the overhead test measures the Python-side loop.
    with threads(1):
        print("per-step overhead")  # first, in a fresh process, before the large allocations
        over = overhead(settings["overhead_steps"], settings["overhead_repeats"])
        print("quality vs NFE")
        rows, floor = quality(settings["n_samples"], settings["budgets"])
    result = {
        "quality": rows,
        "overhead": over,
        "machine": machine(),
        **floor,
        "settings": settings,
    }
    (out / "samplers.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    figure(result, out / "samplers.png")
    if not smoke:
        DOC_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "samplers.png", DOC_DIR / "samplers.png")
        update_page(result, PAGE)
    print(
        f"wrote {out / 'samplers.json'} and {out / 'samplers.png'}"
        + ("" if smoke else f"; updated {PAGE}")
    )
    return result


if __name__ == "__main__":
    main()
