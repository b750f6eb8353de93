"""Map part ``edit``: inpainting (replacement against RePaint) and the 3 -> 8 inversion edit.

Run through ``bench/map.py --part edit``. The settings are the editing lab's: the shared
``digits_cond`` model (null label for inpainting), the first 150 held-out digits under three masks,
50 DDPM steps with U = 1 (replacement), 3 and 10; the held-out 3s inverted with 50 DDIM steps
to three levels and edited to 8 (and once with CFG 3), with sampled 8s as the style baseline.
"""

from __future__ import annotations

import torch

from diffusion_notes import get_device, pick
from diffusion_notes.cache import get_or_train
from diffusion_notes.data.digits import digits_split
from diffusion_notes.denoiser import Denoiser
from diffusion_notes.editing_eval import MASK_NAMES, PROPERTIES, score_edit, score_inpainting
from diffusion_notes.metrics import get_digit_classifier
from diffusion_notes.samplers import sample_ddim
from diffusion_notes.timesteps import timestep_pairs
from diffusion_notes.train import make_schedule_for, preset

TITLE = "Image editing: inpainting (replacement vs RePaint) and the 3 -> 8 inversion edit"


def run(smoke: bool) -> dict:
    device = get_device()
    config = preset("digits_cond", **pick({}, {"steps": 20, "timesteps": 100, "batch_size": 32}))
    schedule = make_schedule_for(config)
    n_digits, n_steps = pick(150, 16), pick(50, 4)
    resample = pick((1, 3, 10), (1, 2))
    pairs = timestep_pairs(config.timesteps, n_steps)
    model, _ = get_or_train(config, device=device)
    classifier, _ = get_digit_classifier(device=device)
    den = Denoiser(model, schedule)
    _, held = digits_split()
    x, y = held.images[:n_digits], held.labels[:n_digits]

    table, inpainting = [], []
    for u in resample:
        rows = [score_inpainting(den, classifier, x, y, m, pairs, resample=u, seed=0)[0]
                for m in MASK_NAMES]
        inpainting += [vars(s) for s in rows]
        name = rows[0].method
        table += [
            {"measure": f"{name}: largest known-pixel change (3 masks)",
             "value": max(s.known_change for s in rows), "goal": "0 (bit for bit)"},
            {"measure": f"{name}: original label recognised (mean of 3 masks)",
             "value": f"{sum(s.accuracy for s in rows) / 3:.1%}", "goal": "higher"},
            {"measure": f"{name}: FD to the originals (mean of 3 masks)",
             "value": round(sum(s.fd for s in rows) / 3, 2), "goal": "lower"},
            {"measure": f"{name}: |boundary gap - originals'| (mean of 3 masks)",
             "value": round(sum(abs(s.boundary_gap - s.boundary_gap_real) for s in rows) / 3, 4),
             "goal": "lower"},
            {"measure": f"{name}: ms per digit ({rows[0].evaluations} network calls)",
             "value": round(sum(s.seconds for s in rows) / 3 / len(x) * 1000, 2),
             "goal": "report"},
        ]

    threes = held.images[held.labels == 3][:n_digits]
    g = torch.Generator().manual_seed(1)
    eights = sample_ddim(den.with_cond(torch.full((len(threes),), 8, device=device)),
                         torch.randn(threes.shape, generator=g).to(device), pairs,
                         progress=False).cpu()
    edits = []
    T = config.timesteps
    for lv, scale in ((None, 1.0), (int(0.6 * T), 1.0), (int(0.4 * T), 1.0), (None, 3.0)):
        e, _ = score_edit(den, classifier, threes, 3, 8, pairs, eights, t_edit=lv,
                          guidance_scale=scale, null_cond=10)
        at = f"t_edit={e.t_edit}" + (f", CFG {scale:g}" if scale != 1.0 else "")
        edits.append({**vars(e), "ratios": {p: e.ratio(p) for p in PROPERTIES}})
        table += [
            {"measure": f"edit 3 -> 8 from {at}: classified as 8",
             "value": f"{e.class_change:.1%}", "goal": "report"},
            {"measure": f"edit from {at}: round-trip RMS (label 3)",
             "value": round(e.recon_rms, 4), "goal": "small"},
            {"measure": f"edit from {at}: style gap / sampled-8 baseline "
                        "(thickness, slant, size)",
             "value": ", ".join(f"{e.ratio(p):.2f}" for p in PROPERTIES),
             "goal": "lower (< 1)"},
        ]
    return {"table": table, "inpainting": inpainting, "edits": edits,
            "settings": {"n_digits": len(x), "n_threes": len(threes), "n_steps": n_steps,
                         "resample": list(resample)}}
