"""Every upload is capped while it arrives (apps.core.limits.BoundedUploadHandler), in the APIs and the console:
a request far over the limit is refused after one chunk, never spooled whole to disk."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.accounts.roles import Role
from apps.adapters.models import AdapterDataset
from apps.core import limits
from apps.customer_service.services import knowledge_base_create
from tests.users import user_fixture

admin = user_fixture("upload-admin", Role.ADMIN)
LIMIT = 1_000
UPLOAD = b"x" * (4 * 2**20)  # 4 MiB against a 1,000-byte limit: Django reads it in 64 KiB chunks


@pytest.fixture
def received(monkeypatch):
    """The bytes the handler was given before it refused the upload."""
    seen = []
    original = limits.BoundedUploadHandler.receive_data_chunk

    def spy(self, raw_data, start):
        seen.append(len(raw_data))
        return original(self, raw_data, start)

    monkeypatch.setattr(limits.BoundedUploadHandler, "receive_data_chunk", spy)
    return seen


def upload_targets(settings):
    settings.CUSTOMER_SERVICE_IMPORT_MAX_BYTES = settings.ADAPTER_DATASET_MAX_BYTES = LIMIT
    kb = knowledge_base_create(name="Shop FAQ")
    return {
        "knowledge base import (API)": (f"/api/customer-service/v1/knowledge-bases/{kb.id}/import", "file",
                                        "CUSTOMER_SERVICE_IMPORT_MAX_BYTES"),
        "adapter dataset (API)": ("/api/adapters/v1/datasets", "file", "ADAPTER_DATASET_MAX_BYTES"),
        "knowledge base import (console)": (f"/console/customer-service/knowledge-bases/{kb.id}/import/", "file",
                                            "CUSTOMER_SERVICE_IMPORT_MAX_BYTES"),
        "adapter dataset (console)": ("/console/adapters/datasets/upload/", "file", "ADAPTER_DATASET_MAX_BYTES"),
    }


@pytest.mark.django_db
@pytest.mark.parametrize("target", ["knowledge base import (API)", "adapter dataset (API)"])
def test_an_api_upload_over_the_limit_is_a_413_after_one_chunk(client, admin, settings, received, target):
    url, field, setting = upload_targets(settings)[target]
    client.force_login(admin)

    response = client.post(url, {field: SimpleUploadedFile("big.jsonl", UPLOAD)})

    assert response.status_code == 413
    assert response.json() == {"detail": f"The {field} is larger than the limit of {LIMIT:,} bytes ({setting}).",
                               "code": "too_large", "field": field}
    assert sum(received) < 2 * 64 * 1024 < len(UPLOAD)
    assert not AdapterDataset.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("target", ["knowledge base import (console)", "adapter dataset (console)"])
def test_a_console_upload_over_the_limit_is_a_message_after_one_chunk(client, admin, settings, received, target):
    url, field, setting = upload_targets(settings)[target]
    client.force_login(admin)

    response = client.post(url, {field: SimpleUploadedFile("big.jsonl", UPLOAD)}, follow=True)

    assert response.status_code == 200
    assert f"The {field} is larger than the limit of {LIMIT:,} bytes ({setting})." in response.content.decode()
    assert sum(received) < 2 * 64 * 1024 < len(UPLOAD)


@pytest.mark.django_db
def test_the_console_upload_keeps_its_csrf_check(admin, settings):
    """The views are exempt from the middleware's CSRF check only to make it after the limit is set."""
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    url, field, _ = upload_targets(settings)["adapter dataset (console)"]

    response = client.post(url, {field: SimpleUploadedFile("small.jsonl", b'{"text": "a b c"}\n')})

    assert response.status_code == 403
    assert not AdapterDataset.objects.exists()
