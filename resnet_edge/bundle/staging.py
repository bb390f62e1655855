"""Building a bundle beside its destination and moving it into place only once it is complete."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from ..core.errors import UsageError
from ..core.io import replace_dir, staging_dir
from .manifest import MANIFEST_NAME


def check_out_dir(out: Path, force: bool) -> Path:
    """Refuse an existing ``out`` without ``force``, and anything but a bundle (or empty dir) even with it."""
    out = Path(out).expanduser().absolute()
    if out.exists() or out.is_symlink():
        if not force:
            raise UsageError(f"{out} already exists; pass --force to replace it or choose another --out")
        if not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST_NAME).is_file()):
            raise UsageError(f"{out} exists and is not a bundle; refusing to replace it even with --force")
    return out


@contextlib.contextmanager
def staging(out: Path, force: bool = False) -> Iterator[Path]:
    """Yield a fresh directory beside ``out``; rename it to ``out`` when the block ends normally.

    On any exception, KeyboardInterrupt included, the directory and any parents this call created are
    removed, and a bundle being replaced with ``force`` is left untouched. A block that did not write
    the manifest (``write_manifest``) is an error: what it built is not a bundle.
    """
    out = check_out_dir(out, force)
    with staging_dir(out) as tmp:
        yield tmp
        if not (tmp / MANIFEST_NAME).is_file():
            raise RuntimeError("bundle.staging: the block ended without write_manifest()")
        check_out_dir(out, force)  # again: something may have appeared while we were building
        replace_dir(tmp, out, replace=force)
