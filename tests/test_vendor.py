"""The vendored mermaid: checked against the pinned integrity, stored by setup, never fetched
at build time."""

from __future__ import annotations

import io
import sys
import tarfile

import pytest

from diffusion_notes.site import vendor


def _tarball(content: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo(vendor.MERMAID_MEMBER)
        info.size = len(content)
        tf.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def test_integrity_is_the_registry_format() -> None:
    # sha512 of b"" in the npm registry's "sha512-<base64>" form
    assert vendor.integrity(b"").startswith("sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0")


def test_a_tarball_that_is_not_the_published_one_is_refused() -> None:
    with pytest.raises(vendor.VendorError, match="integrity .* expected sha512-"):
        vendor.extract_mermaid(_tarball(b"alert('not mermaid')"))


def test_the_pinned_tarball_is_accepted(monkeypatch) -> None:
    fake = _tarball(b"var mermaid = {};")
    monkeypatch.setattr(vendor, "MERMAID_INTEGRITY", vendor.integrity(fake))
    assert vendor.extract_mermaid(fake) == b"var mermaid = {};"


def test_missing_file_names_the_fix_without_fetching(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    with pytest.raises(vendor.VendorError, match="make setup"):
        vendor.ensure_mermaid(fetch=False)


def test_setup_stored_mermaid() -> None:
    """`make setup` ran the vendor step for this environment (the site build needs the file)."""
    path = vendor.mermaid_file()
    assert path.is_file() and path.stat().st_size > 1_000_000
    assert b"mermaid" in path.read_bytes()[:400]
