import pytest

from apps.core import index_dirs
from apps.core.caches import path_stamp
from apps.core.index_dirs import replace_directory, replace_file


def _write_index(content: str):
    def build(directory):
        (directory / "texts.json").write_text(content)
        (directory / "ids.json").write_text(content)
    return build


def _contents(directory) -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted(directory.iterdir())}


@pytest.fixture(params=["exchange", "two renames"])
def swap(request, monkeypatch):
    """Both ways of swapping: the atomic exchange (Linux) and the fallback of two renames."""
    if request.param == "two renames":
        monkeypatch.setattr(index_dirs, "_exchange", lambda first, second: False)
    return request.param


def test_a_first_index_is_written_whole(tmp_path, swap):
    target = tmp_path / "indexes" / "kb_1"

    replace_directory(target, _write_index("v1"))

    assert _contents(target) == {"ids.json": "v1", "texts.json": "v1"}
    assert sorted(path.name for path in target.parent.iterdir()) == ["kb_1"]


def test_readers_see_the_old_complete_index_until_the_new_one_is_swapped_in(tmp_path, swap):
    target = tmp_path / "kb_1"
    replace_directory(target, _write_index("v1"))
    seen_while_building = []

    def build(directory):
        (directory / "texts.json").write_text("v2")
        seen_while_building.append(_contents(target))  # a reader in the middle of the write
        (directory / "ids.json").write_text("v2")

    replace_directory(target, build)

    assert seen_while_building == [{"ids.json": "v1", "texts.json": "v1"}]
    assert _contents(target) == {"ids.json": "v2", "texts.json": "v2"}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["kb_1"]  # the old one removed


def test_a_writer_that_fails_halfway_leaves_the_old_index_and_no_staging(tmp_path, swap):
    target = tmp_path / "kb_1"
    replace_directory(target, _write_index("v1"))

    def build(directory):
        (directory / "texts.json").write_text("v2")
        raise RuntimeError("model_service went away")

    with pytest.raises(RuntimeError, match="model_service went away"):
        replace_directory(target, build)

    assert _contents(target) == {"ids.json": "v1", "texts.json": "v1"}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["kb_1"]


def test_leftovers_of_a_writer_that_died_are_not_part_of_the_next_index(tmp_path, swap):
    target = tmp_path / "kb_1"
    (tmp_path / "kb_1.new").mkdir()
    (tmp_path / "kb_1.new" / "half.json").write_text("killed mid-write")
    (tmp_path / "kb_1.old").mkdir()

    replace_directory(target, _write_index("v1"))

    assert _contents(target) == {"ids.json": "v1", "texts.json": "v1"}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["kb_1"]


def test_a_swapped_index_gets_a_new_stamp_for_the_caches(tmp_path, swap):
    target = tmp_path / "kb_1"
    replace_directory(target, _write_index("v1"))
    first = path_stamp(target)

    replace_directory(target, _write_index("v1"))

    assert path_stamp(target) != first


def test_a_file_is_replaced_whole_or_not_at_all(tmp_path):
    target = tmp_path / "models" / "v1.joblib"
    replace_file(target, lambda path: path.write_text("first"))

    def write(path):
        path.write_text("half of the sec")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        replace_file(target, write)

    assert target.read_text() == "first"
    assert sorted(path.name for path in target.parent.iterdir()) == ["v1.joblib"]
    replace_file(target, lambda path: path.write_text("second"))
    assert target.read_text() == "second"
    assert sorted(path.name for path in target.parent.iterdir()) == ["v1.joblib"]
