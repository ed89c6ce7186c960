import shutil
from pathlib import Path

import pytest

from apps.accounts.roles import Role
from apps.accounts.services import api_token_create
from apps.codegen.models import Repository
from apps.codegen.services import repository_index
from tests.codegen.stand_ins import scripted_model_service  # noqa: F401 (a fixture)
from tests.users import user_fixture

DEMO_REPOSITORY = Path("apps/codegen/demo/repository").resolve()

developer = user_fixture("dev", Role.DEVELOPER)


@pytest.fixture
def bearer(developer):
    """An IDE (completion-scope) token of the developer, as an Authorization header."""
    return {"HTTP_AUTHORIZATION": f"Bearer {api_token_create(user=developer, name='ide').secret}"}


@pytest.fixture(autouse=True)
def suite_data_dir(settings, tmp_path):
    settings.SUITE_DATA_DIR = tmp_path / "data"


@pytest.fixture
def repository_copy(tmp_path) -> Path:
    target = tmp_path / "repository"
    shutil.copytree(DEMO_REPOSITORY, target)
    return target


@pytest.fixture
def indexed_repository(db, repository_copy) -> Repository:
    repository = Repository.objects.create(name="inventory", path=str(repository_copy),
                                           git_url="https://git.example/inventory.git", shared=True)
    repository_index(repository_id=repository.id)
    repository.refresh_from_db()
    return repository
