import copy
import json
from pathlib import Path

import pytest

from apps.accounts.roles import Role
from apps.medical.diagnosis import DiagnosisEngine, read_patients
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


@pytest.fixture(scope="session")
def trained_engines():
    """Engines trained in this session, by what they were trained on (DiagnosisEngine.train is pure)."""
    return {}


@pytest.fixture
def ddxplus_model(ddxplus_kb, trained_engines, monkeypatch):
    """A model trained on DDXPlus's 2,000 development patients, through the real service. The training
    itself (about 15 s) runs once per session: later tests get a copy of the same engine."""
    train = DiagnosisEngine.train

    def train_once(patients, specs, conditions, **options):
        key = (tuple((p.age, p.sex, tuple(p.evidence), p.pathology) for p in patients), tuple(specs),
               tuple(sorted(conditions.items())), tuple(sorted(options.items())))
        if key not in trained_engines:
            trained_engines[key] = train(patients, specs, conditions, **options)
        engine, metrics = trained_engines[key]
        return copy.deepcopy(engine), copy.deepcopy(metrics)

    monkeypatch.setattr(DiagnosisEngine, "train", train_once)
    return diagnosis_model_train(patients_path=DDXPLUS / "patients_dev.csv", source="ddxplus", activate=True)


@pytest.fixture
def api(client, clinician):
    """The test client, logged in as `clinician`."""
    client.force_login(clinician)
    return client


@pytest.fixture
def patient():
    """The first DDXPlus development patient."""
    return read_patients(DDXPLUS / "patients_dev.csv")[0]


clinician = user_fixture("clinician", Role.CLINICIAN)
colleague = user_fixture("colleague", Role.CLINICIAN)
admin = user_fixture("admin", Role.ADMIN)


@pytest.fixture
def case(clinician):
    """A case of `clinician`'s, made directly (no diagnosis model needed to test who sees it)."""
    from apps.medical.models import Case

    return Case.objects.create(clinician=clinician, age=54, sex="F", evidence=["E_91"], note="[NAME], fever.")
