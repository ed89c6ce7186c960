"""Registering repositories (server folders: admins, under the allowed roots; archives: anyone, bounded) and
who sees them (private to the owner unless shared; admins see all; anything else is a 404)."""
import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.accounts.roles import Role
from apps.codegen.models import Repository
from tests.codegen.conftest import DEMO_REPOSITORY
from tests.users import user_fixture

URL = "/api/codegen/v1/repositories"


developer = user_fixture("dev", Role.DEVELOPER)
other_developer = user_fixture("dev2", Role.DEVELOPER)
admin = user_fixture("boss", Role.ADMIN)


def as_user(client, user):
    client.force_login(user)
    return client


def demo_zip() -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(DEMO_REPOSITORY.rglob("*.py")):
            archive.write(path, str(path.relative_to(DEMO_REPOSITORY)))
    return SimpleUploadedFile("inventory.zip", buffer.getvalue(), content_type="application/zip")


def register_folder(client, path: str, name: str = "folder"):
    return client.post(URL, {"name": name, "path": path}, content_type="application/json")


def test_a_developer_may_not_register_a_server_folder(client, developer, settings, repository_copy):
    settings.CODEGEN_REPOSITORY_ROOTS = [str(repository_copy.parent)]

    response = register_folder(as_user(client, developer), str(repository_copy))

    assert response.status_code == 403
    assert response.json() == {"detail": "Only an admin may register a folder on the server; upload an archive "
                                         "(.zip, .tar.gz) instead.", "code": "admin_only", "field": "path"}
    assert not Repository.objects.exists()


def test_without_configured_roots_no_server_folder_is_allowed(client, admin, repository_copy):
    response = register_folder(as_user(client, admin), str(repository_copy))

    assert response.status_code == 400
    assert response.json()["code"] == "path_not_allowed"


@pytest.mark.parametrize("path", ["/etc", "/root", "~root", "config/settings", "{root}/../../etc", "{root}/missing",
                                  "{root}/escape"])
def test_folders_outside_the_roots_are_refused_alike_whether_they_exist_or_not(client, admin, settings, tmp_path,
                                                                               path):
    root = tmp_path / "code"
    root.mkdir()
    (root / "escape").symlink_to("/etc", target_is_directory=True)
    settings.CODEGEN_REPOSITORY_ROOTS = [str(root)]
    path = path.format(root=root)

    response = register_folder(as_user(client, admin), path)

    assert response.status_code == 400
    assert response.json() == {"detail": f"{path!r} is not a folder under the repository roots this server allows "
                                         "(CODEGEN_REPOSITORY_ROOTS).", "code": "path_not_allowed", "field": "path"}
    assert not Repository.objects.exists()


def test_an_admin_registers_a_folder_under_an_allowed_root(client, admin, settings, repository_copy):
    settings.CODEGEN_REPOSITORY_ROOTS = [str(repository_copy.parent)]

    response = register_folder(as_user(client, admin), str(repository_copy), name="inv")

    assert response.status_code == 201
    assert (response.json()["status"], response.json()["owner"], response.json()["shared"]) == ("pending", "boss",
                                                                                               False)
    assert Repository.objects.get(name="inv").path == str(repository_copy.resolve())


def test_a_developer_registers_an_archive_private_to_them(client, developer, settings):
    response = as_user(client, developer).post(URL, {"name": "inv", "archive": demo_zip()})

    repository = Repository.objects.get(name="inv")
    assert response.status_code == 201
    assert (repository.created_by, repository.shared) == (developer, False)
    unpacked = settings.SUITE_DATA_DIR / "codegen" / "repos" / f"repo_{repository.id}"
    assert (unpacked / "inventory" / "models.py").is_file()


def test_an_archive_bomb_is_a_413_that_says_so(client, developer):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.py", b"0" * 20_000_000)

    response = as_user(client, developer).post(URL, {"name": "bomb", "archive": SimpleUploadedFile(
        "bomb.zip", buffer.getvalue())})

    assert response.status_code == 413
    assert response.json()["code"] == "archive_compression_ratio"
    assert "archive bomb" in response.json()["detail"]
    assert not Repository.objects.exists()


def test_an_archive_member_outside_the_repository_is_a_400_that_names_it(client, developer):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../../config/settings/local.py", "DEBUG = True\n")

    response = as_user(client, developer).post(URL, {"name": "evil", "archive": SimpleUploadedFile(
        "evil.zip", buffer.getvalue())})

    assert response.status_code == 400
    assert response.json()["detail"] == ("The archive member '../../config/settings/local.py' points outside the "
                                         "repository.")


