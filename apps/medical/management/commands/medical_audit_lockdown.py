"""Make the medical audit log append-only for the app's PostgreSQL role, not only by triggers.

    python manage.py medical_audit_lockdown --app-role suite_app            # print the SQL
    python manage.py medical_audit_lockdown --app-role suite_app --apply    # run it (as the owner role)

A table's owner may drop its triggers, so in production the role the web and worker processes log
in as must not own the audit table: run migrations as an owner role, then this, and give the app
role only SELECT and INSERT on it.
"""
import re

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

TABLE = "medical_auditevent"
ROLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")


def lockdown_sql(*, app_role: str, owner_role: str) -> list[str]:
    """The statements that leave `app_role` able to read and append audit events, nothing else."""
    return [f'ALTER TABLE {TABLE} OWNER TO "{owner_role}";',
            f'REVOKE ALL ON {TABLE} FROM PUBLIC, "{app_role}";',
            f'GRANT SELECT, INSERT ON {TABLE} TO "{app_role}";']


class Command(BaseCommand):
    help = "Print (or --apply) the PostgreSQL grants that leave the app's role only SELECT and INSERT on the audit log."

    def add_arguments(self, parser):
        parser.add_argument("--app-role", required=True, help="the role the web and worker processes log in as")
        parser.add_argument("--owner-role", help="the role that owns the table (default: the one running this)")
        parser.add_argument("--apply", action="store_true", help="run the statements instead of printing them")

    def handle(self, *args, app_role, owner_role, apply, **options):
        if connection.vendor != "postgresql":
            raise CommandError("roles and grants are PostgreSQL's; on SQLite the triggers alone guard the audit log")
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            owner_role = owner_role or cursor.fetchone()[0]
        for name, role in (("--app-role", app_role), ("--owner-role", owner_role)):
            if not ROLE.match(role):
                raise CommandError(f"{name}: {role!r} is not a plain PostgreSQL role name")
        if app_role == owner_role:
            raise CommandError("the app's role must not own the audit table: give a different --owner-role")
        statements = lockdown_sql(app_role=app_role, owner_role=owner_role)
        if not apply:
            self.stdout.write("\n".join(statements))
            return
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", [app_role, owner_role])
            if cursor.fetchone()[0]:  # a member of the owner role has the owner's rights
                raise CommandError(f"{app_role} is a member of {owner_role}: it would still own the audit table")
            for statement in statements:
                cursor.execute(statement)
        self.stdout.write(f"{TABLE}: owned by {owner_role}; {app_role} may only SELECT and INSERT")
