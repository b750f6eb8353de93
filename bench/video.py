"""Benchmark: the video lab's models, compared with the frame-by-frame baseline.

    .venv/bin/python bench/video.py            # the lab's settings (minutes on 2 CPU cores)
    DIFFUSION_NOTES_SMOKE=1 .venv/bin/python bench/video.py   # seconds; writes video-smoke.json
    .venv/bin/python bench/video.py --temporal spacetime --unfrozen --steps 3000 --lr 1e-3
        # a variant of the lab's model (writes video-spacetime-unfrozen-3000steps-lr0.001.json)
    .venv/bin/python bench/video.py --temporal previous --unfrozen --steps 48000 --lr 1e-3 \
        --prediction v --lr-schedule linear   # the autoregressive frame model (previous
                                              # frames as input channels)
    ... --eta 1 --ddim-steps 50   # the same cached model sampled by stochastic DDIM: the
                                  # note's goal-meeting run

Gets the video lab's image model and video model from the model cache (training them when
missing; their training times are those measured when they were trained), samples ``--n-clips``
clips with each from the same seeded noise (DDIM, 25 steps unless told), unconditionally and from the first
frame of held-out clips, and writes ``bench/results/video.json``: class consistency, motion
error and seconds per clip for the video model and for the image model sampling every frame on
its own; and beside it a GIF of 16 unconditional clips and 16 from a given first frame
(``--doc-gif`` copies it to ``docs/map/``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path

import torch
from _machine import machine_info

from diffusion_notes import get_device, is_smoke, pick
from diffusion_notes.cache import get_or_train
from diffusion_notes.metrics import get_digit_classifier
from diffusion_notes.plots import clips_gif
from diffusion_notes.train import make_schedule_for, preset
from diffusion_notes.video import (
    LR_SCHEDULES,
    VIDEO_KINDS,
    VideoConfig,
    compare_with_baseline,
    get_or_train_video,
)
from diffusion_notes.video_metrics import ClipScore

RESULTS = Path(__file__).resolve().parent / "results"
DOC_DIR = Path(__file__).resolve().parent.parent / "docs" / "map"


def _score(s: ClipScore, seconds: float | None = None) -> dict[str, float]:
    out = {"class_consistency": round(s.class_consistency, 4),
           "motion_error_px": round(s.motion_error, 4)}
    if seconds is not None:
        out["seconds_per_clip"] = round(seconds, 5)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--n-clips", type=int, default=None, help="clips per model (default 64, as the lab)")
    parser.add_argument("--temporal", choices=VIDEO_KINDS, default=None,
                        help="a variant's temporal layers (default: the lab's)")
    parser.add_argument("--steps", type=int, default=None, help="a variant's training steps")
    parser.add_argument("--lr", type=float, default=None, help="a variant's learning rate")
    parser.add_argument("--high-noise-weight", type=float, default=None,
                        help="a variant whose loss weights high noise (VideoConfig.high_noise_weight)")
    parser.add_argument("--prediction", choices=("eps", "x0", "v"), default=None,
                        help="a variant's output parametrisation (temporal 'previous' only)")
    parser.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=None,
                        help="a variant's learning-rate schedule after the warm-up")
    parser.add_argument("--eta", type=float, default=0.0,
                        help="DDIM's noise level when sampling both models (0: deterministic)")
    parser.add_argument("--ddim-steps", type=int, default=None,
                        help="DDIM steps per clip (per frame for 'previous'; default 25)")
    parser.add_argument("--unfrozen", action="store_true",
                        help="a variant that trains the image layers too")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--doc-gif", action="store_true",
                        help="also copy the clips' GIF to docs/map/ (the note shows it)")
    args = parser.parse_args(argv)
    smoke = is_smoke()
    device = get_device(args.device)
    # exactly the lab's configs (same cache keys); smoke mode shrinks them as the lab does
    image_config = preset("digits_frames", **pick({}, {"steps": 4, "batch_size": 8}))
    config = VideoConfig(image=image_config, **pick({}, {"steps": 4, "n_clips": 16}))
    variant = {k: v for k, v in (("temporal", args.temporal), ("steps", args.steps),
                                 ("lr", args.lr), ("high_noise_weight", args.high_noise_weight),
                                 ("prediction", args.prediction),
                                 ("lr_schedule", args.lr_schedule))
               if v is not None}
    if args.unfrozen:
        variant["freeze_spatial"] = False
    config = replace(config, **variant)
    n = args.n_clips or pick(64, 4)
    n_steps = pick(args.ddim_steps or 25, 3)
    name = "-".join(["video", *([args.temporal] if args.temporal else []),
                     *(["unfrozen"] if args.unfrozen else []),
                     *([f"{args.steps}steps"] if args.steps else []),
                     *([f"lr{args.lr:g}"] if args.lr else []),
                     *([f"hnw{args.high_noise_weight:g}"] if args.high_noise_weight else []),
                     *([f"{args.prediction}pred"] if args.prediction else []),
                     *([f"{args.lr_schedule}lr"] if args.lr_schedule else []),
                     *([f"eta{args.eta:g}"] if args.eta else []),
                     *([f"ddim{args.ddim_steps}"] if args.ddim_steps else [])])
    out = args.out or RESULTS / (f"{name}-smoke.json" if smoke else f"{name}.json")
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan

    image_model, image_info = get_or_train(image_config, device=device)
    video_model, info = get_or_train_video(config, device=device)
    classifier, _ = get_digit_classifier(device=device)
    cmp = compare_with_baseline(video_model, image_model, make_schedule_for(image_config),
                                classifier, n_clips=n, frames=config.frames, n_steps=n_steps,
                                seed=0, prediction=config.prediction,
                                eta=args.eta)
    report = {
        "benchmark": "video",
        "smoke": smoke,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(device, load_before),
        "config": asdict(config),
        "variant": variant,  # fields changed from the lab's config (empty: the lab's model)
        "train": {
            "image_seconds": round(image_info.seconds, 2),
            "video_seconds": round(info.seconds, 2),
            "from_cache": info.from_cache,
            "trainable_parameters": info.trainable,
            "total_parameters": info.total,
        },
        "sampling": {"sampler": "ddim", "steps": n_steps, "eta": args.eta, "n_clips": n,
                     "frames": config.frames},
        "unconditional": {
            "video": _score(cmp.video, cmp.seconds_per_clip_video),
            "frame_by_frame": _score(cmp.baseline, cmp.seconds_per_clip_baseline),
        },
        "from_first_frame": {
            "video": _score(cmp.video_i2v),
            "frame_by_frame": _score(cmp.baseline_i2v),
        },
        "goals": {
            "class_consistency_at_least": 0.9,
            "motion_error_ratio_at_most": 0.5,
            "motion_error_ratio": round(cmp.video.motion_error / cmp.baseline.motion_error, 4),
            "class_met": cmp.video.class_consistency >= 0.9,
            "motion_met": cmp.video.motion_error <= 0.5 * cmp.baseline.motion_error,
        },
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    # 16 unconditional clips, then 16 from a given first frame: what the numbers describe
    gif = out.with_suffix(".gif")
    gif.write_bytes(clips_gif(torch.cat([cmp.clips_video[:16], cmp.clips_i2v[:16]])))
    if args.doc_gif:
        shutil.copyfile(gif, DOC_DIR / gif.name)
    print(json.dumps({k: report[k] for k in ("unconditional", "from_first_frame", "goals")}))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
