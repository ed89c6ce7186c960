import pytest

from apps.accounts.roles import Role
from apps.accounts.services import user_create

USERNAMES = {Role.SUPPORT_AGENT: "support", Role.DEVELOPER: "developer", Role.CLINICIAN: "clinician",
             Role.ADMIN: "admin"}


@pytest.fixture
def users(db):
    """One user per role, keyed by username."""
    return {name: user_create(username=name, password="pw-for-tests-123", role=role)
            for role, name in USERNAMES.items()}
