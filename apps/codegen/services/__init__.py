"""Writes of the codegen app: repositories, their indexing, completions and their telemetry."""
from apps.codegen.services.completions import CompletionResult, completion_create, completion_event_record
from apps.codegen.services.indexing import FOLDER_NOT_ALLOWED, folder_allowed, repository_index
from apps.codegen.services.repositories import (repository_delete, repository_register_archive,
                                                repository_register_folder, repository_register_trusted_folder,
                                                repository_reindex, repository_update)

__all__ = [
    "FOLDER_NOT_ALLOWED", "CompletionResult", "completion_create", "completion_event_record", "folder_allowed",
    "repository_delete", "repository_index", "repository_register_archive", "repository_register_folder",
    "repository_register_trusted_folder", "repository_reindex", "repository_update",
]
