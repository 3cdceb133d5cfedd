"""Outputs that are never half-written, and output directories one command at a time.

* :func:`write_bytes` / :func:`write_text` write a temporary file in the same
  directory, flush it to disk and rename it into place (``os.replace``):
  a reader, or the next run after a kill, sees the old file or the new one,
  never a truncated one.
* :func:`locked` holds an exclusive ``flock`` on ``DIR/.hwgen.lock`` while a
  command writes into ``DIR``. A second command on the same directory is
  refused with the holder's command line, pid and start time. The kernel
  drops the lock when its process ends, however it ends, so a killed run
  leaves no stale lock behind.
"""
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from ..errors import HwgenError

__all__ = ["LOCK_NAME", "write_bytes", "write_text", "locked"]

#: the lock file a command holds in its output directory
LOCK_NAME = ".hwgen.lock"


def write_bytes(path, data):
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename).
    A path that names a directory, or whose directory is missing or a file,
    is refused by name (not by the temporary file's)."""
    path = Path(path)
    if path.is_dir():
        raise HwgenError(f"cannot write {path}: it is a directory, not a file")
    blocked = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocked is not None:
        raise HwgenError(f"cannot write {path}: {blocked} is a file, not a directory")
    if not path.parent.is_dir():
        raise HwgenError(f"cannot write {path}: directory {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text(path, text):
    """:func:`write_bytes` of ``text`` as UTF-8."""
    write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def locked(directory, what=None):
    """Hold ``directory``'s lock (creating the directory) for the ``with``
    block, or raise :class:`HwgenError` naming the command that holds it.
    ``what``: how the holder is described to a second command (default: this
    process's command line). Nested use by one process is allowed."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    key = str(directory.resolve())
    if key in _HELD:           # the flow locks its directory, then calls steps that lock it again
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    try:
        import fcntl
    except ImportError:        # no flock (Windows): no lock, as before
        yield
        return
    path = directory / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _holder(fd)
            raise HwgenError(f"{directory} is in use by another hwgen command ({holder}); wait for it to "
                             f"finish or write into another directory") from None
        info = {"pid": os.getpid(), "command": what or " ".join(["hwgen", *sys.argv[1:]]),
                "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        _HELD[key] = 1
        try:
            yield
        finally:
            del _HELD[key]
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)      # closing the descriptor releases the flock


_HELD = {}


def _holder(fd):
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return f"'{info['command']}', pid {info['pid']}, since {info['started']}"
    except (ValueError, KeyError, OSError, UnicodeDecodeError):
        return "its details unreadable"
