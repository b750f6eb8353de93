"""Benchmark: guidance curves on digits, classifier-free and classifier guidance on one set of axes.

    .venv/bin/python bench/guidance.py                       # minutes on 2 CPU cores
    DIFFUSION_NOTES_SMOKE=1 .venv/bin/python bench/guidance.py   # seconds; writes *-smoke.json

For each method, scale and interval it samples ``n_per_class`` digits of every class with DDIM
and scores them with :func:`diffusion_notes.guidance_eval.evaluate_guided`: class accuracy by
the held-out digit classifier, digits FD against the 359 held-out digits (with its size-matched
floor), precision, recall, within-class diversity, and seconds per 64 samples. Methods:

* ``cfg``: classifier-free guidance of the shared ``digits_cond`` model (scale 1 = conditional);
* ``cfg`` with ``interval``: the same, guiding only for sigma in the interval;
* ``cg``: classifier guidance of ``digits_uncond`` with the noise-aware classifier.

Writes ``bench/results/guidance.json`` and ``guidance.png`` (copied to ``docs/guidance/``),
and checks the goals: CFG >= 97 % accuracy at a scale whose FD is <= 1.5x the unguided
conditional model's, and classifier guidance >= 90 % at some scale.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from _machine import machine_info

from diffusion_notes import get_device, is_smoke, pick
from diffusion_notes.cache import get_or_train
from diffusion_notes.denoiser import Denoiser
from diffusion_notes.guidance import classifier_free, classifier_guided
from diffusion_notes.guidance_eval import (
    ddim_sampler,
    evaluate_guided,
    format_table,
    plot_guidance_curves,
)
from diffusion_notes.metrics import get_digit_classifier
from diffusion_notes.models.noisy_classifier import get_noisy_classifier
from diffusion_notes.timesteps import timestep_pairs
from diffusion_notes.train import make_schedule_for, preset

RESULTS = Path(__file__).resolve().parent / "results"
DOC_DIR = Path(__file__).resolve().parents[1] / "docs" / "guidance"
CFG_SCALES = (1.0, 1.25, 1.5, 2.0, 3.0, 5.0)
CG_SCALES = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
INTERVAL = (0.3, 5.0)  # sigma range for the limited-interval curve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--n-per-class", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None, help="DDIM steps (default 30)")
    parser.add_argument("--cfg-scales", type=float, nargs="+", default=list(CFG_SCALES))
    parser.add_argument("--cg-scales", type=float, nargs="+", default=list(CG_SCALES))
    args = parser.parse_args(argv)
    smoke = is_smoke()
    device = get_device(args.device)
    n_per_class = args.n_per_class or pick(40, 3)
    steps = args.steps or pick(30, 4)
    shrink = pick({}, {"steps": 20, "timesteps": 100, "batch_size": 32})
    cond_cfg, uncond_cfg = preset("digits_cond", **shrink), preset("digits_uncond", **shrink)
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan

    cond_model, cond_info = get_or_train(cond_cfg, device=device)
    uncond_model, uncond_info = get_or_train(uncond_cfg, device=device)
    from diffusion_notes.models.noisy_classifier import NoisyClassifierConfig

    noisy_cfg = NoisyClassifierConfig(**pick({}, {"steps": 20, "timesteps": 100}))
    noisy, noisy_info = get_noisy_classifier(noisy_cfg, device=device)
    classifier, clf_info = get_digit_classifier(device=device)
    schedule = make_schedule_for(cond_cfg)
    sampler = ddim_sampler(timestep_pairs(schedule.T, steps))
    cond_den = Denoiser(cond_model, schedule, clip_x0=True)
    uncond_den = Denoiser(uncond_model, schedule, clip_x0=True)

    rows = []
    cfg_scales = sorted({1.0, *args.cfg_scales})  # 1.0: the unguided baseline of the goal
    settings = [("cfg", s, None) for s in cfg_scales]
    settings += [("cfg", s, INTERVAL) for s in cfg_scales if s != 1.0]
    settings += [("cg", s, None) for s in args.cg_scales]
    for method, scale, interval in settings:
        if method == "cfg":
            def build(y, scale=scale, interval=interval):
                return classifier_free(cond_den.with_cond(y), null_cond=10, scale=scale,
                                       interval=interval)
        else:
            def build(y, scale=scale):
                return classifier_guided(uncond_den, noisy, y=y, scale=scale)
        r, _, _ = evaluate_guided(build, sampler, classifier, method=method, scale=scale,
                                  interval=interval, n_per_class=n_per_class, device=device)
        rows.append(r)
        print(format_table([r]).splitlines()[-1], flush=True)
    print(format_table(rows))

    base = next(r for r in rows if r.method == "cfg" and r.scale == 1.0 and r.interval is None)
    cfg_ok = [r for r in rows if r.method == "cfg" and r.accuracy >= 0.97
              and r.fd <= 1.5 * base.fd]
    cg_best = max((r for r in rows if r.method == "cg"), key=lambda r: r.accuracy)
    goals = {
        "cfg": {"goal": "accuracy >= 97% at a scale with FD <= 1.5x the unguided conditional "
                        "model's", "unguided_fd": base.fd, "met": bool(cfg_ok),
                "settings_meeting_it": [{"scale": r.scale, "interval": r.interval,
                                         "accuracy": r.accuracy, "fd": r.fd} for r in cfg_ok]},
        "cg": {"goal": "accuracy >= 90% at some scale", "best_scale": cg_best.scale,
               "best_accuracy": cg_best.accuracy, "met": cg_best.accuracy >= 0.90},
    }
    report = {
        "benchmark": "guidance",
        "smoke": smoke,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(device, load_before),
        "sampler": {"name": "ddim", "eta": 0.0, "steps": steps, "clip_x0": True},
        "n_per_class": n_per_class,
        "interval_sigma": list(INTERVAL),
        "models": {
            "digits_cond": {"config": asdict(cond_cfg), "train_seconds": cond_info.seconds},
            "digits_uncond": {"config": asdict(uncond_cfg),
                              "train_seconds": uncond_info.seconds},
            "noisy_classifier": {"config": asdict(noisy_cfg),
                                 "train_seconds": noisy_info.seconds,
                                 "held_out_accuracy_by_t": [list(p) for p in
                                                            noisy_info.accuracy_by_t]},
            "digit_classifier_held_out_accuracy": clf_info.accuracy,
        },
        "rows": [asdict(r) for r in rows],
        "goals": goals,
    }
    name = "guidance-smoke" if smoke else "guidance"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    fig = plot_guidance_curves(rows, f"guidance on digits ({n_per_class} per class, "
                                     f"DDIM-{steps})")
    fig.savefig(RESULTS / f"{name}.png", dpi=110)
    if not smoke:
        shutil.copyfile(RESULTS / f"{name}.png", DOC_DIR / "guidance-bench.png")
    print(json.dumps(goals, indent=2))
    print(f"wrote {RESULTS / (name + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
