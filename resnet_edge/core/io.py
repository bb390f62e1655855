"""Files written whole or not at all, and the JSON conventions every report and manifest shares.

A reader never sees a half-written checkpoint, bundle, report or baseline: every write goes to a
temporary name beside its destination and is renamed into place; on any exception (an interrupt or
a termination signal included, see ``core.signals``) the temporary file is removed and an existing
destination is left as it was.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import UsageError


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary file name beside ``path``; rename it to ``path`` when the block succeeds.

    Parents are created. The temporary file gets the permissions a plain ``open`` would give.
    """
    path = Path(path).expanduser()
    with _writable(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        yield Path(temporary)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        if error.filename is None:  # a failed write() names no file; the user needs to know which
            raise OSError(error.errno, error.strerror, str(path)) from None
        raise
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _writable(path: Path) -> Iterator[None]:
    """Turn a permission error creating a file or directory beside ``path`` into a one-line ``UsageError``."""
    try:
        yield
    except PermissionError as error:
        where = Path(error.filename).parent if error.filename else path.parent
        raise UsageError(f"{path}: cannot write to {where} (permission denied); choose another path") from None


def write_atomic(path: Path, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` atomically (fsynced before the rename); returns the path."""
    payload = data.encode() if isinstance(data, str) else data
    with atomic_path(path) as temporary:
        with temporary.open("wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
    return Path(path).expanduser()


def json_default(value):
    """``json.dumps`` fallback: paths as strings, numpy/torch scalars as Python numbers."""
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def json_text(payload) -> str:
    """``payload`` as the package writes every JSON file: indented by 2, newline-terminated."""
    return json.dumps(payload, indent=2, default=json_default) + "\n"


def write_json(path: Path, payload) -> Path:
    """``payload`` as indented JSON, atomically."""
    return write_atomic(path, json_text(payload))


def read_json_document(path: Path, message: Callable[[Exception], str], text: str | None = None) -> Any:
    """The JSON value in the user's file at ``path`` (``text``: its content, when the caller read it
    already); a ``UsageError`` reading ``message(error)`` in one line when it cannot be read or parsed."""
    try:
        return json.loads(Path(path).expanduser().read_text(encoding="utf-8") if text is None else text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UsageError(message(error)) from None


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_output_path(path: Path | None, flag: str) -> Path | None:
    """Refuse, before any work, an output path that cannot be written as a file."""
    if path is None:
        return None
    path = Path(path).expanduser()
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a directory; pass a file name")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(f"{flag} {path}: {parent} is not a directory")
            if not os.access(parent, os.W_OK):
                raise UsageError(f"{flag} {path}: cannot write to {parent}")
            break
    return path


def make_parents(directory: Path) -> list[Path]:
    """mkdir -p, returning the directories it created (deepest last) so a failure can remove them."""
    created = []
    for parent in reversed([directory, *directory.parents]):
        if not parent.exists():
            parent.mkdir()
            created.append(parent)
    return created


@contextlib.contextmanager
def staging_dir(out: Path) -> Iterator[Path]:
    """Yield a fresh, private-named directory beside ``out`` (with ordinary permissions).

    On any exception the directory, and any parents this call created, are removed. Moving it into
    place is the caller's job (``replace_dir``), done inside the block.
    """
    with _writable(out):
        created = make_parents(out.parent)
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".partial"))
    try:
        tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it private; the result is an ordinary directory
        yield tmp
    except OSError as error:
        _remove(tmp, created)
        if error.filename is None:  # a failed write() names no file; the user needs to know which
            raise OSError(error.errno, error.strerror, str(out)) from None
        raise
    except BaseException:
        _remove(tmp, created)
        raise


def _remove(tmp: Path, created: list[Path]) -> None:
    shutil.rmtree(tmp, ignore_errors=True)
    for directory in reversed(created):
        with contextlib.suppress(OSError):
            directory.rmdir()


def replace_dir(tmp: Path, out: Path, *, replace: bool) -> None:
    """Rename ``tmp`` to ``out``. With ``replace`` (``--force``) an existing ``out`` is swapped out and
    removed only once ``tmp`` is in. Without it, ``out`` is never replaced, even if another process put
    it there after the caller's own check (two compiles to one ``--out`` finish within milliseconds of
    each other): the rename itself is the check, so there is no window between looking and renaming."""
    if not replace or not out.exists():
        try:
            os.rename(tmp, out)  # onto nothing, or an empty directory
        except OSError as error:  # another process put a non-empty directory there since we looked
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise
            raise UsageError(f"{out} already exists; pass --force to replace it or choose another --out") from None
        return
    old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old"))
    old.rmdir()
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)
