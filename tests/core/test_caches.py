import threading

import pytest

from apps.core.caches import VersionedCache, path_stamp


class Loaded:
    """A value loaded from disk, telling one load from another."""

    def __init__(self, name: str):
        self.name = name


def test_the_cache_returns_the_same_object_while_the_version_holds():
    cache = VersionedCache()
    loads = []

    first = cache.get(1, (1, "stamp"), lambda: loads.append("kb 1") or Loaded("kb 1"))
    again = cache.get(1, (1, "stamp"), lambda: loads.append("kb 1") or Loaded("kb 1"))

    assert again is first
    assert loads == ["kb 1"]


@pytest.mark.parametrize("identity, version, entries", [
    (1, 2, 1),  # the same knowledge base, reindexed: its old index is replaced
    (2, 1, 2),  # another knowledge base at the same version: both are kept
])
def test_a_new_version_or_another_identity_loads_its_own_value(identity, version, entries):
    cache = VersionedCache()
    first = cache.get(1, 1, lambda: Loaded("kb 1 version 1"))

    second = cache.get(identity, version, lambda: Loaded(f"kb {identity} version {version}"))

    assert (first.name, second.name) == ("kb 1 version 1", f"kb {identity} version {version}")
    assert cache.get(identity, version, lambda: Loaded("not loaded")) is second
    assert len(cache) == entries


def test_the_least_recently_used_identity_is_dropped_beyond_the_bound():
    cache = VersionedCache(max_entries=2)
    one = cache.get(1, 1, lambda: Loaded("kb 1"))
    cache.get(2, 1, lambda: Loaded("kb 2"))
    cache.get(1, 1, lambda: Loaded("not loaded"))  # 1 is now the most recently used

    cache.get(3, 1, lambda: Loaded("kb 3"))

    assert len(cache) == 2
    assert cache.get(1, 1, lambda: Loaded("not loaded")) is one
    assert cache.get(2, 1, lambda: Loaded("kb 2 again")).name == "kb 2 again"


def test_threads_asking_for_a_new_version_at_once_load_it_once():
    cache = VersionedCache()
    loads = []
    gate = threading.Barrier(8)

    def load():
        loads.append(1)
        return Loaded("index")

    def ask(results):
        gate.wait()
        results.append(cache.get(1, 1, load))

    results: list[Loaded] = []
    threads = [threading.Thread(target=ask, args=(results,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert loads == [1]
    assert len(results) == 8 and all(result is results[0] for result in results)


def test_a_file_written_again_at_the_same_path_gets_a_new_stamp(tmp_path):
    """What a rebuilt database does: the same id and version number, the artefact written again."""
    artefact = tmp_path / "v1.joblib"
    artefact.write_text("trained on the first database")
    first = path_stamp(artefact)
    replacement = tmp_path / "v1.new.joblib"
    replacement.write_text("trained on the second one")

    replacement.replace(artefact)

    assert path_stamp(artefact) != first
    assert path_stamp(tmp_path / "missing") is None
