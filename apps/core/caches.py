"""Per-process caches of things loaded from disk (retrieval indexes, diagnosis engines), one shape for
every app.

An entry is found by the identity of what it was loaded for (a knowledge base's id, a repository's,
a model's) and kept while its version holds: whatever names the content loaded, such as a counter
in the database together with `path_stamp` of the file or folder it was read from. A counter alone
is not enough: a rebuilt database starts its counters again at 1, and a process that outlives it
would serve the old content. Django-free.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Generic, TypeVar

V = TypeVar("V")


def path_stamp(path: Path) -> tuple[int, int, int, int] | None:
    """What tells this file or folder apart from another written at the same path (device, inode,
    modification time, size); None when nothing is there. A folder swapped in by
    `apps.core.index_dirs.replace_directory` and a file by `replace_file` get a new one."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size)


class VersionedCache(Generic[V]):
    """One loaded value per identity, reloaded when its version changes; thread-safe; the least recently
    used identities are dropped beyond `max_entries`."""

    def __init__(self, max_entries: int = 16):
        self.max_entries = max_entries  # identities kept; each may hold a large index in memory
        self._entries: OrderedDict[Hashable, tuple[Hashable, V]] = OrderedDict()  # identity -> (version, value)
        self._lock = threading.Lock()

    def get(self, identity: Hashable, version: Hashable, load: Callable[[], V]) -> V:
        """The value cached for `identity` at `version`, or `load()`'s, cached in its place."""
        with self._lock:  # one load at a time: two requests for a new index load it once
            cached = self._entries.get(identity)
            if cached is None or cached[0] != version:
                cached = (version, load())
                self._entries[identity] = cached
            self._entries.move_to_end(identity)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
            return cached[1]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
