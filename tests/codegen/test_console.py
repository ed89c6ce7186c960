"""The console's code-completion pages use the same rules as the API (frontend/codegen_views.py)."""
import io
import zipfile

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from apps.accounts.roles import Role
from apps.codegen.models import Repository
from tests.users import user_fixture


developer = user_fixture("dev", Role.DEVELOPER)
owner = user_fixture("owner", Role.DEVELOPER)


def small_zip() -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("pkg/a.py", "def answer():\n    return 42\n")
    return SimpleUploadedFile("pkg.zip", buffer.getvalue())


def flashed(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_pages_show_only_the_repositories_the_developer_may_read(client, developer, owner):
    Repository.objects.create(name="owners-secret", path="/x", created_by=owner, status="ready")
    Repository.objects.create(name="team-shared", path="/x", created_by=owner, shared=True, status="ready")
    client.force_login(developer)

    pages = [client.get(url).content.decode() for url in
             ("/console/codegen/", "/console/codegen/repositories/", "/console/codegen/playground/")]

    assert all("team-shared" in page and "owners-secret" not in page for page in pages)
    assert 'name="path"' not in pages[0]  # server folders are an admin's


def test_reindexing_another_developers_private_repository_is_a_404(client, developer, owner):
    private = Repository.objects.create(name="owners-secret", path="/x", created_by=owner)
    client.force_login(developer)

    assert client.post(f"/console/codegen/repositories/{private.id}/reindex/").status_code == 404


def test_the_console_registers_an_archive_and_refuses_a_folder_for_a_developer(client, developer):
    client.force_login(developer)

    uploaded = client.post("/console/codegen/repositories/register/", {"name": "pkg", "archive": small_zip(),
                                                                        "shared": "1"})
    folder = client.post("/console/codegen/repositories/register/", {"name": "etc", "path": "/etc"})

    assert flashed(uploaded) == ["Repository registered; indexing runs in the worker."]
    assert Repository.objects.get(name="pkg").shared is True
    assert flashed(folder)[-1:] == ["Only an admin may register a folder on the server; upload an archive "
                               "(.zip, .tar.gz) instead."]
    assert not Repository.objects.filter(name="etc").exists()


def test_an_oversized_console_upload_is_stopped_and_said_so(client, developer, settings):
    settings.CODEGEN_ARCHIVE_MAX_BYTES = 100
    client.force_login(developer)

    response = client.post("/console/codegen/repositories/register/", {"name": "big", "archive": small_zip()})

    assert response.status_code == 302
    assert flashed(response) == ["The archive is larger than the limit of 100 bytes (CODEGEN_ARCHIVE_MAX_BYTES)."]
    assert not Repository.objects.exists()


def test_console_registration_still_checks_the_csrf_token(developer):
    client = Client(enforce_csrf_checks=True)
    client.force_login(developer)

    response = client.post("/console/codegen/repositories/register/", {"name": "pkg", "archive": small_zip()})

    assert response.status_code == 403
    assert not Repository.objects.exists()
