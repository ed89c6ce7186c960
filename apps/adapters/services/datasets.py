"""Datasets: an uploaded JSONL file, or the training rows an app's selectors give of its own data."""
from __future__ import annotations

from typing import BinaryIO

from django.conf import settings
from django.db import transaction

from apps.adapters.datasets import ParsedDataset, parse_examples, parse_jsonl
from apps.adapters.models import AdapterDataset
from apps.core.errors import ApplicationError
from apps.core.limits import read_bounded

DATASET_SOURCES = ("knowledge_base", "suggestions", "repository", "medical_cases")


def _dataset_save(*, name: str, domain: str, origin: str, parsed: ParsedDataset, user) -> AdapterDataset:
    return AdapterDataset.objects.create(name=name, domain=domain, origin=origin, content_hash=parsed.content_hash,
                                         train_examples=parsed.train, validation_examples=parsed.validation,
                                         report=parsed.report, created_by=user)


@transaction.atomic
def dataset_upload(*, name: str, domain: str, filename: str, file: BinaryIO, user=None) -> AdapterDataset:
    """Read the JSONL `file` (stopping past ADAPTER_DATASET_MAX_BYTES: a 413) and keep its usable lines.
    Raises ApplicationError when the file as a whole is unusable; bad lines are only reported."""
    data = read_bounded(file, max_bytes=settings.ADAPTER_DATASET_MAX_BYTES)
    return _dataset_save(name=name, domain=domain, origin=f"upload:{filename}", parsed=parse_jsonl(data), user=user)


@transaction.atomic
def dataset_from_knowledge_base(*, knowledge_base, user=None) -> AdapterDataset:
    from apps.customer_service.selectors import knowledge_base_training_rows

    rows = knowledge_base_training_rows(knowledge_base=knowledge_base)
    return _dataset_save(name=f"{knowledge_base.name} (Q&A)", domain="customer_service",
                         origin=f"knowledge-base:{knowledge_base.id}", parsed=parse_examples(rows), user=user)


@transaction.atomic
def dataset_from_suggestions(*, user=None) -> AdapterDataset:
    """What agents sent after accepting or editing a suggestion, asked as the app asks the model."""
    from apps.customer_service.selectors import suggestion_training_rows

    return _dataset_save(name="Accepted suggestions", domain="customer_service", origin="suggestions",
                         parsed=parse_examples(suggestion_training_rows()), user=user)


@transaction.atomic
def dataset_from_repository(*, repository, user=None) -> AdapterDataset:
    from apps.codegen.selectors import repository_training_rows

    return _dataset_save(name=f"{repository.name} (code)", domain="codegen", origin=f"repository:{repository.id}",
                         parsed=parse_examples(repository_training_rows(repository=repository)), user=user)


@transaction.atomic
def dataset_from_medical_cases(*, user=None) -> AdapterDataset:
    """The latest computed summary of every case (never its free-text note); reading them is
    audited in the medical audit log, one event per case naming `user`."""
    from apps.medical.selectors import case_summary_training_rows

    rows = case_summary_training_rows(user=user, purpose="adapter dataset")
    return _dataset_save(name="Medical cases (summaries)", domain="medical", origin="medical-cases",
                         parsed=parse_examples(rows), user=user)


def dataset_build(*, source: str, object_id: int | None = None, user=None) -> AdapterDataset:
    """A dataset from the suite's own data; `object_id` names the knowledge base or repository (one
    `user` may read: NotFoundError otherwise). Raises ApplicationError for an unknown source or
    no usable example."""
    if source == "knowledge_base":
        from apps.customer_service.selectors import knowledge_base_get

        return dataset_from_knowledge_base(knowledge_base=knowledge_base_get(kb_id=object_id), user=user)
    if source == "repository":
        from apps.codegen.selectors import repository_get_for_user

        repository = repository_get_for_user(user=user, repository_id=object_id)
        return dataset_from_repository(repository=repository, user=user)
    if source == "suggestions":
        return dataset_from_suggestions(user=user)
    if source == "medical_cases":
        return dataset_from_medical_cases(user=user)
    raise ApplicationError(f"unknown source {source!r}: one of {', '.join(DATASET_SOURCES)}", field="source")
