"""Site build time: cold (every lab executed, full settings) and cached rebuild.

    python bench/site_build.py            # full settings, as `make site` builds
    python bench/site_build.py --smoke    # labs in smoke mode (fast)

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="labs in smoke mode")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        cold = build(tmp_path / "site", tmp_path / "labs", args.smoke)
        print(f"cold build (labs executed{', smoke' if args.smoke else ''}): {cold:.1f} s")
        cached = build(tmp_path / "site", tmp_path / "labs", args.smoke)
        print(f"cached rebuild: {cached:.1f} s")
    result = {"cold_s": round(cold, 1), "cached_s": round(cached, 1), "smoke": args.smoke,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
              "goals": {"cold_s": 900, "cached_s": 10}}
    out = REPO / "bench" / "results" / "site_build.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
