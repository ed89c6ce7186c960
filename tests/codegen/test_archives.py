import io
import stat
import tarfile
import zipfile

import pytest

from apps.codegen.archives import unpack_archive
from apps.core.errors import ApplicationError


def zip_of(files: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def tar_of(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for info, data in members:
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data) if data else None)
    return buffer.getvalue()


def tar_member(name: str, kind=tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def refusal(data: bytes, filename: str, target) -> ApplicationError:
    with pytest.raises(ApplicationError) as raised:
        unpack_archive(data, filename, target)
    assert not target.exists()  # nothing is left half-unpacked
    return raised.value


def test_a_zip_and_a_tar_gz_unpack_into_the_target(tmp_path):
    unpack_archive(zip_of({"pkg/a.py": b"x = 1\n"}), "repo.ZIP", tmp_path / "zip")
    unpack_archive(tar_of((tar_member("pkg/b.py"), b"y = 2\n")), "repo.tar.gz", tmp_path / "tar")

    assert (tmp_path / "zip" / "pkg" / "a.py").read_text() == "x = 1\n"
    assert (tmp_path / "tar" / "pkg" / "b.py").read_text() == "y = 2\n"


@pytest.mark.parametrize("name", ["../escape.py", "pkg/../../escape.py", "/tmp/escape.py", "..\\escape.py"])
def test_members_outside_the_target_refuse_the_archive(tmp_path, name):
    for data, filename in ((zip_of({name: b"boom"}), "repo.zip"), (tar_of((tar_member(name), b"boom")), "r.tgz")):
        error = refusal(data, filename, tmp_path / "target")

        assert (error.status, error.code, error.field) == (400, "archive_unsafe_member", "archive")
        assert error.message == f"The archive member {name!r} points outside the repository."
    assert not (tmp_path / "escape.py").exists()


@pytest.mark.parametrize("kind,linkname", [(tarfile.SYMTYPE, "/etc/passwd"), (tarfile.LNKTYPE, "pkg/a.py"),
                                           (tarfile.CHRTYPE, ""), (tarfile.FIFOTYPE, "")])
def test_tar_links_and_devices_refuse_the_archive(tmp_path, kind, linkname):
    data = tar_of((tar_member("pkg/a.py"), b"x = 1\n"), (tar_member("pkg/link.py", kind, linkname), b""))

    error = refusal(data, "repo.tar.gz", tmp_path / "target")

    assert (error.status, error.code) == (400, "archive_unsafe_member")
    assert error.message == "The archive member 'pkg/link.py' is a link or a device, not a file."


def test_a_zip_symlink_member_refuses_the_archive(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        link = zipfile.ZipInfo("secrets.py")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/shadow")

    error = refusal(buffer.getvalue(), "repo.zip", tmp_path / "target")

    assert error.message == "The archive member 'secrets.py' is a link or a device, not a file."


def test_a_zip_bomb_is_refused_by_its_compression_ratio(tmp_path, settings):
    settings.CODEGEN_ARCHIVE_MAX_UNPACKED_BYTES = 10**9
    bomb = zip_of({"big.py": b"0" * 20_000_000})  # about 20 KB unpacking to 20 MB, as reported

    error = refusal(bomb, "bomb.zip", tmp_path / "target")

    assert len(bomb) < 30_000
    assert (error.status, error.code) == (413, "archive_compression_ratio")
    assert error.message == ("The archive unpacks to more than 100 times its size (CODEGEN_ARCHIVE_MAX_RATIO): "
                             "it looks like an archive bomb.")


def test_a_tar_gz_bomb_is_refused_before_it_is_inflated(tmp_path):
    bomb = tar_of((tar_member("big.py"), b"0" * 20_000_000))

    error = refusal(bomb, "bomb.tar.gz", tmp_path / "target")

    assert error.code == "archive_compression_ratio"


def test_the_unpacked_size_is_bounded(tmp_path, settings):
    settings.CODEGEN_ARCHIVE_MAX_UNPACKED_BYTES = 1_000
    data = zip_of({"a.py": bytes(range(256)) * 4, "b.py": bytes(range(256)) * 4}, compression=zipfile.ZIP_STORED)

    error = refusal(data, "repo.zip", tmp_path / "target")

    assert (error.status, error.code) == (413, "archive_too_large_unpacked")
    assert error.message == "The archive unpacks to more than 1,000 bytes (CODEGEN_ARCHIVE_MAX_UNPACKED_BYTES)."


def test_the_member_count_is_bounded(tmp_path, settings):
    settings.CODEGEN_ARCHIVE_MAX_MEMBERS = 10
    files = {f"m{i}.py": b"x = 1\n" for i in range(11)}

    zip_error = refusal(zip_of(files), "repo.zip", tmp_path / "zip")
    tar_error = refusal(tar_of(*((tar_member(name), data) for name, data in files.items())), "repo.tgz",
                        tmp_path / "tar")

    assert (zip_error.status, zip_error.code) == (413, "archive_too_many_members")
    assert zip_error.message == tar_error.message == ("The archive has more than 10 members "
                                                      "(CODEGEN_ARCHIVE_MAX_MEMBERS).")


def test_a_member_named_twice_is_refused(tmp_path):
    data = tar_of((tar_member("a.py"), b"x = 1\n"), (tar_member("a.py"), b"x = 2\n"))

    error = refusal(data, "repo.tar.gz", tmp_path / "target")

    assert error.message == "The archive member 'a.py' clashes with another member."


def test_a_broken_or_unknown_archive_is_a_400_that_says_so(tmp_path):
    broken = refusal(b"not a zip at all", "repo.zip", tmp_path / "zip")
    unknown = refusal(b"x", "repo.rar", tmp_path / "rar")

    assert (broken.status, broken.code) == (400, "archive_invalid")
    assert broken.message.startswith("The archive could not be unpacked: ")
    assert (unknown.code, unknown.message) == ("archive_format", "Upload a .zip, .tar or .tar.gz archive.")
