"""`make test`: real PostgreSQL and Redis, fast password hashing."""
from config.settings.base import *  # noqa: F401,F403
from config.settings.base import env

DATABASES = {
    "default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/test"),
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
API_SCHEMA_PUBLIC = True  # the API fuzz test reads the schema as an anonymous client
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Nothing listens on the discard port: tests that need model_service start one and override this.
MODEL_SERVICE_URL = env("TEST_MODEL_SERVICE_URL", default="http://127.0.0.1:9")
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/15")
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
CODEGEN_MODEL_TIMEOUT = 60.0  # the machine may be busy; a down model_service still fails at once
CODEGEN_SINGLE_LINE_MODEL_DEADLINE_S = CODEGEN_MODEL_TIMEOUT  # tests of the deadline set their own
# Tests that run a job in their own transaction hold its row: the heartbeat thread must not wait on it.
ADAPTER_JOB_STALE_S = env.float("ADAPTER_JOB_STALE_S", default=600.0)
# Retrieval tuning loads torch in the worker for minutes: tests queue it themselves.
CUSTOMER_SERVICE_AUTO_TUNE_AFTER_S = env.float("CUSTOMER_SERVICE_AUTO_TUNE_AFTER_S", default=0.0) or None
