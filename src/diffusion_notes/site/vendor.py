"""Mermaid, the diagram renderer of the lineage diagrams, installed at setup and served locally.

Material for MkDocs draws ```` ```mermaid ```` fences with mermaid.js, which it fetches from a
CDN unless a global ``mermaid`` is already on the page. The site must work offline and fetch
nothing from outside, so setup (``make setup``, which runs ``python -m
diffusion_notes.site.vendor``) takes ``dist/mermaid.min.js`` from mermaid's package on the npm
registry (a package registry, like PyPI for the Python packages), checks the tarball against
the pinned sha512 integrity the registry publishes, and stores the file in the virtual
environment. The site build then copies it into the site and loads it on the pages that have
a diagram. Nothing is downloaded at build or run time.
"""

from __future__ import annotations

import base64
import hashlib
import io
import sys
import tarfile
import urllib.request
from pathlib import Path

from diffusion_notes.atomic import atomic_write

# mermaid 11: the major version Material's bundle asks for (unpkg.com/mermaid@11)
MERMAID_VERSION = "11.17.2"
MERMAID_TARBALL = f"https://registry.npmjs.org/mermaid/-/mermaid-{MERMAID_VERSION}.tgz"
MERMAID_INTEGRITY = ("sha512-V6K3C8EBdEsPFZXSKMJe6ppQOENxuHARr9GvHX4hh47lAbhMRD9qf4oEK7LoaRQxULMa"
                     "80/qt5gHO73aCleBBg==")
MERMAID_MEMBER = "package/dist/mermaid.min.js"
MERMAID_URI = "assets/vendor/mermaid/mermaid.min.js"


class VendorError(RuntimeError):
    """A vendored file that is missing or cannot be fetched, with the fix in its message."""


def mermaid_file() -> Path:
    """Where setup stores mermaid.min.js: inside the Python environment, beside its packages."""
    return Path(sys.prefix) / "share" / "diffusion-notes" / f"mermaid-{MERMAID_VERSION}.min.js"


def integrity(data: bytes) -> str:
    """The npm registry's integrity string of ``data`` (``sha512-`` and base64)."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")


def extract_mermaid(tarball: bytes) -> bytes:
    """``dist/mermaid.min.js`` from the package tarball, after checking the pinned integrity."""
    got = integrity(tarball)
    if got != MERMAID_INTEGRITY:
        raise VendorError(f"mermaid {MERMAID_VERSION}: the tarball's integrity is {got}, "
                          f"expected {MERMAID_INTEGRITY}: not the published package")
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tf:
        member = tf.extractfile(MERMAID_MEMBER)
        if member is None:
            raise VendorError(f"mermaid {MERMAID_VERSION}: {MERMAID_MEMBER} is not in the package")
        return member.read()


def ensure_mermaid(*, fetch: bool = True, timeout: float = 120.0) -> Path:
    """The stored mermaid.min.js; fetched from the npm registry first if it is missing."""
    path = mermaid_file()
    if path.is_file():
        return path
    if not fetch:
        raise VendorError(f"{path} is missing (mermaid, for the diagrams): run `make setup` or "
                          "`python -m diffusion_notes.site.vendor`")
    try:
        with urllib.request.urlopen(MERMAID_TARBALL, timeout=timeout) as response:
            tarball = response.read()
    except OSError as exc:
        raise VendorError(f"could not fetch {MERMAID_TARBALL} ({exc}); the npm registry must be "
                          "reachable once, at setup") from None
    data = extract_mermaid(tarball)
    atomic_write(path, lambda fh: fh.write(data))
    return path


def main() -> int:
    try:
        path = ensure_mermaid()
    except VendorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"mermaid {MERMAID_VERSION}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
