"""Map part i2i: the SDEdit faithfulness/realism curve and super-resolution against bicubic.

Run through ``bench/map.py --part i2i``. SDEdit runs on 128 held-out digits per guide kind
(flipped pixels, blocky sketch, relabel to the next class) with the shared class-conditional
digits model; super-resolution 4x4 -> 8x8 on all 359 held-out digits with the cached SR model.
"""

from __future__ import annotations

import time
from dataclasses import asdict

import torch

from diffusion_notes import get_device
from diffusion_notes.cache import get_or_train
from diffusion_notes.data.digits import digits_split
from diffusion_notes.denoiser import Denoiser
from diffusion_notes.img2img_eval import digits_guides, sdedit_sweep, sr_methods, sr_rows
from diffusion_notes.metrics import get_digit_classifier
from diffusion_notes.models.sr import SRConfig, get_sr_model, sr_schedule
from diffusion_notes.train import make_schedule_for, preset

TITLE = "Image-to-image in miniature: SDEdit's trade-off and 4x4 -> 8x8 super-resolution"


def _monotone(values: list[float], increasing: bool) -> bool:
    pairs = zip(values, values[1:], strict=False)
    return all((b > a) if increasing else (b < a) for a, b in pairs)


def run(smoke: bool) -> dict:
    device = get_device()
    start = time.perf_counter()
    config = preset("digits_cond", **({"steps": 4, "batch_size": 8} if smoke else {}))
    sr_config = SRConfig(**({"steps": 4, "batch_size": 8} if smoke else {}))
    n_guides, n_steps, n_sr = (8, 4, 2) if smoke else (128, 50, 8)
    strengths = [0.0, 0.5, 1.0] if smoke else [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0]
    model, _ = get_or_train(config, device=device, progress=False)
    classifier, _ = get_digit_classifier(device=device)
    held = digits_split()[1]
    perm = torch.randperm(len(held.images), generator=torch.Generator().manual_seed(0))[:n_guides]
    clean, labels = held.images[perm].to(device), held.labels[perm]
    guides = digits_guides(Denoiser(model, make_schedule_for(config)), clean, labels,
                           null=model.num_classes)
    curves = {}
    for name, (guide, den, tgt) in guides.items():
        pts, _ = sdedit_sweep(den, guide, strengths, classifier, n_steps=n_steps, targets=tgt,
                              seed=2, progress=False)
        curves[name] = [asdict(p) for p in pts]

    sr_net, sr_info = get_sr_model(sr_config, progress=False)
    truth = held.images[: 16 if smoke else None].to(device)
    truth_labels = held.labels[: len(truth)]
    methods, _ = sr_methods(sr_net.to(device), sr_schedule(sr_config), truth, n_samples=n_sr,
                            n_steps=n_steps, progress=False)
    rows = {r.method: r for r in sr_rows(methods, truth.cpu(), truth_labels, classifier)}

    table = []
    for name, pts in curves.items():
        mse = [p["mse_to_guide"] for p in pts]
        fd = [p["fd"] for p in pts]
        mid = pts[len(pts) // 2]
        table.append({"measure": f"SDEdit {name}: MSE to guide rises with strength",
                      "value": "yes" if _monotone(mse, True) else "no",
                      "goal": "monotone over the strength grid"})
        table.append({"measure": f"SDEdit {name}: FD at s = 0 / {mid['strength']:.1f} / 1",
                      "value": f"{fd[0]:.1f} / {mid['fd']:.1f} / {fd[-1]:.1f} "
                               f"(floor {pts[0]['fd_floor']:.1f})",
                      "goal": "falls towards the floor as s grows"})
    rel = curves["relabel"]
    table.append({"measure": "SDEdit relabel: share classified as the new class, s = 0.5 / 1",
                  "value": f"{rel[len(rel) // 2]['target_accuracy']:.0%} / "
                           f"{rel[-1]['target_accuracy']:.0%}", "goal": "rises with strength"})
    bic, sample = rows["bicubic"], rows["SR sample"]
    mean_row = rows[f"SR mean of {n_sr}"]
    table += [
        {"measure": "SR 4x4->8x8 MSE: bicubic / SR sample / SR mean",
         "value": f"{bic.mse:.4f} / {sample.mse:.4f} / {mean_row.mse:.4f}",
         "goal": "measured (a sample may exceed bicubic: perception-distortion)"},
        {"measure": "SR PSNR dB: bicubic / SR sample / SR mean",
         "value": f"{bic.psnr:.2f} / {sample.psnr:.2f} / {mean_row.psnr:.2f}", "goal": "measured"},
        {"measure": "SR digits FD: bicubic / SR sample (floor)",
         "value": f"{bic.fd:.1f} / {sample.fd:.1f} ({sample.fd_floor:.1f})",
         "goal": "SR sample below bicubic"},
        {"measure": "SR classifier accuracy: bicubic / SR sample",
         "value": f"{bic.accuracy:.1%} / {sample.accuracy:.1%}", "goal": "SR >= bicubic"},
        {"measure": "SR consistency MSE(downsample(out), low): bicubic / SR sample",
         "value": f"{bic.consistency:.5f} / {sample.consistency:.5f}", "goal": "small"},
        {"measure": "SR model cold training time",
         "value": f"{sr_info.seconds:.0f} s ({'stored' if sr_info.from_cache else 'now'})",
         "goal": "<= 90 s on 2 quiet cores"},
    ]
    return {"table": table, "sdedit": curves, "sr": {k: asdict(v) for k, v in rows.items()},
            "strengths": strengths, "n_guides": n_guides, "n_steps": n_steps,
            "sr_train_seconds": sr_info.seconds, "seconds": time.perf_counter() - start}
