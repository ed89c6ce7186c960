"""A web process serves only the areas SUITE_APPS names, and never loads torch or peft: those are
for the Celery worker's training path and model_service alone."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
WEB_PROCESS = """
import json, sys
import django
django.setup()
from django.urls import URLPattern, get_resolver

def walk(resolver):
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLPattern):
            pattern.callback  # imports the view
        else:
            walk(pattern)

import config.urls
walk(get_resolver())
import config.asgi
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()  # the test client's host is allowed
client = Client()
paths = ["/console/codegen/", "/console/codegen/playground/", "/console/medical/", "/console/medical/audit/",
         "/console/customer-service/", "/console/adapters/", "/api/codegen/v1/health", "/api/medical/v1/cases"]
print(json.dumps({"modules": sorted(name for name in ("torch", "peft") if name in sys.modules),
                  "status": {path: client.get(path).status_code for path in paths}}))
"""


@pytest.fixture(scope="module")
def customer_service_process() -> dict:
    """What a web process with SUITE_APPS=customer_service loaded, and how it answered."""
    environment = {**os.environ, "SUITE_APPS": "customer_service", "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    done = subprocess.run([sys.executable, "-c", WEB_PROCESS], cwd=REPO, env=environment, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_customer_service_web_process_imports_neither_torch_nor_peft(customer_service_process):
    assert customer_service_process["modules"] == []


def test_a_customer_service_web_process_serves_neither_codegen_nor_medical_pages(customer_service_process):
    assert customer_service_process["status"] == {
        "/console/codegen/": 404, "/console/codegen/playground/": 404, "/console/medical/": 404,
        "/console/medical/audit/": 404, "/console/customer-service/": 302, "/console/adapters/": 302,
        "/api/codegen/v1/health": 404, "/api/medical/v1/cases": 404}
