from apps.accounts.roles import Role
from apps.accounts.services import user_create
from apps.codegen.indexing import chunk_search
from apps.codegen.parsing import code_tokens
from apps.codegen.services import FOLDER_NOT_ALLOWED, repository_index
from apps.codegen.models import Chunk, Definition, Repository, SourceFile


def test_indexing_stores_files_definitions_and_imports(indexed_repository):
    files = dict(SourceFile.objects.filter(repository=indexed_repository).values_list("path", "language"))

    assert files == {"inventory/__init__.py": "python", "inventory/models.py": "python",
                     "inventory/pricing.ts": "typescript", "inventory/reports.py": "python",
                     "inventory/stock.py": "python"}
    assert indexed_repository.status == "ready"
    assert (indexed_repository.files_done, indexed_repository.files_total) == (5, 5)
    names = set(Definition.objects.filter(file__repository=indexed_repository).values_list("name", flat=True))
    assert {"Product", "format_price", "StockBook", "low_stock", "stock_report", "applyDiscount"} <= names
    stock = SourceFile.objects.get(repository=indexed_repository, path="inventory/stock.py")
    assert stock.imports == ["from collections import defaultdict", "from inventory.models import Product, StockLevel"]


def test_reindexing_parses_only_changed_files_and_drops_deleted_ones(indexed_repository, repository_copy):
    (repository_copy / "inventory" / "reports.py").write_text("def summary():\n    return 'ok'\n")
    (repository_copy / "inventory" / "pricing.ts").unlink()

    result = repository_index(repository_id=indexed_repository.id)

    assert (result["parsed"], result["unchanged"], result["removed"]) == (1, 3, 1)
    names = set(Definition.objects.filter(file__repository=indexed_repository).values_list("name", flat=True))
    assert "summary" in names and "stock_report" not in names and "applyDiscount" not in names


def test_chunk_search_finds_similar_code(indexed_repository):
    hits = chunk_search(indexed_repository, "book.total_quantity(product.sku) warehouse", k=3)

    assert hits
    assert "total_quantity" in Chunk.objects.get(id=hits[0][0]).text


def test_a_missing_folder_fails_the_index_with_a_reason(db, tmp_path):
    repository = Repository.objects.create(name="gone", path=str(tmp_path / "nowhere"))

    result = repository_index(repository_id=repository.id)

    repository.refresh_from_db()
    assert result["status"] == "failed"
    assert (repository.status, "is not a folder" in repository.error) == ("failed", True)


def test_code_tokens_split_identifiers():
    assert code_tokens("parseConfig(max_retries)") == ["parseconfig", "parse", "config", "max_retries", "max",
                                                        "retries"]


def test_links_out_of_the_repository_are_skipped_and_reported(db, repository_copy, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.py").write_text("PASSWORD = 'hunter2'\n")
    (repository_copy / "inventory" / "leak.py").symlink_to(outside / "secret.py")
    (repository_copy / "inventory" / "etc_settings.py").symlink_to("/etc/passwd")
    (repository_copy / "linked").symlink_to(outside, target_is_directory=True)
    (repository_copy / "inventory" / "alias.py").symlink_to(repository_copy / "inventory" / "models.py")
    repository = Repository.objects.create(name="links", path=str(repository_copy))

    result = repository_index(repository_id=repository.id)

    repository.refresh_from_db()
    paths = set(SourceFile.objects.filter(repository=repository).values_list("path", flat=True))
    assert result["status"] == "ready"
    assert "inventory/alias.py" in paths  # a link that stays inside is fine
    assert not {"inventory/leak.py", "inventory/etc_settings.py", "linked/secret.py"} & paths
    assert not Chunk.objects.filter(file__repository=repository, text__contains="hunter2").exists()
    assert repository.skipped == [
        {"path": "linked", "reason": "a link to a folder (not followed)"},
        {"path": "inventory/etc_settings.py", "reason": "a link that resolves outside the repository"},
        {"path": "inventory/leak.py", "reason": "a link that resolves outside the repository"},
    ]


def test_the_indexed_file_count_and_bytes_are_bounded(db, repository_copy, settings):
    settings.CODEGEN_INDEX_MAX_FILES = 3
    repository = Repository.objects.create(name="many", path=str(repository_copy))

    result = repository_index(repository_id=repository.id)

    repository.refresh_from_db()
    assert (result["status"], result["files"]) == ("ready", 3)
    assert SourceFile.objects.filter(repository=repository).count() == 3
    assert repository.skipped[-1]["reason"] == (
        "the index holds at most 3 files and 209,715,200 bytes (CODEGEN_INDEX_MAX_FILES, CODEGEN_INDEX_MAX_BYTES): "
        "this file and the rest were skipped")

    settings.CODEGEN_INDEX_MAX_FILES, settings.CODEGEN_INDEX_MAX_BYTES = 100, 10
    repository_index(repository_id=repository.id)

    assert SourceFile.objects.filter(repository=repository).count() == 0


def test_a_server_folder_a_developer_registered_is_never_read(db, repository_copy):
    developer = user_create(username="dev", password="pw-dev-12345", role=Role.DEVELOPER)
    repository = Repository.objects.create(name="etc", path=str(repository_copy), created_by=developer)

    result = repository_index(repository_id=repository.id)

    repository.refresh_from_db()
    assert (result["status"], repository.status) == ("failed", "failed")
    assert repository.error == FOLDER_NOT_ALLOWED
    assert not SourceFile.objects.filter(repository=repository).exists()
