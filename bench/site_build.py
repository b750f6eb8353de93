"""Site build time: cold (every lab executed, full settings) and cached rebuild.

    python bench/site_build.py            # full settings, as `make site` builds
    python bench/site_build.py --smoke    # labs in smoke mode (fast)
    python bench/site_build.py --keep DIR # also keep the executed notebooks in DIR

Writes bench/results/site_build.json and prints both times. Goals: cached rebuild <= 10 s;
cold build <= 15 min on 2 cores. The cold build uses a scratch lab cache and a scratch
trained-model cache, so every model is trained as on a fresh clone, and the project's own
.cache/ is left as it was.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def build(site_dir: Path, cache_dir: Path, smoke: bool) -> float:
    env = dict(os.environ, DIFFUSION_NOTES_SMOKE="1" if smoke else "0", NO_MKDOCS_2_WARNING="1",
               DIFFUSION_NOTES_LABS_CACHE=str(cache_dir),
               DIFFUSION_NOTES_CACHE=str(cache_dir / "models-root"))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(REPO / "mkdocs.yml"),
                    "-d", str(site_dir)], check=True, env=env, cwd=REPO)
    return time.perf_counter() - start


def lab_seconds(cache_dir: Path) -> dict[str, float]:
    """Each executed lab's own run time, as the executor stored it in the notebook."""
    out: dict[str, float] = {}
    for nb in cache_dir.rglob("*.ipynb"):
        meta = json.loads(nb.read_text(encoding="utf-8")).get("metadata", {})
        info = meta.get("diffusion_notes", {})
        if "seconds" in info:
            out[info.get("source", nb.name)] = float(info["seconds"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="labs in smoke mode")
    parser.add_argument("--keep", type=Path, default=None,
                        help="copy the executed notebooks here (to read them against the prose)")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        cold = build(tmp_path / "site", tmp_path / "labs", args.smoke)
        load_cold = os.getloadavg()[0]
        print(f"cold build (labs executed{', smoke' if args.smoke else ''}): {cold:.1f} s")
        cached = build(tmp_path / "site", tmp_path / "labs", args.smoke)
        print(f"cached rebuild: {cached:.1f} s")
        labs = lab_seconds(tmp_path / "labs")
        for name, sec in sorted(labs.items(), key=lambda kv: -kv[1]):
            print(f"  {name}: {sec:.1f} s")
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            for nb in (tmp_path / "labs").rglob("*.ipynb"):
                shutil.copy(nb, args.keep / nb.name)
    result = {"cold_s": round(cold, 1), "cached_s": round(cached, 1), "smoke": args.smoke,
              "labs_s": labs,
              # labs executed at once (DIFFUSION_NOTES_LAB_JOBS, else the plugin's automatic
              # choice: two on two cores, one torch thread each)
              "lab_jobs": os.environ.get("DIFFUSION_NOTES_LAB_JOBS") or "auto",
              # 1-minute load average when the build began and when the cold build ended: a
              # figure taken beside other work (load well above the 2 cores) is not a quiet one
              "load_average": {"start": round(load_start, 2), "after_cold": round(load_cold, 2)},
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
              "goals": {"cold_s": 900, "cached_s": 10}}
    out = REPO / "bench" / "results" / "site_build.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
