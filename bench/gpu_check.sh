#!/usr/bin/env bash
# GPU check for the digits DDPM: train and sample on CUDA, print it/s and sampling time beside
# the CPU figures in bench/results/digits.json. One short run (about a minute on an H100;
# the whole script stops itself after GPU_CHECK_TIMEOUT seconds, default 280).
#
#   bash bench/gpu_check.sh               # from anywhere inside the repository
#   GPU_CHECK_STEPS=1000 bash bench/gpu_check.sh     # fewer training steps
#   GPU_CHECK_DEVICE=cpu GPU_CHECK_STEPS=30 GPU_CHECK_SIZES=16 bash bench/gpu_check.sh  # dry run
#
# Python: the repository's .venv when it has a CUDA torch, else the system python3 (torch
# preinstalled there). Nothing is installed or downloaded. Missing optional packages are
# replaced and said so: no tqdm -> no progress bars; no scikit-learn -> random 8x8 "digits"
# (timings stay meaningful, the FD is skipped).
set -euo pipefail
cd "$(dirname "$0")/.."

has_cuda_torch() {
  "$1" - <<'PY' >/dev/null 2>&1
import torch, sys
sys.exit(0 if torch.cuda.is_available() else 1)
PY
}

PY=""
if [ "${GPU_CHECK_DEVICE:-cuda}" = "cpu" ]; then  # dry run of this script without a GPU
  PY=.venv/bin/python
else
  for cand in .venv/bin/python python3 python; do
    if command -v "$cand" >/dev/null 2>&1 && has_cuda_torch "$cand"; then PY="$cand"; break; fi
  done
fi
if [ -z "$PY" ]; then
  echo "gpu_check: no python with a CUDA-enabled torch found (tried .venv/bin/python, python3," >&2
  echo "  python). This check needs a GPU machine with torch preinstalled; nothing was run." >&2
  for cand in .venv/bin/python python3; do
    command -v "$cand" >/dev/null 2>&1 && "$cand" -c \
      "import torch; print('  $cand: torch', torch.__version__, '- cuda available:', torch.cuda.is_available())" \
      2>/dev/null || true
  done
  exit 1
fi
echo "gpu_check: using $PY ($("$PY" -c 'import sys; print(sys.version.split()[0])'))"

export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export DIFFUSION_NOTES_CACHE="${DIFFUSION_NOTES_CACHE:-$(mktemp -d)}"  # never touch the repo cache
export GPU_CHECK_STEPS="${GPU_CHECK_STEPS:-}"  # default: the digits preset's budget
export GPU_CHECK_SIZES="${GPU_CHECK_SIZES:-898 4096}"  # sample counts to time
export GPU_CHECK_DEVICE="${GPU_CHECK_DEVICE:-cuda}"
timeout "${GPU_CHECK_TIMEOUT:-280}" "$PY" - <<'PY'
import importlib.machinery
import json
import os
import sys
import tempfile
import time
import types
from pathlib import Path



def importable(name):
    try:
        __import__(name)
    except ImportError:
        return False
    return True


notes = []
if not importable("tqdm"):  # a no-op stand-in, so the package imports
    notes.append("tqdm missing: no progress bars")

    class _NoBar:
        def __init__(self, iterable=None, *a, **k):
            self.iterable = iterable

        def __iter__(self):
            return iter(self.iterable)

        def update(self, *a, **k):
            pass

        def set_postfix(self, *a, **k):
            pass

        def close(self):
            pass

    for name in ("tqdm", "tqdm.auto"):
        sys.modules.pop(name, None)
    fake = types.ModuleType("tqdm")
    fake.tqdm = _NoBar
    fake_auto = types.ModuleType("tqdm.auto")
    fake_auto.tqdm = _NoBar
    for mod in (fake, fake_auto):  # torch's import-time checks call importlib's find_spec
        mod.__spec__ = importlib.machinery.ModuleSpec(mod.__name__, None)
    sys.modules["tqdm"], sys.modules["tqdm.auto"] = fake, fake_auto

import torch

import diffusion_notes.train as tr
from diffusion_notes.samplers import sample_ddpm

have_sklearn = importable("sklearn")
if not have_sklearn:
    notes.append("scikit-learn missing: training on random 8x8 images (timings only, no FD)")

    def random_digits(config):
        g = torch.Generator().manual_seed(0)
        return torch.rand(1797, 1, 8, 8, generator=g) * 2 - 1, torch.randint(0, 10, (1797,), generator=g)

    tr.load_data = random_digits

device = torch.device(os.environ["GPU_CHECK_DEVICE"])
name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (dry run)"
print(f"device: {name}; torch {torch.__version__}")
for note in notes:
    print(f"NOTE: {note}")
steps_env = os.environ.get("GPU_CHECK_STEPS", "")
config = tr.preset("digits", **({"steps": int(steps_env)} if steps_env else {}))


def sync():
    if device.type == "cuda":
        torch.cuda.synchronize(device)


with tempfile.TemporaryDirectory() as tmp:
    warm = tr.train(tr.preset("digits", steps=20), out_dir=Path(tmp) / "warm", device=device,
                    progress=False)  # CUDA context, cuDNN autotuning
    sync()
    result = tr.train(config, out_dir=Path(tmp) / "run", device=device)
    sync()
    model, _ = tr.load_trained(result.checkpoint, device=device)
schedule = tr.make_schedule_for(config)
timings = {}
sizes = [int(v) for v in os.environ["GPU_CHECK_SIZES"].split()]
for n in sizes:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 1, 8, 8, generator=g).to(device)
    sync()
    t0 = time.perf_counter()
    samples = sample_ddpm(model, x, schedule, generator=g, progress=False)
    sync()
    timings[n] = time.perf_counter() - t0
fd = None
if have_sklearn and 898 in sizes:
    from diffusion_notes.metrics import get_digit_classifier, score_digits

    clf, _ = get_digit_classifier(device=device)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(898, 1, 8, 8, generator=g).to(device)
    score = score_digits(sample_ddpm(model, x, schedule, generator=g, progress=False).cpu(), clf)
    fd = (score.fd, score.floor)

cpu_path = Path("bench/results/digits.json")
cpu = json.loads(cpu_path.read_text()) if cpu_path.is_file() else None
print()
print(f"{'':34} {'this GPU':>14} {'CPU (digits.json)':>18}")
cpu_it = f"{cpu['train']['it_per_s']:.1f}" if cpu else "n/a"
cpu_steps = f"{cpu['train']['steps']}" if cpu else "n/a"
cpu_train_s = f"{cpu['train']['seconds']:.1f}" if cpu else "n/a"
cpu_samp = f"{cpu['sampling']['seconds']:.1f}" if cpu else "n/a"
print(f"{'training it/s (batch 128)':34} {result.steps_per_second:14.1f} {cpu_it:>18}")
print(f"{'training steps / seconds':34} {result.steps:>7d} / {result.seconds:5.1f} "
      f"{cpu_steps:>9} / {cpu_train_s}")
for n, seconds in timings.items():
    label = f"DDPM-{schedule.T} sampling, {n} images (s)"
    print(f"{label:34} {seconds:14.2f} {cpu_samp if n == 898 else '':>18}")
if fd is not None:
    cpu_fd = f"{cpu['digits_fd']:.2f} / {cpu['real_data_floor']:.2f}" if cpu else "n/a"
    print(f"{'digits FD / floor':34} {fd[0]:8.2f} / {fd[1]:.2f} {cpu_fd:>18}")
if cpu:
    print(f"(CPU figures: {cpu['machine']['device_name']}, {cpu['machine']['torch_threads']} "
          f"threads, {cpu['date']})")
PY
