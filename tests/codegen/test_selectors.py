import pytest
from django.contrib.auth.models import AnonymousUser

from apps.accounts.roles import Role
from apps.accounts.services import user_create
from apps.codegen.completion import CompletionRequestData
from apps.codegen.models import Repository
from apps.codegen.selectors import (context_candidates, repository_for_completion, repository_get_for_user,
                                    repository_list_for_user)
from apps.core.errors import NotFoundError

GIT_URL = "https://git.example/inventory.git"


@pytest.fixture
def people(db):
    return {role: user_create(username=role.value, password=f"pw-{role.value}-12345", role=role)
            for role in (Role.DEVELOPER, Role.ADMIN)} | {
        "other": user_create(username="other", password="pw-other-12345", role=Role.DEVELOPER)}


def test_a_git_url_resolves_to_the_callers_own_repository_first_then_a_shared_one(people):
    Repository.objects.create(name="a-shared", path="/x", git_url=GIT_URL, created_by=people[Role.ADMIN], shared=True)
    own = Repository.objects.create(name="b-own", path="/x", git_url=GIT_URL, created_by=people[Role.DEVELOPER])
    Repository.objects.create(name="c-private", path="/x", git_url=GIT_URL, created_by=people[Role.ADMIN])

    assert repository_for_completion(user=people[Role.DEVELOPER], git_url=GIT_URL) == own
    assert repository_for_completion(user=people["other"], git_url=GIT_URL).name == "a-shared"
    assert repository_for_completion(user=people["other"], git_url="https://git.example/none.git") is None


def test_a_private_repository_gives_no_context_to_another_developer(people, indexed_repository):
    Repository.objects.filter(id=indexed_repository.id).update(created_by=people[Role.DEVELOPER], shared=False)
    prefix = "from inventory.models import format_price\n\n\ndef label(product):\n    return format_price("

    def context_for(user) -> list[str]:
        repository = repository_for_completion(user=user, git_url=GIT_URL)
        return [snippet.filepath for snippet in context_candidates(CompletionRequestData(
            language="python", prefix=prefix, repository=repository))]

    assert context_for(people["other"]) == []
    assert context_for(people[Role.DEVELOPER])[0] == "inventory/models.py"
    assert context_for(people[Role.ADMIN])[0] == "inventory/models.py"


@pytest.mark.parametrize("repository_id", ["abc", None, "1.5", 10**12])
def test_ids_that_are_no_visible_repository_are_not_found(people, repository_id):
    with pytest.raises(NotFoundError):
        repository_get_for_user(user=people[Role.ADMIN], repository_id=repository_id)


def test_anonymous_users_see_no_repositories(db):
    Repository.objects.create(name="shared", path="/x", shared=True)

    assert list(repository_list_for_user(user=AnonymousUser())) == []
