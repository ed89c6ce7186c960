import json
import shutil

from apps.codegen import matching
from apps.codegen.completion import MODEL, REPOSITORY, Candidate, choose_candidate, ranked_candidates
from apps.codegen.indexing import index_directory, repository_continuations
from apps.codegen.matching import ARRAYS_FILE, BASE, LAYERS, Continuation, MatchIndex, same_file_continuations
from apps.codegen.models import Repository
from apps.codegen.services import repository_index

URL = "/api/codegen/v1/completions"


def test_the_longest_match_in_another_file_gives_the_rest_of_its_line():
    index = MatchIndex.build([
        ("a.py", "def area(shape):\n    return shape.width * shape.height\n"),
        ("b.py", "def volume(shape):\n    return shape.width * shape.depth\n"),
    ])

    found = index.continuations("def area(shape):\n    return shape.width", exclude_filepath="c.py")

    assert found == [Continuation(" * shape.height", 10, 1, "a.py")]


def test_the_file_being_edited_is_left_out_of_the_repository_matches():
    index = MatchIndex.build([
        ("a.py", "def area(shape):\n    return shape.width * shape.height\n"),
        ("b.py", "def volume(shape):\n    return shape.width * shape.depth\n"),
    ])

    found = index.continuations("def area(shape):\n    return shape.width", exclude_filepath="a.py")

    assert found == [Continuation(" * shape.depth", 8, 1, "b.py")]


def test_a_word_the_cursor_is_in_is_completed_and_a_line_start_gets_the_next_line():
    index = MatchIndex.build([("a.py", "if ready:\n    start_engine(now=True)\n")])

    assert index.continuations("if ready:\n    start_en")[0].text == "gine(now=True)"
    assert index.continuations("if ready:\n        ")[0].text == "start_engine(now=True)"


def test_an_earlier_occurrence_in_the_same_file_is_found():
    found = same_file_continuations("def a(x):\n    return x + 1\n\n\ndef b(x):\n    return x + ")

    assert found == [Continuation("1", 8, 1, "")]


def test_a_repository_continuation_of_a_long_match_is_tried_before_the_model_samples():
    continuations = [Continuation(" * shape.height", 8, 1, "a.py"), Continuation(" + 1", 1, 9, "b.py")]

    ranked = ranked_candidates(continuations, ("(", " * 2"), multiline=False)

    assert ranked == [Candidate(" * shape.height", REPOSITORY, 8, 1, "a.py"), Candidate("(", MODEL),
                      Candidate(" * 2", MODEL)]
    text, action, attempts = choose_candidate(ranked, language="python", prefix="y = shape.width", suffix="\n",
                                              multiline=False)
    assert (text, action, attempts[-1]["source"]) == (" * shape.height", "accepted", REPOSITORY)


def test_reindexing_updates_the_repository_matches(indexed_repository, repository_copy):
    prefix = "def restock(book):\n    book.receive_all("
    before = repository_continuations(indexed_repository, prefix, "inventory/new.py")
    (repository_copy / "inventory" / "restock.py").write_text(
        "def refill(book, sku):\n    book.receive_all(sku, \"main\")\n")

    repository_index(repository_id=indexed_repository.id)
    indexed_repository.refresh_from_db()

    after = repository_continuations(indexed_repository, prefix, "inventory/new.py")
    assert max(c.match_tokens for c in before) == 1  # only the "(" matches
    assert after[0] == Continuation('sku, "main")', 7, 1, "inventory/restock.py")


def test_a_repository_continuation_is_served_without_asking_the_model(client, bearer, scripted_model_service,
                                                                indexed_repository):
    scripted_model_service.text = "levels()]"
    body = {"language": "python", "repository": indexed_repository.id, "debug_options": {"return_snippets": True},
            "segments": {"prefix": "def check(book, products):\n    return [product for product in products if book.",
                         "suffix": "\n", "filepath": "inventory/check.py"}}

    data = client.post(URL, body, content_type="application/json", **bearer).json()
    off = client.post(URL, {**body, "debug_options": {"return_snippets": True, "disable_repository_candidates": True}},
                      content_type="application/json", **bearer).json()

    assert data["choices"][0]["text"] == "total_quantity(product.sku) < threshold]"
    assert (data["debug_data"]["source"], data["debug_data"]["model_called"]) == (REPOSITORY, False)
    assert data["debug_data"]["candidates"][0]["filepath"] == "inventory/stock.py"
    assert (off["choices"][0]["text"], off["debug_data"]["source"]) == ("levels()]", MODEL)
    assert [request["stop"] for request in scripted_model_service.requests] == [["\n"]]  # only the second asked


