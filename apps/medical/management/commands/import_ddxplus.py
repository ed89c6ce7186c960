import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.medical.services import knowledge_base_import


class Command(BaseCommand):
    help = ("Import the DDXPlus knowledge base (release_evidences.json, release_conditions.json) from --path. "
            "The full release: https://figshare.com/articles/dataset/DDXPlus_Dataset/20043374 (CC BY 4.0).")

    def add_arguments(self, parser):
        parser.add_argument("--path", type=Path, required=True, help="folder holding the two release JSON files")
        parser.add_argument("--source", default="ddxplus", help="label of this knowledge base")

    def handle(self, *args, path: Path, source: str, **options):
        files = {name: path / f"release_{name}.json" for name in ("evidences", "conditions")}
        missing = [str(f) for f in files.values() if not f.is_file()]
        if missing:
            raise CommandError(f"missing {', '.join(missing)}")
        evidences, conditions = knowledge_base_import(
            evidences=json.loads(files["evidences"].read_text()), conditions=json.loads(files["conditions"].read_text()),
            source=source)
        self.stdout.write(f"imported {evidences} evidences and {conditions} conditions as {source!r}")
