"""Federated training jobs, for admins (the API checks the role)."""
from apps.medical.models import FederatedJob


def federated_job_list(*, limit: int = 20) -> list[FederatedJob]:
    """The latest federated jobs, newest first."""
    return list(FederatedJob.objects.select_related("model")[:limit])
