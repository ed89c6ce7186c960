"""The audit log is append-only in the database itself: PostgreSQL (the tests' database) and SQLite
(the `make run` default) refuse to change or remove its rows, whatever the application does."""
import os
import sqlite3
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.db import ProgrammingError, connection, transaction

from apps.medical.models import AuditEvent

ROOT = Path(__file__).resolve().parents[2]
INSERT = "INSERT INTO medical_auditevent (action, details, created_at) VALUES ('case.view', '{}', '2026-01-01')"


def test_the_application_cannot_change_or_delete_an_event(clinician):
    event = AuditEvent.objects.create(actor=clinician, action="case.view")

    with pytest.raises(PermissionDenied):
        event.details = {"tampered": True}
        event.save()
    with pytest.raises(PermissionDenied):
        event.delete()


def test_postgresql_refuses_bulk_update_delete_and_truncate(clinician):
    event = AuditEvent.objects.create(actor=clinician, action="case.view")

    with pytest.raises(ProgrammingError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(id=event.id).update(action="edited")
    with pytest.raises(ProgrammingError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(id=event.id).delete()
    with pytest.raises(ProgrammingError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        # the test database lets transactional tests empty it (tests/conftest.py); production never does
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending foreign-key check may block the ALTER
        cursor.execute("ALTER TABLE medical_auditevent ENABLE TRIGGER medical_audit_no_truncate")
        cursor.execute("TRUNCATE medical_auditevent CASCADE")
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["case.view"]


def test_sqlite_refuses_bulk_update_and_delete_after_migrate(tmp_path):
    database = tmp_path / "suite.sqlite3"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": f"sqlite:///{database}"}
    subprocess.run([sys.executable, "manage.py", "migrate", "medical", "--verbosity", "0"], cwd=ROOT, env=env,
                   check=True, timeout=300)
    sqlite = sqlite3.connect(database)
    sqlite.execute(INSERT)
    sqlite.commit()

    with pytest.raises(sqlite3.IntegrityError, match="the medical audit log is append-only"):
        sqlite.execute("UPDATE medical_auditevent SET action = 'edited'")
    with pytest.raises(sqlite3.IntegrityError, match="the medical audit log is append-only"):
        sqlite.execute("DELETE FROM medical_auditevent")
    assert sqlite.execute("SELECT action FROM medical_auditevent").fetchall() == [("case.view",)]


def test_the_lockdown_prints_the_grants_for_the_app_role(db):
    out = StringIO()

    call_command("medical_audit_lockdown", app_role="suite_app", owner_role="suite_owner", stdout=out)

    assert out.getvalue().splitlines() == [
        'ALTER TABLE medical_auditevent OWNER TO "suite_owner";',
        'REVOKE ALL ON medical_auditevent FROM PUBLIC, "suite_app";',
        'GRANT SELECT, INSERT ON medical_auditevent TO "suite_app";']


def test_after_the_lockdown_the_app_role_may_only_read_and_append(db):
    role = f"medical_app_{connection.settings_dict['NAME']}"  # roles are per server; the test rolls it back
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE ROLE "{role}"')
        cursor.execute(f'GRANT ALL ON ALL TABLES IN SCHEMA public TO "{role}"')  # as a careless setup would

    call_command("medical_audit_lockdown", app_role=role, apply=True, stdout=StringIO())

    with connection.cursor() as cursor:
        cursor.execute(f'SET ROLE "{role}"')
        try:
            cursor.execute(INSERT)
            cursor.execute("SELECT count(*) FROM medical_auditevent")
            assert cursor.fetchone() == (1,)
            for statement in ("UPDATE medical_auditevent SET action = 'edited'", "DELETE FROM medical_auditevent",
                              "TRUNCATE medical_auditevent", "ALTER TABLE medical_auditevent DISABLE TRIGGER ALL"):
                with pytest.raises(ProgrammingError, match="permission denied|must be owner"), transaction.atomic():
                    cursor.execute(statement)
        finally:
            cursor.execute("RESET ROLE")


@pytest.mark.parametrize("options,message", [
    ({"app_role": "postgres", "owner_role": "postgres"}, "must not own the audit table"),
    ({"app_role": "app; DROP TABLE x", "owner_role": "postgres"}, "not a plain PostgreSQL role name"),
])
def test_the_lockdown_refuses_an_owning_or_odd_role(db, options, message):
    with pytest.raises(Exception, match=message):
        call_command("medical_audit_lockdown", **options, stdout=StringIO())
