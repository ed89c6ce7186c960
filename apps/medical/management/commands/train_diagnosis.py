from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.medical.services import diagnosis_model_train


class Command(BaseCommand):
    help = "Train a diagnosis model on patients in the DDXPlus CSV format and print its metrics."

    def add_arguments(self, parser):
        parser.add_argument("--patients", type=Path, required=True)
        parser.add_argument("--source", default="ddxplus", help="the knowledge base the patients' evidences use")
        parser.add_argument("--activate", action="store_true",
                            help="serve this model from now on, even if the activation gate refuses it")

    def handle(self, *args, patients: Path, source: str, activate: bool, **options):
        if not patients.is_file():
            raise CommandError(f"{patients} does not exist")
        model = diagnosis_model_train(patients_path=patients, source=source, activate=activate)
        metrics = model.metrics
        self.stdout.write(f"model v{model.version} ({source}, {metrics['patients']} patients): "
                          f"top-1 {metrics['top1']}, top-3 {metrics['top3']}, ECE {metrics['ece']} "
                          f"(held-out {metrics['held_out']}){' — active' if model.active else ''}; "
                          f"gate: {metrics['gate']['reason']}")
