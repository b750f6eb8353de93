"""Benchmark: the digits lab's DDPM, trained and scored on this machine.

    .venv/bin/python bench/digits.py            # full lab budget (minutes on 2 CPU cores)
    DIFFUSION_NOTES_SMOKE=1 .venv/bin/python bench/digits.py   # seconds; writes *-smoke.json

Trains the ``digits`` preset from scratch (the digits lab's config, so its time is measured
here, not read from the cache), draws DDPM-1000 samples from the EMA weights, and writes
``bench/results/digits.json``: training time and it/s, sampling time, digits FD of the samples
with the size-matched real-data floor, precision/recall, the classifier's held-out accuracy and
the distribution of its predicted labels on the samples. The trained model is then stored in
the model cache, so the labs can reuse it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import torch
from _machine import machine_info

from diffusion_notes import get_device, is_smoke, pick
from diffusion_notes.cache import config_hash, model_path
from diffusion_notes.denoiser import Denoiser
from diffusion_notes.metrics import get_digit_classifier, label_entropy, score_digits
from diffusion_notes.samplers import sample_ddpm
from diffusion_notes.train import load_trained, make_schedule_for, preset, train

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--n-samples", type=int, default=None,
                        help="samples to score (default 898, the size of a real half)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--no-cache-store", action="store_true",
                        help="do not copy the trained model into the model cache")
    args = parser.parse_args(argv)
    smoke = is_smoke()
    device = get_device(args.device)
    # exactly the digits lab's config (same cache key); smoke mode shrinks it
    config = preset("digits", **pick({}, {"steps": 20, "timesteps": 50, "batch_size": 32}))
    n = args.n_samples or pick(898, 16)
    out = args.out or RESULTS / ("digits-smoke.json" if smoke else "digits.json")
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan

    with tempfile.TemporaryDirectory() as tmp:
        result = train(config, out_dir=tmp, device=device, resume=False)
        model, _ = load_trained(result.checkpoint, device=device)
        if not args.no_cache_store:
            target = model_path(config)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(result.checkpoint, target)

    schedule = make_schedule_for(config)
    g = torch.Generator().manual_seed(0)
    x_T = torch.randn(n, *config.dataset.shape, generator=g).to(device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    samples = sample_ddpm(Denoiser(model, schedule, prediction=config.prediction), x_T, generator=g)
    if device.type == "cuda":
        torch.cuda.synchronize()
    sampling_seconds = time.perf_counter() - start

    classifier, clf = get_digit_classifier(device=device)
    score = score_digits(samples.cpu(), classifier)
    counts = list(score.label_counts)
    report = {
        "benchmark": "digits",
        "smoke": smoke,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(device, load_before),
        "config": asdict(config),
        "config_hash": config_hash(config),
        "train": {
            "steps": result.steps,
            "seconds": round(result.seconds, 2),
            "it_per_s": round(result.steps_per_second, 2),
            "final_loss_mean_of_last_100": round(sum(result.losses[-100:])
                                                 / len(result.losses[-100:]), 5),
        },
        "sampling": {
            "sampler": "ddpm",
            "steps": schedule.T,
            "n_samples": n,
            "seconds": round(sampling_seconds, 2),
            "model_calls_per_s": round(schedule.T / sampling_seconds, 2),
        },
        "digits_fd": round(score.fd, 3),
        "real_data_floor": round(score.floor, 3),
        "floor_note": f"FD of {min(n, 899)} real digits against the same reference half "
                      f"({score.n_reference} real digits): same sample sizes as the score",
        "precision": round(score.precision, 4),
        "recall": round(score.recall, 4),
        "classifier": {"held_out_accuracy": round(clf.accuracy, 4),
                       "n_train": clf.n_train, "n_held_out": clf.n_held_out},
        "predicted_labels": {
            "counts": counts,
            "fractions": [round(c / n, 4) for c in counts],
            "entropy_bits": round(label_entropy(counts), 4),
            "balanced_entropy_bits": round(math.log2(10), 4),
        },
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("train", "sampling", "digits_fd",
                                              "real_data_floor", "precision", "recall")}))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
