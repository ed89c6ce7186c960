import json
from pathlib import Path

import pytest

from apps.medical.services import diagnosis_model_train, knowledge_base_import

DDXPLUS = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "ddxplus"


@pytest.fixture(autouse=True)
def suite_data_dir(settings, tmp_path):
    settings.SUITE_DATA_DIR = tmp_path / "data"


@pytest.fixture
def ddxplus_kb(db):
    return knowledge_base_import(evidences=json.loads((DDXPLUS / "release_evidences.json").read_text()),
                                 conditions=json.loads((DDXPLUS / "release_conditions.json").read_text()),
                                 source="ddxplus")


@pytest.fixture
def ddxplus_model(ddxplus_kb):
    """A model trained on DDXPlus's 2,000 development patients (a few seconds)."""
    return diagnosis_model_train(patients_path=DDXPLUS / "patients_dev.csv", source="ddxplus", activate=True)


@pytest.fixture
def clinician(make_user):
    from apps.accounts.roles import Role

    return make_user("clinician", Role.CLINICIAN)


@pytest.fixture
def colleague(make_user):
    from apps.accounts.roles import Role

    return make_user("colleague", Role.CLINICIAN)


@pytest.fixture
def admin(make_user):
    from apps.accounts.roles import Role

    return make_user("admin", Role.ADMIN)


@pytest.fixture
def case(clinician):
    """A case of `clinician`'s, made directly (no diagnosis model needed to test who sees it)."""
    from apps.medical.models import Case

    return Case.objects.create(clinician=clinician, age=54, sex="F", evidence=["E_91"], note="[NAME], fever.")
