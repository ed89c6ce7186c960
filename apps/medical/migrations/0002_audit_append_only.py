"""PostgreSQL refuses UPDATE and DELETE on the audit log, whatever the application does."""
from django.db import migrations

FORBID = """
CREATE OR REPLACE FUNCTION medical_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the medical audit log is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER medical_audit_append_only BEFORE UPDATE OR DELETE ON medical_auditevent
    FOR EACH ROW EXECUTE FUNCTION medical_audit_append_only();
"""
ALLOW = """
DROP TRIGGER IF EXISTS medical_audit_append_only ON medical_auditevent;
DROP FUNCTION IF EXISTS medical_audit_append_only();
"""


def forbid(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORBID)


def allow(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ALLOW)


class Migration(migrations.Migration):
    dependencies = [("medical", "0001_initial")]

    operations = [migrations.RunPython(forbid, allow)]
