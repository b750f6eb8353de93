"""The one atomic file writer of the project.

:func:`atomic_write` writes to a temporary file in the target's folder (same file system),
flushes and fsyncs it, gives it the old file's permissions (0644 for a new file), and renames it
over the target with :func:`os.replace`. A reader therefore sees the old file or the complete
new one, never half a file, even after a crash; on any failure the old file is untouched and
the temporary file removed. Checkpoints, ``papers.bib`` and the executed-lab cache all use it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> Path:
    """Replace ``path`` with what ``write(fh)`` writes into a binary file handle."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, p.stat().st_mode & 0o777 if p.exists() else 0o644)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def atomic_write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> Path:
    """Replace ``path`` with ``text`` (newlines written as given, ``\\n`` stays ``\\n``)."""
    data = text.encode(encoding)
    return atomic_write(path, lambda fh: fh.write(data))
