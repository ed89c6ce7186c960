"""Reads of the medical app. Who may see a case is decided here, once, for the API and the console.

A case is visible to the clinician who created it and to those they shared it with. An admin may
open anyone's case only by stating a reason ("break-glass"): each such access is audited with the
admin, the case and the reason. Everyone else, and an admin without a reason, is told the case
does not exist (a 404), exactly as for an id that was never used.
"""
from django.db.models import Q, QuerySet

from apps.accounts.roles import Role
from apps.core.errors import ApplicationError, NotFoundError
from apps.medical.deidentify import deidentify
from apps.medical.models import AuditEvent, Case

MAX_ID = 2**63 - 1  # the largest BigAutoField value; a larger id would be a database error, not a 404
MAX_REASON_CHARS = 500
BREAK_GLASS = "case.break_glass"


def case_list_for_user(*, user) -> QuerySet[Case]:
    """The cases `user` created or that were shared with them (never others', even for an admin)."""
    return Case.objects.filter(Q(clinician=user) | Q(shares__clinician=user)).distinct()


def _case_id(case_id) -> int:
    """A case number is ASCII digits within the id column's range; anything else matches no case."""
    text = str(case_id)
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_ID:
        raise NotFoundError("No such case.", field="case")
    return int(text)


def case_get_for_user(*, user, case_id, reason: str = "") -> Case:
    """The case, if `user` may see it; raises NotFoundError otherwise (unknown and hidden alike).

    An admin who gives a `reason` gets anyone's case, and the access is recorded in the audit log
    (the reason de-identified, like every free text the log holds) before the case is returned, so
    no caller can forget to record it."""
    found = Case.objects.select_related("clinician").filter(id=_case_id(case_id)).first()
    if found is None:
        raise NotFoundError("No such case.", field="case")
    if found.clinician_id == user.id or found.shares.filter(clinician=user).exists():
        return found
    reason = (reason or "").strip()
    if user.role != Role.ADMIN or not reason:
        raise NotFoundError("No such case.", field="case")
    if len(reason) > MAX_REASON_CHARS or not reason.isprintable():
        raise ApplicationError(message=f"reason: one line of at most {MAX_REASON_CHARS} printable characters.",
                               status=422, code="invalid", field="reason")
    AuditEvent.objects.create(actor=user, action=BREAK_GLASS, case=found, details={"reason": deidentify(reason)})
    return found

