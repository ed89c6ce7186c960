from pathlib import Path

from django.core.management.base import BaseCommand

from apps.codegen.models import Repository
from apps.codegen.services import repository_register_trusted_folder

DEMO_REPOSITORY = Path(__file__).resolve().parents[2] / "demo" / "repository"
DEMO_NAME = "inventory (demo)"


class Command(BaseCommand):
    help = ("Register the demo repository (written by this project) for code completion, shared with every "
            "developer; safe to rerun. A command the operator runs, so the API's folder rules do not apply.")

    def handle(self, *args, **options):
        if Repository.objects.filter(name=DEMO_NAME).exists():
            self.stdout.write(f"{DEMO_NAME} is registered already")
            return
        repository_register_trusted_folder(name=DEMO_NAME, folder=DEMO_REPOSITORY, shared=True)
        self.stdout.write(f"{DEMO_NAME} registered; indexing runs in the worker")
