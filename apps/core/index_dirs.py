"""Indexes and model artefacts written to disk so that a reader never sees half of one, one way for
every app.

A new version is written beside the old one and swapped in by a rename: a reader (another process,
or a thread of this one loading it into `apps.core.caches`) finds either the old complete content or
the new complete content. A writer that fails leaves the old content as it was and nothing beside
it. One writer at a time per target: the apps' indexing jobs are claimed. Django-free.
"""
from __future__ import annotations

import ctypes
import errno
import os
import shutil
from collections.abc import Callable
from pathlib import Path

_AT_FDCWD = -100  # renameat2: paths relative to the working directory
_RENAME_EXCHANGE = 2  # renameat2: swap the two paths in one step


def _libc_renameat2():
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):  # not Linux, or a C library older than glibc 2.28
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return function


_renameat2 = _libc_renameat2()


def _exchange(first: Path, second: Path) -> bool:
    """Swap two existing paths atomically; False where the system or file system cannot."""
    if _renameat2 is None:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.EPERM, errno.EOPNOTSUPP):
        return False
    raise OSError(error, os.strerror(error), str(first), None, str(second))


def _beside(target: Path, mark: str) -> Path:
    """A sibling of `target` named for it, keeping its suffix (`v3.joblib` -> `v3.new.joblib`)."""
    return target.with_name(f"{target.stem}.{mark}{target.suffix}")


def replace_directory(target: Path, build: Callable[[Path], None]) -> None:
    """Fill a new directory with `build(staging)` (the directory exists, empty, beside `target`), then
    swap it in for `target` and remove the old one. If `build` raises, `target` is untouched and the
    staging directory is removed."""
    staging, old = _beside(target, "new"), _beside(target, "old")
    for leftover in (staging, old):  # from a writer that died
        shutil.rmtree(leftover, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        build(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if not target.exists():
        staging.rename(target)
        return
    if _exchange(staging, target):
        shutil.rmtree(staging, ignore_errors=True)  # it holds the old content now
        return
    target.rename(old)  # without an atomic exchange: for an instant there is no `target`, never half of one
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def replace_file(target: Path, write: Callable[[Path], None]) -> None:
    """Write a new file with `write(staging)` beside `target`, then rename it over `target`. If `write`
    raises, `target` is untouched and the staging file is removed."""
    staging = _beside(target, "new")
    staging.parent.mkdir(parents=True, exist_ok=True)
    try:
        write(staging)
        os.replace(staging, target)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
