"""Federated training jobs and the patients files they may name, for admins (the API checks the role)."""
from pathlib import Path

from django.conf import settings

from apps.medical.models import FederatedJob


def federated_job_list(*, limit: int = 20) -> list[FederatedJob]:
    """The latest federated jobs, newest first."""
    return list(FederatedJob.objects.select_related("model")[:limit])


def patients_dir() -> Path:
    """Where the patients files a job may name lie (the demo's demo_patients.csv is written there)."""
    return settings.SUITE_DATA_DIR / "medical"


def federated_patients_files() -> list[str]:
    """The patients files a job may name: the CSV files in patients_dir()."""
    folder = patients_dir()
    return sorted(path.name for path in folder.glob("*.csv") if path.is_file()) if folder.is_dir() else []
