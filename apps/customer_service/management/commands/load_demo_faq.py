from pathlib import Path

from django.core.management.base import BaseCommand

from apps.customer_service.models import KnowledgeBase
from apps.customer_service.services import knowledge_base_create, knowledge_base_import

DEMO_FAQ = Path(__file__).resolve().parents[2] / "demo" / "faq.json"
DEMO_NAME = "Larkspur Market FAQ"


class Command(BaseCommand):
    help = "Load the demo online-shop FAQ (written by this project) into a knowledge base; safe to rerun."

    def handle(self, *args, **options):
        knowledge_base = (KnowledgeBase.objects.filter(name=DEMO_NAME).first()
                          or knowledge_base_create(name=DEMO_NAME, description="Demo FAQ of a fictional shop."))
        report = knowledge_base_import(knowledge_base=knowledge_base, filename=DEMO_FAQ.name,
                                       data=DEMO_FAQ.read_bytes())
        self.stdout.write(f"{DEMO_NAME}: {report.imported} imported, {report.updated} updated, "
                          f"{report.skipped} skipped; indexing runs in the worker")
