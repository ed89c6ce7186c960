from django.core.management import call_command

from apps.accounts.roles import Role
from apps.accounts.services import user_create
from apps.codegen.management.commands.load_demo_repository import DEMO_NAME, DEMO_REPOSITORY
from apps.codegen.models import Repository
from apps.codegen.selectors import repository_list_for_user


def test_the_demo_repository_is_registered_by_the_operator_command_and_shared(db, settings):
    settings.CODEGEN_REPOSITORY_ROOTS = []  # the API would allow no server folder at all
    developer = user_create(username="dev", password="pw-dev-12345", role=Role.DEVELOPER)

    call_command("load_demo_repository")
    call_command("load_demo_repository")  # safe to rerun

    demo = Repository.objects.get(name=DEMO_NAME)
    assert (demo.path, demo.shared, demo.created_by) == (str(DEMO_REPOSITORY), True, None)
    assert list(repository_list_for_user(user=developer)) == [demo]
