"""Data-parallel training: 2 CPU processes under torchrun (gloo) match one process.

The worker script runs the real :func:`diffusion_notes.train.train` under
``python -m torch.distributed.run --nproc_per_node 2`` on 127.0.0.1 (a free port, nothing
beyond localhost) and records the gradients that each rank holds after DDP's all-reduce.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from diffusion_notes.train import TrainConfig, train

# class-conditional with label dropout, so that the labels' sharding is exercised too
CONFIG = TrainConfig(data="digits", model="unet", steps=2, batch_size=16, width=8, depth=1,
                     class_conditional=True, label_dropout=0.2, warmup_steps=0, seed=5)

WORKER = textwrap.dedent("""\
    import os, sys
    import torch
    from diffusion_notes.train import TrainConfig, train

    out = sys.argv[1]
    config = TrainConfig(**eval(sys.argv[2]))
    rank = int(os.environ["RANK"])
    grads = {}

    def keep(step, g):
        grads[step] = g

    result = train(config, out_dir=out, device="cpu", progress=False, on_gradients=keep)
    torch.save({"grads": grads, "losses": list(result.losses)},
               os.path.join(out, f"rank{rank}.pt"))
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    script = out / "worker.py"
    script.write_text(WORKER)
    env = dict(os.environ, OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo",
               MASTER_ADDR="127.0.0.1", DIFFUSION_NOTES_DEVICE="cpu")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1",
           "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), str(script), str(out), repr(CONFIG.__dict__)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    if proc.returncode != 0:
        pytest.fail(f"torchrun failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n"
                    f"{proc.stderr[-4000:]}")
    return out


def _single_process(tmp_path: Path) -> tuple[dict, tuple[float, ...]]:
    grads: dict = {}
    result = train(CONFIG, out_dir=tmp_path, device="cpu", progress=False,
                   on_gradients=lambda step, g: grads.__setitem__(step, g))
    return grads, result.losses


def test_ddp_gradients_equal_single_process_on_the_global_batch(ddp_run: Path,
                                                                 tmp_path: Path) -> None:
    r0 = torch.load(ddp_run / "rank0.pt", weights_only=True)
    r1 = torch.load(ddp_run / "rank1.pt", weights_only=True)
    single, single_losses = _single_process(tmp_path)
    g_ddp, g_one = r0["grads"][0], single[0]
    assert g_ddp.keys() == g_one.keys() and len(g_one) > 10
    worst = 0.0
    for name, ref in g_one.items():
        # both ranks hold the same averaged gradient after the all-reduce
        assert torch.equal(g_ddp[name], r1["grads"][0][name]), name
        # mean over 16 examples vs the average of two means over 8: the same number summed in
        # another order, so float32 rounding (eps = 1.2e-7, a few dozen additions) leaves
        # ~1e-6 relative to the tensor's scale; measured worst: 1.1e-7
        scale = ref.abs().max().item()
        err = (g_ddp[name] - ref).abs().max().item()
        worst = max(worst, err / scale if scale > 0 else err)
        assert err <= 1e-5 * scale + 1e-12, (name, err, scale)
    print(f"worst relative gradient difference: {worst:.2e}")
    # the logged loss is the global-batch mean (the average of the two shard means)
    assert r0["losses"][0] == pytest.approx(single_losses[0], rel=1e-6)
    assert r0["losses"] == r1["losses"]


def test_ddp_writes_one_checkpoint_from_rank_zero(ddp_run: Path) -> None:
    from diffusion_notes.checkpoints import load_checkpoint

    ckpt = load_checkpoint(ddp_run / "checkpoint.pt")
    assert ckpt["world_size"] == 2 and ckpt["step"] == CONFIG.steps
    assert not list(ddp_run.glob(".*.tmp"))


def test_shards_of_a_global_batch_partition_it() -> None:
    from diffusion_notes.data.digits import load_digits_tensor
    from diffusion_notes.train import make_batch, shard

    d = load_digits_tensor()
    batch = make_batch(CONFIG, d.images, d.labels, 0)
    parts = [shard(batch, r, 2) for r in range(2)]
    assert torch.equal(torch.cat([p.x0 for p in parts]), batch.x0)
    assert torch.equal(torch.cat([p.eps for p in parts]), batch.eps)
    assert torch.equal(torch.cat([p.y for p in parts]), batch.y)