def test_an_upload_over_the_size_limit_is_a_413_while_it_is_received(client, developer, settings):
    settings.CODEGEN_ARCHIVE_MAX_BYTES = 1_000

    response = as_user(client, developer).post(URL, {"name": "big", "archive": SimpleUploadedFile(
        "big.zip", b"x" * 5_000)})

    assert response.status_code == 413
    assert response.json() == {"detail": "The archive is larger than the limit of 1,000 bytes "
                                         "(CODEGEN_ARCHIVE_MAX_BYTES).", "code": "too_large", "field": "archive"}


def test_another_developers_private_repository_is_not_found(client, developer, other_developer):
    private = Repository.objects.create(name="private", path="/nowhere", created_by=developer)
    as_user(client, other_developer)

    listed = client.get(URL).json()
    answers = [client.get(f"{URL}/{private.id}"), client.post(f"{URL}/{private.id}/reindex"),
               client.patch(f"{URL}/{private.id}", {"shared": True}, content_type="application/json"),
               client.delete(f"{URL}/{private.id}")]

    assert listed == []
    assert [answer.status_code for answer in answers] == [404, 404, 404, 404]
    assert answers[0].json() == {"detail": "No repository with this id.", "code": "not_found", "field": "repository"}
    assert Repository.objects.get(id=private.id).shared is False


def test_a_shared_repository_is_readable_by_every_developer_but_changed_by_its_owner_only(client, developer,
                                                                                          other_developer):
    shared = Repository.objects.create(name="shared", path="/nowhere", created_by=developer, shared=True)
    as_user(client, other_developer)

    listed = [repository["name"] for repository in client.get(URL).json()]
    detail = client.get(f"{URL}/{shared.id}")
    reindex = client.post(f"{URL}/{shared.id}/reindex")
    delete = client.delete(f"{URL}/{shared.id}")

    assert listed == ["shared"]
    assert (detail.status_code, detail.json()["owner"]) == (200, "dev")
    assert reindex.status_code == 202
    assert (delete.status_code, delete.json()["code"]) == (403, "not_owner")
    assert Repository.objects.filter(id=shared.id).exists()


def test_the_owner_shares_and_deletes_and_an_admin_sees_all(client, developer, admin):
    mine = Repository.objects.create(name="mine", path="/nowhere", created_by=developer)
    Repository.objects.create(name="theirs", path="/nowhere", created_by=admin)

    shared = as_user(client, developer).patch(f"{URL}/{mine.id}", {"shared": True}, content_type="application/json")
    seen_by_admin = [repository["name"] for repository in as_user(client, admin).get(URL).json()]
    deleted = as_user(client, developer).delete(f"{URL}/{mine.id}")

    assert (shared.status_code, shared.json()["shared"]) == (200, True)
    assert seen_by_admin == ["mine", "theirs"]
    assert deleted.status_code == 204 and not Repository.objects.filter(id=mine.id).exists()


def test_repository_names_are_unique_per_owner_so_they_reveal_nothing_of_others(client, developer,
                                                                                other_developer):
    Repository.objects.create(name="inv", path="/nowhere", created_by=other_developer)
    as_user(client, developer)

    first = client.post(URL, {"name": "inv", "archive": demo_zip()})
    again = client.post(URL, {"name": "inv", "archive": demo_zip()})

    assert first.status_code == 201
    assert (again.status_code, again.json()) == (400, {"detail": "You have a repository named 'inv' already.",
                                                       "code": "name_taken", "field": "name"})
    assert sorted(Repository.objects.values_list("name", "created_by__username")) == [
        ("inv", developer.username), ("inv", other_developer.username)]


def test_the_server_path_is_shown_to_admins_only(client, developer, admin):
    shared = Repository.objects.create(name="shop", path="/srv/code/shop", created_by=admin, shared=True)

    as_developer = [as_user(client, developer).get(URL).json()[0], client.get(f"{URL}/{shared.id}").json()]
    as_admin = [as_user(client, admin).get(URL).json()[0], client.get(f"{URL}/{shared.id}").json()]

    assert [answer["path"] for answer in as_developer] == [None, None]
    assert [answer["path"] for answer in as_admin] == ["/srv/code/shop", "/srv/code/shop"]
