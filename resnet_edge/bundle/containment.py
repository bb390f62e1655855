"""The containment rule: every file a manifest names lies inside the bundle directory.

A bundle is copied between machines and downloaded from model stores, so it must carry every file
it names. A name in ``files`` (and so in ``artifacts``, which must be listed in ``files``) is a
relative, ``/``-separated path with no empty, ``.`` or ``..`` part and none of ``\\``, ``:`` or NUL
(a Windows separator, a drive letter, the end of a C string); and the file it names must not be
reached through a symlink that leaves the bundle (a copy would break, or carry another file).

The C++ reader (csrc/lib/bundle_files.cpp) applies the same rule with the same messages; the
writer (``write_manifest``) applies it to what it lists, so ``compile`` never writes such a bundle.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..core.errors import CheckFailed

_FORBIDDEN_CHARACTERS = ("\\", ":", "\0")
_FORBIDDEN_PARTS = ("", ".", "..")


def name_is_contained(name: str) -> bool:
    """True when ``name`` is a relative path that stays inside the bundle (see the module docstring)."""
    parts = name.split("/")
    return not any(part in _FORBIDDEN_PARTS or any(char in part for char in _FORBIDDEN_CHARACTERS) for part in parts)


def escaping_target(directory: Path, name: str) -> Path | None:
    """Where ``directory / name`` resolves when symlinks take it outside ``directory``; None when it
    stays inside (a missing file stays inside: its absence is reported by whoever opens it)."""
    target = (directory / name).resolve()
    return None if target.is_relative_to(directory.resolve()) else target


def check_contained(directory: Path, manifest_path: Path, names, error: type[Exception] = CheckFailed) -> None:
    """Raise ``error`` (one line) for the first of ``names`` that leaves ``directory``.

    The name is shown JSON-quoted (as the C++ reader shows it), so a NUL or a line break in a hostile
    manifest cannot garble the error line.
    """
    directory = Path(directory)
    for name in names:
        if not name_is_contained(name):
            quoted = json.dumps(name, ensure_ascii=False)
            raise error(f"{manifest_path}: file name {quoted} leaves the bundle directory; rebuild the bundle")
        target = escaping_target(directory, name)
        if target is not None:
            raise error(
                f"bundle {directory}: {name} is a symlink that leaves the bundle (to {target}); "
                f"a copied bundle would break: copy the file in"
            )
