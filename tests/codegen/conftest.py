import shutil
from pathlib import Path

import pytest

from apps.codegen.services import repository_index
from apps.codegen.models import Repository

DEMO_REPOSITORY = Path("apps/codegen/demo/repository").resolve()


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
