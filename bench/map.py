"""Benchmark: the map of image generation in miniature (issue 14), one part per branch.

    .venv/bin/python bench/map.py                 # every part, full settings
    .venv/bin/python bench/map.py --part i2i      # one part; the others' results are kept
    DIFFUSION_NOTES_SMOKE=1 .venv/bin/python bench/map.py   # seconds; writes map-smoke.json

Each branch's measurements live in ``bench/map_<part>.py`` (``t2i``: caption following;
``i2i``: the SDEdit trade-off and super-resolution against bicubic; ``edit``: inpainting and
the inversion edit). Such a module defines ``TITLE`` and ``run(smoke: bool) -> dict``; the dict
holds a ``"table"`` of ``{"measure", "value", "goal"}`` rows (strings, shown on the
Benchmarks page) and whatever raw numbers the part wants to keep. ``bench/results/map.json``
collects the parts under their names, each with its own date and machine.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

from _machine import machine_info

from diffusion_notes import get_device, is_smoke
from diffusion_notes.atomic import atomic_write_text

RESULTS = Path(__file__).resolve().parent / "results"
PARTS = ("t2i", "i2i", "edit")


def run_part(name: str, smoke: bool) -> dict:
    """Import ``bench/map_<name>.py`` and run it; a missing or malformed part is an error."""
    try:
        module = importlib.import_module(f"map_{name}")
    except ModuleNotFoundError as exc:
        raise SystemExit(f"bench/map.py: part {name!r} needs bench/map_{name}.py ({exc})") from exc
    load = os.getloadavg()[0]
    result = module.run(smoke)
    table = result.get("table")
    if not isinstance(table, list) or not all(
            isinstance(r, dict) and {"measure", "value", "goal"} <= r.keys() for r in table):
        raise SystemExit(f"bench/map_{name}.py: run() must return a 'table' of rows with "
                         "'measure', 'value' and 'goal'")
    return {"title": module.TITLE, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": machine_info(get_device(), load), **result}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=PARTS, action="append",
                        help="run only this part (repeatable); the others' results are kept")
    args = parser.parse_args(argv)
    smoke = is_smoke()
    out = RESULTS / ("map-smoke.json" if smoke else "map.json")
    data = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else {}
    data.update({"benchmark": "map", "smoke": smoke})
    parts = data.setdefault("parts", {})
    for name in args.part or PARTS:
        print(f"map: running part {name}", flush=True)
        parts[name] = run_part(name, smoke)
        atomic_write_text(out, json.dumps(data, indent=1) + "\n")  # keep each part as it lands
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
