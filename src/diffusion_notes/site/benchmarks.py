"""The page "Benchmarks", generated at build time from ``bench/results/*.json``.

The numbers on the page are read from the files the benchmark scripts write, so the page
cannot drift from the last run; a missing file is shown as "not run yet" with the command that
produces it, never as a made-up number.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _load(results: Path, name: str) -> dict[str, Any] | None:
    path = results / f"{name}.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); rerun `python bench/{name}.py`") from exc


def _missing(name: str) -> list[str]:
    return [f"Not run yet: `python bench/{name}.py` writes `bench/results/{name}.json`.", ""]


def _digits(d: dict[str, Any]) -> list[str]:
    train, sampling, clf = d["train"], d["sampling"], d["classifier"]
    fractions = d["predicted_labels"]["fractions"]
    lines = [
        f"Machine: {d['machine']['device']}, {d['machine']['cpu_count']} cores, torch "
        f"{d['machine']['torch']}; run {d['date'][:10]}. Model: UNet, "
        f"{d['config']['steps']} steps of batch {d['config']['batch_size']}.",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| training | {train['steps']} steps in {train['seconds']:.1f} s "
        f"({train['it_per_s']:.1f} it/s) |",
        f"| sampling, DDPM-{sampling['steps']} | {sampling['n_samples']} images in "
        f"{sampling['seconds']:.1f} s |",
        f"| digits FD of the samples | {d['digits_fd']:.2f} |",
        f"| real-data floor (real vs real, same sizes) | {d['real_data_floor']:.2f} |",
        f"| precision / recall | {d['precision']:.3f} / {d['recall']:.3f} |",
        f"| classifier held-out accuracy | {clf['held_out_accuracy']:.2%} "
        f"({clf['n_held_out']} digits) |",
        f"| entropy of predicted labels on samples | "
        f"{d['predicted_labels']['entropy_bits']:.3f} bits (balanced: "
        f"{d['predicted_labels']['balanced_entropy_bits']:.3f}) |",
        "",
        "Predicted label shares on the samples: "
        + ", ".join(f"{k}: {f:.1%}" for k, f in enumerate(fractions)) + ".",
        "",
    ]
    if d["digits_fd"] < d["real_data_floor"]:
        lines += [
            "A score below the floor does not mean the samples beat real data: the reference "
            "half is part of the training set, so samples that sit near training digits score "
            "well. No held-out memorisation check has been run.",
            "",
        ]
    return lines


def _samplers(d: dict[str, Any]) -> list[str]:
    lines = ["| sampler | steps | ours (µs/step) | diffusers (µs/step) | ratio |",
             "| --- | --- | --- | --- | --- |"]
    for row in d["overhead"]:
        lines.append(f"| {row['sampler']} | {row['steps']} | {row['ours_us_per_step']:.1f} | "
                     f"{row['diffusers_us_per_step']:.1f} | {row['ratio']:.2f} |")
    lines += ["", "Quality against steps is on the [samplers benchmark]"
              "(fast-sampling/samplers-benchmark.md) page.", ""]
    return lines


def _ring_table(rows: list[dict[str, Any]], target: str, goals: dict[str, float]) -> list[str]:
    rows = [r for r in rows if r["target"] == target]
    budgets = sorted({r["nfe"] for r in rows})
    lines = ["| method | " + " | ".join(f"NFE {b}" for b in budgets) + " |",
             "| --- |" + " --- |" * len(budgets)]
    if target == "ring" and goals:
        lines.append("| **goal** | " + " | ".join(
            f"≤ {goals[str(b)]}" if str(b) in goals else "" for b in budgets) + " |")
    for method in dict.fromkeys(r["method"] for r in rows):
        cells = {r["nfe"]: r["ratio"] for r in rows if r["method"] == method}
        lines.append(f"| {method} | " + " | ".join(
            (f"{cells[b]:.2f}" if cells[b] < 1e6 else "failed") if b in cells else ""
            for b in budgets) + " |")
    return lines + [""]


def _run_line(machine: dict[str, Any] | None) -> str:
    """' on N cores (load average L at the end), torch V' for one part's run, or ''."""
    if not machine:
        return ""
    load = machine.get("load_average_1min")
    return (f" on {machine.get('cpu_count')} cores"
            + (f" (load average {load:.1f} at the end)" if load is not None else "")
            + f", torch {machine.get('torch')}")


