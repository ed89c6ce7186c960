"""The admin shows what indexing derived from a repository without letting anyone edit it."""
from apps.codegen.models import Repository, SourceFile


def test_the_admin_shows_a_repository_and_refuses_edits_to_its_indexed_files(admin_client):
    repository = Repository.objects.create(name="shop", path="/nowhere")
    record = SourceFile.objects.create(repository=repository, path="shop/models.py", language="python",
                                       content_hash="0" * 64)

    listing = admin_client.get("/admin/codegen/repository/")
    edit = admin_client.post(f"/admin/codegen/sourcefile/{record.id}/change/", {"path": "elsewhere.py"})
    add = admin_client.get("/admin/codegen/repository/add/")

    assert listing.status_code == 200 and b"shop" in listing.content
    assert (edit.status_code, add.status_code) == (403, 403)
    assert SourceFile.objects.get(id=record.id).path == "shop/models.py"


def test_sharing_a_repository_in_the_admin_changes_only_its_sharing(admin_client):
    repository = Repository.objects.create(name="shop", path="/nowhere")

    admin_client.post(f"/admin/codegen/repository/{repository.id}/change/", {"shared": "on", "path": "/etc"})

    repository.refresh_from_db()
    assert (repository.shared, repository.path) == (True, "/nowhere")
