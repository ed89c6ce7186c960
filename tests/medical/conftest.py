import json
from pathlib import Path

import pytest

from apps.accounts.roles import Role
from apps.medical.services import diagnosis_model_train, knowledge_base_import
from tests.users import user_fixture

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


clinician = user_fixture("clinician", Role.CLINICIAN)
colleague = user_fixture("colleague", Role.CLINICIAN)
admin = user_fixture("admin", Role.ADMIN)


@pytest.fixture
def case(clinician):
    """A case of `clinician`'s, made directly (no diagnosis model needed to test who sees it)."""
    from apps.medical.models import Case

    return Case.objects.create(clinician=clinician, age=54, sex="F", evidence=["E_91"], note="[NAME], fever.")
