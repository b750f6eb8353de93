"""Shared fixtures: the repository root, the built site (smoke mode), a local web server."""

from __future__ import annotations

import functools
import http.server
import os
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
TEST_OUTPUT = REPO / "test-output"


def run_mkdocs_build(config: Path, site_dir: Path, *, smoke: bool = True,
                     timeout: int = 1500) -> subprocess.CompletedProcess[str]:
    """``mkdocs build --strict`` in a subprocess, as a user's ``make site`` runs it."""
    env = dict(os.environ, DIFFUSION_NOTES_SMOKE="1" if smoke else "0", NO_MKDOCS_2_WARNING="1")
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config),
         "-d", str(site_dir)],
        cwd=config.parent, env=env, capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole site, built once per test session with the labs in smoke mode."""
    site = tmp_path_factory.mktemp("site") / "site"
    result = run_mkdocs_build(REPO / "mkdocs.yml", site)
    if result.returncode != 0:
        pytest.fail(f"strict site build failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return site


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="session")
def site_url(built_site: Path) -> Iterator[str]:
    """The built site served on 127.0.0.1 (a free port) for the browser tests."""
    handler = functools.partial(_QuietHandler, directory=str(built_site))
    socketserver.TCPServer.allow_reuse_address = True
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.server_address[1]}/"
        server.shutdown()


@pytest.fixture(scope="module")
def single_thread() -> Iterator[None]:
    """One intra-op torch thread for a module, restored afterwards: on a shared 2-core box
    OpenMP threads oversubscribe (a GMM eps call measured 85 ms with 2 threads, 2.6 ms with 1)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def skewed_mixture():
    """Three correlated 2-D Gaussian components with unequal weights: a target for samplers."""
    import torch

    from diffusion_notes.data.gmm import GaussianMixture

    means = torch.tensor([[-1.0, 0.0], [1.5, 0.5], [0.0, -1.5]])
    covs = torch.stack([
        0.3 * torch.eye(2),
        torch.tensor([[0.5, 0.2], [0.2, 0.3]]),
        torch.tensor([[0.2, -0.1], [-0.1, 0.4]]),
    ])
    return GaussianMixture(means, covs, torch.tensor([0.5, 0.3, 0.2]))


@pytest.fixture(scope="session")
def test_output() -> Path:
    TEST_OUTPUT.mkdir(exist_ok=True)
    return TEST_OUTPUT
