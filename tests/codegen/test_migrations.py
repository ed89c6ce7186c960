import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE, AFTER = [("codegen", "0001_initial")], [("codegen", "0002_repository_shared_and_skipped")]


@pytest.fixture(autouse=True)
def latest_schema_afterwards(transactional_db):
    """Each test migrates back in time; the tests after it need today's schema."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


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


def test_events_recorded_before_tabbys_event_fields_read_as_whole_accepts_without_view_or_time(transactional_db):
    before, after = [("codegen", "0002_repository_shared_and_skipped")], [
        ("codegen", "0003_completionevent_view_id_elapsed_select_kind")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    Completion, Event = old.get_model("codegen", "Completion"), old.get_model("codegen", "CompletionEvent")
    Event.objects.create(completion=Completion.objects.create(language="python"), type="select")

    executor = MigrationExecutor(connection)
    executor.migrate(after)

    new = executor.loader.project_state(after).apps.get_model("codegen", "CompletionEvent")
    assert list(new.objects.values_list("type", "view_id", "elapsed", "select_kind")) == [("select", "", None, "")]
