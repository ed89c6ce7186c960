"""Unpacking uploaded repository archives (.zip, .tar, .tar.gz) within named limits.

An archive is hostile until proven otherwise: its member count, its unpacked bytes and its
compression ratio are checked against settings before and while members are written (the sizes an
archive declares are not trusted: bytes are counted as they are written), and members that could
land outside the target folder (absolute paths, `..`) or are not plain files or folders (symbolic
and hard links, devices, FIFOs) refuse the whole archive.
"""
from __future__ import annotations

import shutil
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path, PurePosixPath
from typing import IO

from django.conf import settings

from apps.core.errors import ApplicationError, TooLargeError

COPY_CHUNK = 64 * 1024
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


def _refuse(message: str, *, code: str, status: int = 400) -> ApplicationError:
    return ApplicationError(message=message, status=status, code=code, field="archive")


def _too_many_members() -> ApplicationError:
    return _refuse(f"The archive has more than {settings.CODEGEN_ARCHIVE_MAX_MEMBERS:,} members "
                   "(CODEGEN_ARCHIVE_MAX_MEMBERS).", code="archive_too_many_members", status=413)


@dataclass
class _Budget:
    """What the archive has unpacked so far; each method raises once its limit is passed."""

    archive_bytes: int
    members: int = 0
    unpacked: int = 0

    def member(self) -> None:
        self.members += 1
        if self.members > settings.CODEGEN_ARCHIVE_MAX_MEMBERS:
            raise _too_many_members()

    def expect(self, size: int) -> None:
        """Refuse now if `size` more bytes would pass a limit (sizes from headers, before inflating them)."""
        total = self.unpacked + size
        if total > settings.CODEGEN_ARCHIVE_MAX_UNPACKED_BYTES:
            raise _refuse(f"The archive unpacks to more than {settings.CODEGEN_ARCHIVE_MAX_UNPACKED_BYTES:,} bytes "
                          "(CODEGEN_ARCHIVE_MAX_UNPACKED_BYTES).", code="archive_too_large_unpacked", status=413)
        if total > settings.CODEGEN_ARCHIVE_MAX_RATIO * max(self.archive_bytes, 1):
            raise _refuse(f"The archive unpacks to more than {settings.CODEGEN_ARCHIVE_MAX_RATIO:g} times its size "
                          "(CODEGEN_ARCHIVE_MAX_RATIO): it looks like an archive bomb.",
                          code="archive_compression_ratio", status=413)

    def spend(self, size: int) -> None:
        """Count bytes actually written (headers may understate them)."""
        self.expect(size)
        self.unpacked += size


def _member_path(root: Path, name: str) -> Path:
    """Where member `name` lands under `root`; refuses absolute names and `..`."""
    relative = PurePosixPath(name.replace("\\", "/"))
    if relative.is_absolute() or ".." in relative.parts or "\x00" in name:
        raise _refuse(f"The archive member {name!r} points outside the repository.", code="archive_unsafe_member")
    destination = root.joinpath(*relative.parts)
    if destination != root and root not in destination.parents:
        raise _refuse(f"The archive member {name!r} points outside the repository.", code="archive_unsafe_member")
    return destination


def _write(source: IO[bytes], destination: Path, name: str, budget: _Budget) -> None:
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        with open(destination, "xb") as target:  # exclusive: a member named twice is refused, nothing followed
            while chunk := source.read(COPY_CHUNK):
                budget.spend(len(chunk))
                target.write(chunk)
    except (FileExistsError, NotADirectoryError, IsADirectoryError):
        raise _refuse(f"The archive member {name!r} clashes with another member.", code="archive_unsafe_member") \
            from None


def _unpack_zip(data: bytes, root: Path, budget: _Budget) -> None:
    with zipfile.ZipFile(BytesIO(data)) as archive:
        members = archive.infolist()
        if len(members) > settings.CODEGEN_ARCHIVE_MAX_MEMBERS:
            raise _too_many_members()
        budget.expect(sum(member.file_size for member in members))  # a bomb is refused before anything is written
        for member in members:
            budget.member()
            destination = _member_path(root, member.filename)
            if member.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
            elif stat.S_IFMT(member.external_attr >> 16) in (0, stat.S_IFREG):
                with archive.open(member) as source:
                    _write(source, destination, member.filename, budget)
            else:
                raise _refuse(f"The archive member {member.filename!r} is a link or a device, not a file.",
                              code="archive_unsafe_member")


def _unpack_tar(data: bytes, root: Path, budget: _Budget) -> None:
    # Streaming mode reads each header once, in order: a limit stops the unpacking before the rest is inflated.
    with tarfile.open(fileobj=BytesIO(data), mode="r|*") as archive:
        for member in archive:
            budget.member()
            destination = _member_path(root, member.name)
            if member.isdir():
                destination.mkdir(parents=True, exist_ok=True)
            elif member.isreg():
                budget.expect(member.size)
                _write(archive.extractfile(member), destination, member.name, budget)
            else:
                raise _refuse(f"The archive member {member.name!r} is a link or a device, not a file.",
                              code="archive_unsafe_member")


def unpack_archive(data: bytes, filename: str, target: Path) -> None:
    """Unpack a .zip or .tar(.gz) upload into the new folder `target`; on any refusal nothing is left behind."""
    filename = filename.lower()
    if not filename.endswith(ARCHIVE_SUFFIXES):
        raise _refuse("Upload a .zip, .tar or .tar.gz archive.", code="archive_format")
    target.mkdir(parents=True, exist_ok=False)
    budget = _Budget(archive_bytes=len(data))
    try:
        if filename.endswith(".zip"):
            _unpack_zip(data, target.resolve(), budget)
        else:
            _unpack_tar(data, target.resolve(), budget)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError) as error:
        shutil.rmtree(target, ignore_errors=True)
        raise _refuse(f"The archive could not be unpacked: {error}", code="archive_invalid") from None
    except ApplicationError:
        shutil.rmtree(target, ignore_errors=True)
        raise
