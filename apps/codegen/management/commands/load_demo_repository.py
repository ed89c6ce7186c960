from pathlib import Path

from django.core.management.base import BaseCommand

from apps.codegen.models import Repository
from apps.codegen.services import repository_register

DEMO_REPOSITORY = Path(__file__).resolve().parents[2] / "demo" / "repository"
DEMO_NAME = "inventory (demo)"


class Command(BaseCommand):
    help = "Register the demo repository (written by this project) for code completion; safe to rerun."

    def handle(self, *args, **options):
        if Repository.objects.filter(name=DEMO_NAME).exists():
            self.stdout.write(f"{DEMO_NAME} is registered already")
            return
        repository_register(name=DEMO_NAME, path=str(DEMO_REPOSITORY))
        self.stdout.write(f"{DEMO_NAME} registered; indexing runs in the worker")
