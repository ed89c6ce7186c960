import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.medical.models import DiagnosisModel
from apps.medical.demo_data import demo_patients_write
from apps.medical.services import diagnosis_model_train, knowledge_base_import

DEMO = Path(__file__).resolve().parents[2] / "demo"


class Command(BaseCommand):
    help = "Load the demo medical knowledge base (written by this project) and train a demo model on synthetic patients."

    def handle(self, *args, **options):
        evidences, conditions = knowledge_base_import(
            evidences=json.loads((DEMO / "evidences.json").read_text()),
            conditions=json.loads((DEMO / "conditions.json").read_text()), source="demo")
        self.stdout.write(f"demo knowledge base: {evidences} evidences, {conditions} conditions")
        if DiagnosisModel.objects.exists():
            self.stdout.write("a diagnosis model exists already; not retraining")
            return
        patients = demo_patients_write(settings.SUITE_DATA_DIR / "medical" / "demo_patients.csv")
        model = diagnosis_model_train(patients_path=patients, source="demo", activate=True)
        self.stdout.write(f"demo model v{model.version}: top-1 {model.metrics['top1']} on synthetic patients")