def test_consecutive_completions_ask_model_service_for_its_models_once(client, bearer, scripted_model_service):
    body = {"language": "python", "segments": {"prefix": "x = ", "suffix": "\n"}}

    for _ in range(3):
        client.post(URL, body, content_type="application/json", **bearer)

    assert (len(scripted_model_service.requests), scripted_model_service.models_asked) == (3, 1)


def package_with_three_functions(repository_copy) -> Repository:
    package = repository_copy / "inventory"
    (package / "margins.py").write_text("def margin(item):\n    return item.price - item.cost\n")
    (package / "rebates.py").write_text("def rebate(order):\n    return order.total * 0.05\n")
    (package / "parcels.py").write_text("def weight(parcel):\n    return parcel.mass + parcel.box\n")
    repository = Repository.objects.create(name="inventory", path=str(repository_copy))
    return repository


def found_in(repository: Repository, prefix: str) -> list[tuple[str, str]]:
    repository.refresh_from_db()
    return [(c.text, c.filepath) for c in repository_continuations(repository, prefix, "inventory/new.py")]


def test_an_incremental_reindex_updates_matches(db, repository_copy):
    repository = package_with_three_functions(repository_copy)
    first = repository_index(repository_id=repository.id)
    base = index_directory(repository.id) / BASE / ARRAYS_FILE
    base_inode = base.stat().st_ino
    (repository_copy / "inventory" / "margins.py").write_text("def margin(item):\n    return item.price - item.discount\n")
    (repository_copy / "inventory" / "rebates.py").unlink()

    second = repository_index(repository_id=repository.id)

    assert (first["match_index"], second["match_index"]) == ("base", "delta")
    assert base.stat().st_ino == base_inode  # the same base file, linked into the new index: not rebuilt
    assert found_in(repository, "def margin(item):\n    return item.price - item.") == [
        ("discount", "inventory/margins.py")]
    assert ("total * 0.05", "inventory/rebates.py") not in found_in(repository, "def rebate(order):\n    return order.")
    assert found_in(repository, "def weight(parcel):\n    return parcel.mass + parcel.") == [
        ("box", "inventory/parcels.py")]


def test_a_file_changed_twice_is_found_only_as_it_is_now(db, repository_copy):
    repository = package_with_three_functions(repository_copy)
    repository_index(repository_id=repository.id)
    margins = repository_copy / "inventory" / "margins.py"
    for cost in ("discount", "rebate_total"):
        margins.write_text(f"def margin(item):\n    return item.price - item.{cost}\n")
        result = repository_index(repository_id=repository.id)

    assert result["match_index"] == "delta"
    assert found_in(repository, "def margin(item):\n    return item.price - item.") == [
        ("rebate_total", "inventory/margins.py")]


def test_a_delta_past_its_share_of_the_base_is_merged_into_a_new_base(db, repository_copy, monkeypatch):
    repository = package_with_three_functions(repository_copy)
    repository_index(repository_id=repository.id)
    monkeypatch.setattr(matching, "MERGE_SHARE", 0.0)
    (repository_copy / "inventory" / "margins.py").write_text("def margin(item):\n    return item.price - item.tax\n")

    result = repository_index(repository_id=repository.id)

    layers = json.loads((index_directory(repository.id) / LAYERS).read_text())
    assert result["match_index"] == "base"
    assert (layers["masked"], layers["delta_paths"]) == ([], [])
    assert found_in(repository, "def margin(item):\n    return item.price - item.") == [("tax", "inventory/margins.py")]


def test_an_index_written_before_the_layers_still_serves_its_matches(db, repository_copy):
    repository = package_with_three_functions(repository_copy)
    repository_index(repository_id=repository.id)
    directory = index_directory(repository.id)
    MatchIndex.build([("inventory/margins.py", (repository_copy / "inventory" / "margins.py").read_text())]).save(
        directory)  # the single-index layout of an earlier release, in place of the layers
    shutil.rmtree(directory / BASE)
    (directory / LAYERS).unlink()
    Repository.objects.filter(id=repository.id).update(index_version=repository.index_version + 1)  # not cached

    assert found_in(repository, "def margin(item):\n    return item.price - item.") == [
        ("cost", "inventory/margins.py")]
    assert repository_index(repository_id=repository.id)["match_index"] == "base"  # the next reindex layers it
