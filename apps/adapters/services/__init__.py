"""Writes of the adapters app: datasets, training jobs, the evaluation gate, promotion to serving
(merged into the base weights by a Celery job).

torch and peft are imported only where a worker trains or evaluates (inside `adapter_job_run` and `adapter_merge`), so
a web process that queues jobs and promotes adapters never loads them."""
from apps.adapters.services.datasets import (DATASET_SOURCES, dataset_build, dataset_from_knowledge_base,
                                             dataset_from_medical_cases, dataset_from_repository,
                                             dataset_from_suggestions, dataset_upload)
from apps.adapters.services.jobs import (ADAPTER_NAME_PATTERN, LOSS_CURVE_POINTS, PROGRESS_EVERY_S, JobBusy,
                                         adapter_job_run, base_checkpoint, job_cancel, job_config, job_start)
from apps.adapters.services.serving import (GateRefused, adapter_merge, adapter_promote, adapter_retire,
                                            adapters_sync)

__all__ = ["ADAPTER_NAME_PATTERN", "DATASET_SOURCES", "LOSS_CURVE_POINTS", "PROGRESS_EVERY_S", "GateRefused", "JobBusy",
           "adapter_job_run", "adapter_merge", "adapter_promote", "adapter_retire", "adapters_sync", "base_checkpoint",
           "dataset_build", "dataset_from_knowledge_base", "dataset_from_medical_cases", "dataset_from_repository",
           "dataset_from_suggestions", "dataset_upload", "job_cancel", "job_config", "job_start"]
