"""The one writer of the medical audit log (append-only: the database refuses changes and deletes)."""
from __future__ import annotations

from apps.medical.models import AuditEvent, Case


def audit_event_create(*, actor, action: str, case: Case | None = None, model_version: int | None = None,
                       **details) -> AuditEvent:
    """Record that `actor` did `action` (to `case`, with `model_version`); `details` never holds free text
    that was not de-identified."""
    return AuditEvent.objects.create(actor=actor, action=action, case=case, model_version=model_version,
                                     details=details)