def _lcm(d: dict[str, Any]) -> list[str]:
    """bench/lcm.py: consistency students against their teacher's DDIM, per-seed FD."""
    lines = [
        f"Run {d['date'][:16]} UTC on {d.get('device', 'cpu')}, {d.get('torch_threads')} torch "
        f"threads (load average {d.get('load_average_before', float('nan')):.1f} at the start); "
        f"teacher `digits_cond`, guidance scale w = {d['rows'][0]['w']:g}, "
        f"{d['n_samples']} class-conditional samples per seed, {d['seeds']} seeds (the FD is "
        "their mean), against the 359 held-out digits. \"Student\": LCM's recipe with the "
        "trajectory target on part of every batch "
        f"(`trajectory_fraction` {d['distill_config'].get('trajectory_fraction', 0):g}); "
        "\"LCM, x0 target\": LCM's loss alone; TCD: the strategic stochastic sampler at "
        f"gamma {d.get('gamma', float('nan')):g}; the ideal student: the teacher's own ODE in "
        "the student's place. Notes: [LCM](fast-sampling/lcm.md).",
        "",
        "| sampler | steps | NFE | FD | FD per seed | floor | precision | recall | "
        "class accuracy | s / 64 samples |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in d["rows"]:
        per_seed = " / ".join(f"{v:.2f}" for v in r["fd_seeds"])
        lines.append(
            f"| {r['sampler']} | {r['steps']} | {r['network_evaluations']} | {r['fd']:.2f} | "
            f"{per_seed} | {r['floor']:.2f} | {r['precision']:.3f} | {r['recall']:.3f} | "
            f"{r['class_accuracy']:.3f} | {r['seconds_per_64']:.3f} |")
    by = {(r["sampler"], r["steps"]): r["fd"] for r in d["rows"]}
    ddim = d["rows"][0]["sampler"]
    goals = d.get("goals", {})
    lines += ["", "Goals, on the means (the student with TCD's sampler):", ""]
    for key, n, m in (("lcm2_no_worse_than_ddim10", 2, 10), ("lcm4_no_worse_than_ddim20", 4, 20)):
        if key in goals and ("TCD", n) in by:
            lines.append(f"- {n} steps no worse than DDIM at {m}: "
                         f"{'met' if goals[key] else 'not met'} ({by[('TCD', n)]:.2f} against "
                         f"{by[(ddim, m)]:.2f})")
    lines.append("")
    return lines


def _lcm_more_seeds(results: Path) -> list[str]:
    """The same benchmark with more seeds (``bench/lcm.py --seeds 10``), if it was run."""
    d = _load(results, "lcm-10seeds")
    if d is None:
        return []
    lines = [f"The same rows on {d['seeds']} seeds (`bench/lcm.py --seeds {d['seeds']} --out "
             f"bench/results/lcm-10seeds.json`, run {d['date'][:16]} UTC), mean FD:", "",
             "| sampler | 1 step | 2 steps | 4 steps | 10 steps | 20 steps |",
             "| --- | --- | --- | --- | --- | --- |"]
    table: dict[str, dict[int, float]] = {}
    for r in d["rows"]:
        table.setdefault(r["sampler"], {})[r["steps"]] = r["fd"]
    for sampler, fds in table.items():
        cells = [f"{fds[n]:.2f}" if n in fds else "" for n in (1, 2, 4, 10, 20)]
        lines.append(f"| {sampler} | " + " | ".join(cells) + " |")
    goals = d.get("goals", {})
    met = [k for k, v in goals.items() if v]
    lines += ["", f"Goals met on these means: {len(met)} of {len(goals)}.", ""]
    return lines


def _ddim_ratio(d: dict[str, Any]) -> list[str]:
    """bench/ddim_ratio.py: DDIM-50 against DDPM-1000 on several seeds."""
    a, f = d["all_seeds"], d["first_three_seeds"]
    lines = [
        f"Run {d['date'][:16]} UTC{_run_line(d.get('machine'))}; {d['n_samples']} samples per "
        "seed from `digits_cond`, held-out digits FD. The one-seed digits table above draws "
        "seed 0 only, DDIM-50's worst, so its ratio reads higher. Note: "
        "[DDIM](fast-sampling/ddim.md#skipping-steps).",
        "",
        "| seed | DDIM-50 FD | DDPM-1000 FD | ratio |",
        "| --- | --- | --- | --- |",
    ]
    for r in d["rows"]:
        lines.append(f"| {r['seed']} | {r['ddim50']:.2f} | {r['ddpm1000']:.2f} | "
                     f"{r['ddim50'] / r['ddpm1000']:.2f} |")
    goal = d["goal_ratio"]
    lines += [
        "",
        f"- Mean over {a['seeds']} seeds: DDIM-50 {a['ddim50_mean']:.2f}, DDPM-1000 "
        f"{a['ddpm1000_mean']:.2f}, ratio {a['ratio_of_means']:.2f} (goal ≤ {goal}: "
        f"{'met' if a['ratio_of_means'] <= goal else 'not met'}); per-seed ratio SD "
        f"{a['per_seed_ratio_sd']:.2f}. First {f['seeds']} seeds: {f['ratio_of_means']:.2f}.",
        f"- DDIM-50 is {d['speedup']:.1f} times faster than DDPM-1000 (goal ≥ 15).",
        "",
    ]
    return lines


def _fast_sampling(d: dict[str, Any]) -> list[str]:
    rs = d.get("ring_settings", d.get("settings", {}))
    ds = d.get("digits_settings", rs)
    lines = [
        f"Results file written {d['date'][:16]} UTC. The ring and the digits parts may come from"
        " separate runs of the same script; each says where it ran.",
        "",
        "![Quality against network evaluations on the ring, a second mixture and digits]"
        "(fast-sampling/fast_sampling.png)",
        "",
    ]
    if d.get("ring"):
        lines += [
            f"**Ring, exact score**{_run_line(d.get('ring_machine', d.get('machine')))}: "
            "8 modes, radius 2, variance 0.02; linear betas, T = 1000. "
            f"Sliced Wasserstein distance (256 directions, {rs.get('ring_n')} samples) divided "
            f"by the floor {d['ring_floor']:.4f} (two target samples); {rs.get('dtype', '')}."
            + ("" if d.get("ring_complete", True) else " Partial run: not every method finished."),
            "",
            *_ring_table(d["ring"], "ring", d.get("goals", {})),
            f"**Second mixture** (seven elongated modes, unequal weights), same measure, "
            f"{rs.get('seven_n', rs.get('ring_n'))} samples, floor {d['seven_floor']:.4f}:",
            "",
            *_ring_table(d["ring"], "seven", {}),
        ]
    if d.get("digits"):
        lines += [
            f"**Digits**{_run_line(d.get('digits_machine', d.get('machine')))}, measured in one "
            f"run: model `{ds.get('digits_model', 'digits_cond')}`, "
            f"{ds.get('digits_n')} class-conditional samples (labels 0-9 in turn, one seed), "
            "digits FD against the 359 held-out digits with the size-matched floor:",
            "",
            "| method | steps | FD | floor | precision | recall | class accuracy | s / 64 samples |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in d["digits"]:
            lines.append(
                f"| {r['method']} | {r['steps']} | {r['fd']:.2f} | {r['floor']:.2f} | "
                f"{r['precision']:.3f} | {r['recall']:.3f} | {r['class_accuracy']:.3f} | "
                f"{r['seconds_per_64']:.3f} |")
        lines += ["", "One seed's FD moves by 1 to 3 between seeds, as much as the gaps the "
                  "digits goals ask about, so those goals are judged on several seeds in the "
                  "next two sections ([consistency students](#consistency-students), "
                  "[DDIM-50 against DDPM-1000](#ddim-50-against-ddpm-1000-on-ten-seeds)).", ""]
    return lines


def _site(d: dict[str, Any]) -> list[str]:
    mode = "smoke settings" if d.get("smoke") else "full settings"
    return [
        "| build | seconds | goal |",
        "| --- | --- | --- |",
        f"| cold (every lab executed, every model trained, {mode}) | {d['cold_s']:.1f} | "
        f"≤ {d['goals']['cold_s']} |",
        f"| cached rebuild | {d['cached_s']:.1f} | ≤ {d['goals']['cached_s']} |",
        "",
        f"Machine: {d['machine']}.",
        "",
    ]


def _papers(d: dict[str, Any]) -> list[str]:
    imp, browser = d["import"], d.get("browser", {})
    lines = [
        "| measure | value | goal |",
        "| --- | --- | --- |",
        f"| import of the 2026-06 list (median) | {imp['import_2026_06_s_median']:.2f} s | "
        f"< {imp['goal_s']:.0f} s |",
        f"| render of the index page ({d['render']['entries']} entries) | "
        f"{d['render']['render_index_s_median']:.2f} s | |",
    ]
    if browser:
        lines.append(f"| slowest filter change in Chromium | {browser['worst_ms']:.1f} ms | "
                     f"< {browser['goal_ms']:.0f} ms |")
    return lines + [""]


def _guidance(d: dict[str, Any]) -> list[str]:
    m = d["machine"]
    smp = d["sampler"]
    lines = [
        f"Machine: {m['device']}, {m['cpu_count']} cores (load average {m['load_average_at_start']:.1f} "
        f"at start), torch {m['torch']}; run {d['date'][:10]}. DDIM-{smp['steps']} "
        f"(eta {smp['eta']:g}, x0 clipped), {d['n_per_class']} samples per class, scored by "
        "the held-out digit classifier against the 359 held-out digits.",
        "",
        "![Digits FD against class accuracy, precision/recall and diversity per guidance scale]"
        "(guidance/guidance-bench.png)",
        "",
        "| method | scale | interval (sigma) | accuracy | FD | floor | precision | recall | "
        "diversity | s / 64 samples |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in d["rows"]:
        iv = "all" if r["interval"] is None else f"({r['interval'][0]:g}, {r['interval'][1]:g}]"
        lines.append(f"| {r['method']} | {r['scale']:g} | {iv} | {r['accuracy']:.1%} | "
                     f"{r['fd']:.2f} | {r['floor']:.2f} | {r['precision']:.2f} | "
                     f"{r['recall']:.2f} | {r['diversity']:.2f} | {r['seconds_per_64']:.2f} |")
    g = d["goals"]
    cfg = "met" if g["cfg"]["met"] else "missed"
    cg = "met" if g["cg"]["met"] else "missed"
    lines += [
        "",
        f"Goals: CFG {g['cfg']['goal']}: **{cfg}** (unguided FD {g['cfg']['unguided_fd']:.2f}). "
        f"Classifier guidance {g['cg']['goal']}: **{cg}** (best {g['cg']['best_accuracy']:.1%} "
        f"at scale {g['cg']['best_scale']:g}). What the curves mean: "
        "[What guidance really does](guidance/what-guidance-does.md).",
        "",
    ]
    return lines


def _weights_table(m: dict[str, Any], base: dict[str, Any] | None) -> list[str]:
    head = "| page | KB fetched | of which MathJax | loads MathJax |"
    rule = "| --- | --- | --- | --- |"
    if base:
        head = "| page | KB fetched | before | of which MathJax | loads MathJax |"
        rule = "| --- | --- | --- | --- | --- |"
    lines = [head, rule]
    for name, page in m["pages"].items():
        mj = page["by_kind_kb"].get("mathjax", 0.0)
        before = ""
        if base and name in base["pages"]:
            before = f" {base['pages'][name]['total_kb']:.0f} |"
        lines.append(f"| {name} | {page['total_kb']:.0f} |{before} {mj:.0f} | "
                     f"{'yes' if page['mathjax'] else 'no'} |")
    return lines


def _site_weight(d: dict[str, Any]) -> list[str]:
    cur, base, machine = d["current"], d.get("baseline"), d["machine"]
    search = cur["first_search_result_ms"]
    lines = _weights_table(cur, base)
    lines += [
        "",
        f"Time to the first search result (“{search['query']}” typed as soon as the home page "
        f"has loaded, fresh browser): median {search['median']} ms of "
        f"{', '.join(str(r) for r in search['runs'])} ms"
        + (f" (before: {base['first_search_result_ms']['median']} ms)" if base else "")
        + f". Search index: {cur['search_index_kb']:.0f} KB"
        + (f" (before: {base['search_index_kb']:.0f} KB)" if base else "") + ".",
        "",
        f"Measured {d['date'][:16].replace('T', ' ')} UTC in headless Chromium against "
        f"{machine['server']}, on {machine['cores']} CPU cores with a load average of "
        f"{machine['load_before']:.1f} before and {machine['load_after']:.1f} after (a load "
        f"above {machine['cores']} means other work shared the machine, which slows the "
        "search timing; the weights do not depend on it).",
        "",
    ]
    return lines


def _video(d: dict[str, Any]) -> list[str]:
    tr, u, f = d["train"], d["unconditional"], d["from_first_frame"]
    lines = [
        f"Machine: {d['machine']['device']}, {d['machine']['cpu_count']} cores, torch "
        f"{d['machine']['torch']}; run {d['date'][:10]}. {d['sampling']['n_clips']} clips of "
        f"{d['sampling']['frames']} frames per model, DDIM {d['sampling']['steps']} steps, same "
        f"noise for both. Training: image model {tr['image_seconds']:.0f} s, video model "
        f"{tr['video_seconds']:.0f} s ({tr['trainable_parameters']:,} of "
        f"{tr['total_parameters']:,} parameters trained).",
        "",
        "| generation | model | class kept | motion error (px/frame) | seconds per clip |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, group in (("unconditional", u), ("from a first frame", f)):
        for name, key in (("video model", "video"), ("frame by frame", "frame_by_frame")):
            s = group[key]
            sec = f"{s['seconds_per_clip']:.3f}" if "seconds_per_clip" in s else "-"
            lines.append(f"| {label} | {name} | {s['class_consistency']:.1%} | "
                         f"{s['motion_error_px']:.2f} | {sec} |")
    g = d["goals"]
    lines += ["", f"Goals: class kept >= {g['class_consistency_at_least']:.0%}; motion error "
              f"ratio video / frame by frame {g['motion_error_ratio']:.2f} "
              f"(goal <= {g['motion_error_ratio_at_most']})."]
    return lines + [""]


def _video_variants(results: Path) -> list[str]:
    """Rows for ``bench/results/video-*.json``: variants of the lab's video model, each with the
    goals (class kept in >= 90 % of frames, motion error at most half the baseline's) judged
    on its unconditional clips."""
    paths = sorted(p for p in results.glob("video-*.json") if not p.stem.endswith("-smoke"))
    if not paths:
        return []
    lines = [
        "Variants of the lab's model (`bench/video.py` with the options named; same seeds and "
        "measures as above). Class kept and motion error are those of unconditional clips, "
        "video / frame by frame; *from frame 0* is the class kept in the 7 frames generated "
        "after a given first frame.",
        "",
        "| variant | run | class kept | motion error (px/frame) | from frame 0 | "
        "training (s) | goals: class, motion |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for path in paths:
        d = _load(results, path.stem)
        assert d is not None
        v, b = d["unconditional"]["video"], d["unconditional"]["frame_by_frame"]
        i2v = d["from_first_frame"]["video"]
        opts = ", ".join(f"`{k}={val}`" for k, val in d.get("variant", {}).items()) or path.stem
        sampling = d.get("sampling", {})
        eta, n_steps = sampling.get("eta", 0.0), sampling.get("steps", 25)
        n_clips = sampling.get("n_clips", 64)
        if eta or n_steps != 25:  # the same model sampled otherwise than the lab does
            opts += f"; sampled by DDIM with {n_steps} steps, eta {eta:g}"
        if n_clips != 64:  # measured on another number of clips than the lab's 64
            opts += f"; {n_clips} clips"
        g = d["goals"]
        class_met = v["class_consistency"] >= g["class_consistency_at_least"]
        motion_met = v["motion_error_px"] <= g["motion_error_ratio_at_most"] * b["motion_error_px"]
        lines.append(f"| {opts} | {d['date'][:10]} | {v['class_consistency']:.1%} / "
                     f"{b['class_consistency']:.1%} | {v['motion_error_px']:.2f} / "
                     f"{b['motion_error_px']:.2f} | {i2v['class_consistency']:.1%} | "
                     f"{d['train']['video_seconds']:.0f} | "
                     f"{'met' if class_met else 'not met'}, {'met' if motion_met else 'not met'} |")
    return lines + [""]


def _map(d: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for name, part in d["parts"].items():
        m = part["machine"]
        lines += [
            f"**{part['title']}** (`--part {name}`): run {part['date'][:10]} on {m['device']}, "
            f"{m['cpu_count']} cores (load average {m['load_average_at_start']:.1f} at start), "
            f"torch {m['torch']}.",
            "",
            "| measure | value | goal |",
            "| --- | --- | --- |",
            *(f"| {r['measure']} | {r['value']} | {r['goal']} |" for r in part["table"]),
            "",
        ]
    return lines


def render_benchmarks_page(results: Path) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Numbers measured on this project's machines (2 CPU cores unless said otherwise), read "
        "at build time from `bench/results/`. Rerun a benchmark with the command named in its "
        "section; the page follows. The machine is shared: a benchmark run while other work "
        "used the cores reports slower times than a quiet machine gives, so each section names "
        "its machine, and where it was recorded, the load. Each lab page states its own "
        "execution time with the cores and load of the build that ran it.",
        "",
    ]
    sections = [
        ("DDPM on 8x8 digits", "digits", _digits),
        ("Fast sampling", "fast_sampling", _fast_sampling),
        ("Consistency students", "lcm", _lcm),
        ("DDIM-50 against DDPM-1000 on ten seeds", "ddim_ratio", _ddim_ratio),
        ("Sampler overhead against diffusers", "samplers", _samplers),
        ("Guidance on digits", "guidance", _guidance),
        ("The map of image generation in miniature", "map", _map),
        ("Video diffusion in miniature", "video", _video),
        ("Site build", "site_build", _site),
        ("Paper index", "papers", _papers),
        ("Site weight and search", "site_weight", _site_weight),
    ]
    for title, name, render in sections:
        lines += [f"## {title}", "", f"`python bench/{name}.py`", ""]
        data = _load(results, name)
        lines += render(data) if data is not None else _missing(name)
        if name == "video":
            lines += _video_variants(results)
        if name == "lcm" and data is not None:
            lines += _lcm_more_seeds(results)
    return "\n".join(lines)
