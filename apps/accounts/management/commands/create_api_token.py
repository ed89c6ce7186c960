from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import ApiToken, User
from apps.accounts.services import api_token_create
from apps.core.errors import ApplicationError


class Command(BaseCommand):
    help = "Create an API token for USERNAME and print it (it is shown only once)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="cli", help="A label to recognise the token by.")
        parser.add_argument("--scope", choices=ApiToken.Scope.values, default=ApiToken.Scope.COMPLETION,
                            help="completion: code completion only (IDEs); api: every API the user's role may use")
        parser.add_argument("--days", type=int, default=settings.API_TOKEN_DEFAULT_DAYS,
                            help=f"days until the token expires (1 to {settings.API_TOKEN_MAX_DAYS})")

    def handle(self, *args, username: str, name: str, scope: str, days: int, **options):
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        try:
            created = api_token_create(user=user, name=name, scope=ApiToken.Scope(scope), expires_in_days=days)
        except ApplicationError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(created.secret)
