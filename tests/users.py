"""Test users, declared in one line each:

    alice = user_fixture("alice", Role.SUPPORT_AGENT)  # the fixture `alice`, a support agent
"""
import pytest


def password_for(username: str) -> str:
    """The password a `user_fixture` user has (long enough for the password validators)."""
    return f"pw-{username}-12345"


def user_fixture(username: str, role):
    """A fixture that creates the user `username` with `role` and the password `password_for(username)`."""

    @pytest.fixture
    def user(db):
        from apps.accounts.services import user_create

        return user_create(username=username, password=password_for(username), role=role)

    return user
