from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE, AFTER = [("codegen", "0001_initial")], [("codegen", "0002_repository_shared_and_skipped")]


def test_the_visibility_migration_shares_operator_repositories_and_retires_developer_folders(transactional_db,
                                                                                             settings):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    User, Repository = old.get_model("accounts", "User"), old.get_model("codegen", "Repository")
    developer = User.objects.create(username="dev", role="developer")
    admin = User.objects.create(username="boss", role="admin")
    uploads = settings.SUITE_DATA_DIR / "codegen" / "repos"
    Repository.objects.create(name="demo", path="/srv/demo", status="ready")
    Repository.objects.create(name="etc", path="/etc", created_by=developer, status="ready")
    Repository.objects.create(name="upload", path=str(uploads / "repo_3"), created_by=developer, status="ready")
    Repository.objects.create(name="admins", path="/srv/code", created_by=admin, status="ready")

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)

    new = executor.loader.project_state(AFTER).apps.get_model("codegen", "Repository")
    rows = {r.name: (r.shared, r.status) for r in new.objects.all()}
    assert rows == {"demo": (True, "ready"), "etc": (False, "failed"), "upload": (False, "ready"),
                    "admins": (False, "ready")}
