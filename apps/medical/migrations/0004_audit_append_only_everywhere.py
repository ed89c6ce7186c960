"""The audit log is append-only on every supported database, not only through the ORM.

PostgreSQL: 0002's row trigger refuses UPDATE and DELETE; this adds a statement-level trigger that
refuses TRUNCATE (which fires no row trigger). SQLite (the `make run` default): BEFORE UPDATE and
BEFORE DELETE triggers abort the statement. SQLite drops a table's triggers with the table, and
Django's SQLite schema editor alters a table by rebuilding it: a later migration that alters
medical_auditevent must create these triggers again. The owner of the table can still drop any
trigger; in production the app's role must not own it (`manage.py medical_audit_lockdown`).
"""
from django.db import migrations

MESSAGE = "the medical audit log is append-only"

POSTGRESQL_FORBID = """
CREATE TRIGGER medical_audit_no_truncate BEFORE TRUNCATE ON medical_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION medical_audit_append_only();
"""
POSTGRESQL_ALLOW = "DROP TRIGGER IF EXISTS medical_audit_no_truncate ON medical_auditevent;"

SQLITE_FORBID = [
    f"CREATE TRIGGER medical_audit_no_update BEFORE UPDATE ON medical_auditevent "
    f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;",
    f"CREATE TRIGGER medical_audit_no_delete BEFORE DELETE ON medical_auditevent "
    f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;",
]
SQLITE_ALLOW = ["DROP TRIGGER IF EXISTS medical_audit_no_update;", "DROP TRIGGER IF EXISTS medical_audit_no_delete;"]


def forbid(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for statement in {"postgresql": [POSTGRESQL_FORBID], "sqlite": SQLITE_FORBID}.get(vendor, []):
        schema_editor.execute(statement)


def allow(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for statement in {"postgresql": [POSTGRESQL_ALLOW], "sqlite": SQLITE_ALLOW}.get(vendor, []):
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("medical", "0003_case_share")]

    operations = [migrations.RunPython(forbid, allow)]
