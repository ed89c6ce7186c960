from django.core.management.base import BaseCommand

from apps.accounts.services import demo_users_create


class Command(BaseCommand):
    help = "Create one demo user per role (support, developer, clinician, admin) and print passwords once."

    def handle(self, *args, **options):
        created = demo_users_create()
        if not created:
            self.stdout.write("Demo users already exist; their passwords were printed when they were created.")
        for username, password in created.items():
            self.stdout.write(f"  {username:<10} {password}")
