"""Map part t2i: does the text-to-image miniature follow its captions?

The latent text-to-image model of :mod:`diffusion_notes.text2image` (cached; trained when
missing), sampled with classifier-free guidance on the caption and 20 DDIM steps:

* caption following: the held-out digit classifier reads the caption's digit, on the captions
  of the 359 held-out digits (chance 0.1);
* per property word: same-seed pairs that differ only in that word ("a thin three" / "a thick
  three", for every digit), the share of pairs where the word moves the measured property its
  way, and each word's mean measured property against the training terciles;
* the digit word swapped with the same seed; training and sampling seconds.

    .venv/bin/python bench/map.py --part t2i
"""

from __future__ import annotations

import time
from dataclasses import replace

import diffusion_notes.data.latent as latent
from diffusion_notes import get_device
from diffusion_notes.data.captions import caption_digits
from diffusion_notes.data.digits import digits_split
from diffusion_notes.metrics import get_digit_classifier
from diffusion_notes.models.autoencoder import get_autoencoder
from diffusion_notes.text2image import TextToImageConfig, get_text_model, schedule_for
from diffusion_notes.text2image_eval import caption_accuracy, digit_swap, word_effect

TITLE = "Text-to-image in miniature: caption following (t2i)"
SCALE, N_STEPS = 3.0, 20


def run(smoke: bool) -> dict:
    if smoke:
        latent.LATENT_AUTOENCODER = replace(latent.LATENT_AUTOENCODER, steps=20, width=8)
    config = (TextToImageConfig(steps=20, batch_size=32, width=8, text_dim=16) if smoke
              else TextToImageConfig())
    n_seeds = 1 if smoke else 16
    device = get_device()
    vae = get_autoencoder(latent.LATENT_AUTOENCODER, progress=False)[0]
    classifier, cinfo = get_digit_classifier(device=device)
    start = time.perf_counter()
    model, info = get_text_model(config, device=device, progress=False)
    load_seconds = time.perf_counter() - start
    schedule = schedule_for(config)
    train, held = digits_split()
    caps = caption_digits(held.images, held.labels, info.terciles)
    n = 10 if smoke else len(caps)
    start = time.perf_counter()
    acc, _ = caption_accuracy(model, schedule, vae, caps[:n], held.labels[:n], classifier,
                              scale=SCALE, n_steps=N_STEPS)
    sample_seconds = time.perf_counter() - start
    acc_unguided, _ = caption_accuracy(model, schedule, vae, caps[:n], held.labels[:n],
                                       classifier, scale=1.0, n_steps=N_STEPS)
    bounds = {"thickness": info.terciles.thickness, "size": info.terciles.size,
              "slant": info.terciles.slant}
    rows = [
        {"measure": f"caption's digit read by the classifier (CFG scale {SCALE:g}, {n} held-out "
                    "captions)", "value": round(acc, 3), "goal": ">= 0.90 (chance 0.10)"},
        {"measure": "the same without guidance (scale 1)", "value": round(acc_unguided, 3),
         "goal": "below the guided value"},
    ]
    effects = {}
    for prop in ("thickness", "size", "slant"):
        e = word_effect(model, schedule, vae, prop, boundaries=bounds[prop], n_seeds=n_seeds,
                        scale=SCALE, n_steps=N_STEPS)[0]
        effects[prop] = {"means": e.means, "agreement": e.agreement, "n_pairs": e.n_pairs,
                         "terciles": list(e.boundaries)}
        lo, hi = e.boundaries
        rows.append({
            "measure": f"'{e.low}' -> '{e.high}': same-seed pairs where {prop} moves the word's "
                       f"way ({e.n_pairs})", "value": round(e.agreement, 3), "goal": ">= 0.90"})
        rows.append({
            "measure": f"mean {prop}: '{e.low}' / no word / '{e.high}' (training terciles "
                       f"{lo:.3f}, {hi:.3f})",
            "value": " / ".join(f"{e.means[w]:.3f}" for w in (e.low, "", e.high)),
            "goal": "low word below the first tercile, high word above the second"})
    swap = digit_swap(model, schedule, vae, classifier, n_seeds=n_seeds, scale=SCALE,
                      n_steps=N_STEPS)[0]
    rows += [
        {"measure": f"digit word swapped with the same seed ({swap.n_pairs} pairs): new digit "
                    "read", "value": round(swap.accuracy_after, 3), "goal": ">= 0.90"},
        {"measure": "training seconds (cold, measured when trained)",
         "value": round(info.seconds, 1), "goal": "<= 120 on 2 quiet cores"},
        {"measure": f"sampling seconds for {n} captions (DDIM-{N_STEPS} with CFG, decoded)",
         "value": round(sample_seconds, 2), "goal": "-"},
    ]
    return {"table": rows, "scale": SCALE, "n_steps": N_STEPS, "accuracy": acc,
            "accuracy_unguided": acc_unguided, "effects": effects,
            "digit_swap": {"before": swap.accuracy_before, "after": swap.accuracy_after},
            "train_seconds": info.seconds, "model_from_cache": info.from_cache,
            "load_seconds": load_seconds, "sample_seconds": sample_seconds,
            "classifier_accuracy": cinfo.accuracy, "config": config.__dict__}
