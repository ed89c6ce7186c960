import io
import tarfile
import zipfile

import pytest

from apps.codegen.indexing import chunk_search, code_tokens, repository_index, unpack_archive
from apps.codegen.models import Definition, Repository, SourceFile


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
    from apps.codegen.models import Chunk

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


def test_archives_unpack_and_refuse_paths_outside(tmp_path):
    good = io.BytesIO()
    with zipfile.ZipFile(good, "w") as archive:
        archive.writestr("pkg/a.py", "x = 1\n")
    unpack_archive(good.getvalue(), "repo.zip", tmp_path / "good")

    evil = io.BytesIO()
    with tarfile.open(fileobj=evil, mode="w:gz") as archive:
        data = b"boom"
        info = tarfile.TarInfo("../escape.py")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))

    assert (tmp_path / "good" / "pkg" / "a.py").read_text() == "x = 1\n"
    with pytest.raises(ValueError, match="outside the repository"):
        unpack_archive(evil.getvalue(), "repo.tar.gz", tmp_path / "evil")
    assert not (tmp_path / "escape.py").exists()
