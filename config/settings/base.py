"""Settings shared by every environment.

`env` is the only reader of the environment; each variable is documented in the README.
"""
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
RUN_DIR = Path(env("SUITE_RUN_DIR", default=str(BASE_DIR / ".run")))  # `make run` state: SQLite, queues

SECRET_KEY = env("SECRET_KEY", default="insecure-local-development-key-change-me")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])

# Which use-case URL sets this process mounts; docker-compose runs one service per app.
SUITE_APPS = env.list("SUITE_APPS", default=["customer_service", "codegen", "medical"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "apps.accounts",
    "apps.core",
    "apps.customer_service",
    "apps.codegen",
    "apps.medical",
    "apps.adapters",
    "frontend",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "apps.core.middleware.RejectNulCharactersMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "frontend.context_processors.navigation",
            ],
        },
    },
]

ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = "config.wsgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{RUN_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default under a team's load (PostgreSQL stays the production database): WAL lets reads
    # run beside the one writer; IMMEDIATE takes the write lock when a transaction begins, so two
    # transactions never both read and then fail upgrading to write ("database is locked" at once, which
    # no busy timeout helps); a writer waits up to `timeout` seconds for the lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update({
        "transaction_mode": "IMMEDIATE",
        "timeout": env.float("SQLITE_BUSY_TIMEOUT_S", default=20.0),
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    })
DATABASE_POOL_MAX_SIZE = env.int("DATABASE_POOL_MAX_SIZE", default=16)  # connections per process, at most
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool("DATABASE_POOL", default=True):
    # A new connection per request costs 4 ms of the time to a suggestion's first token; idle connections
    # wait in the pool instead. Requests give theirs back while they wait on the model (apps/core/db.py), so
    # a few serve many streams. Each web process and Celery's prefork children keep a pool of their own:
    # compose's PostgreSQL allows for them all (max_connections).
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1, "max_size": DATABASE_POOL_MAX_SIZE, "timeout": 30}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "frontend:login"
LOGIN_REDIRECT_URL = "frontend:home"
LOGOUT_REDIRECT_URL = "frontend:login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "apps.core.schema.SuiteAutoSchema",
    "EXCEPTION_HANDLER": "apps.core.exceptions.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "MoE suite API",
    "DESCRIPTION": "Customer service, code completion and diagnosis assist on one MoE model.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

# accounts: log-in lockout (django-axes) for the console and the Django admin, API token lifetime, and
# who may read the OpenAPI schema and its docs page (signed-in users unless local/test settings open it).
INSTALLED_APPS += ["axes"]
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]  # last: turns a lockout into the log-in page's message
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)  # failed log-ins in a row that lock the account
AXES_COOLOFF_TIME = env.int("LOGIN_LOCKOUT_MINUTES", default=15) / 60  # hours the lock lasts
# Lock the account, from any address. Not the address: behind a proxy or a hospital's NAT everyone shares
# one, and a few typos would lock them all out. axes.W006 warns about keys a client can rotate (user
# agent, cookies); an account name is not one of them.
AXES_LOCKOUT_PARAMETERS = ["username"]
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "apps.accounts.lockout.login_lockout_response"
API_TOKEN_DEFAULT_DAYS = env.int("API_TOKEN_DEFAULT_DAYS", default=90)  # a new token's lifetime unless chosen
API_TOKEN_MAX_DAYS = env.int("API_TOKEN_MAX_DAYS", default=365)
API_SCHEMA_PUBLIC = env.bool("API_SCHEMA_PUBLIC", default=False)

# model_service: the only process holding model weights; reached through apps.core.model_client.
MODEL_SERVICE_URL = env("MODEL_SERVICE_URL", default="http://127.0.0.1:8100")
MODEL_SERVICE_API_KEY = env("MODEL_SERVICE_API_KEY", default="")
MODEL_SERVICE_TIMEOUT = env.float("MODEL_SERVICE_TIMEOUT", default=30.0)  # seconds per request

# Celery: Redis when there is one; `make run` may switch to the server-less filesystem transport.
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_TASK_ACKS_LATE = True  # a job survives a worker restart
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TRACK_STARTED = True
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = Path(env("CELERY_FILESYSTEM_DIR", default=str(RUN_DIR / "celery")))
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir / "queue"),
        "data_folder_out": str(_queue_dir / "queue"),
        "processed_folder": str(_queue_dir / "processed"),
        "store_processed": False,
    }
else:  # a message a killed worker held goes back on the queue after this, not Kombu's default hour
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT_S", default=600)}

# Processes: `make run` starts WEB_PROCESSES uvicorn processes and one Celery worker with CELERY_CONCURRENCY
# processes; docker-compose.yml reads the same variables per web service and for its worker. Sizing measured
# on 2 cores: README, "Processes and sizing".
WEB_PROCESSES = env.int("WEB_PROCESSES", default=1)
CELERY_CONCURRENCY = env.int("CELERY_CONCURRENCY", default=1)

# Jobs (adapters, codegen, customer_service): the reconcile, run by Celery beat, queues again the work
# left queued, pending or indexing for JOBS_REQUEUE_AFTER_S (a failed enqueue, a dead worker).
JOBS_RECONCILE_EVERY_S = env.float("JOBS_RECONCILE_EVERY_S", default=60.0)
JOBS_REQUEUE_AFTER_S = env.float("JOBS_REQUEUE_AFTER_S", default=300.0)
# A running job whose heartbeat is older than its stale limit belongs to a dead worker: the next delivery
# takes it over (apps/core/jobs.py) and the reconcile queues it again; its heartbeat beats four times
# within the limit. The limit of repository indexing and knowledge-base reindexing is JOBS_REQUEUE_AFTER_S;
# that of adapter training (which resumes from its last checkpoint) is ADAPTER_JOB_STALE_S.
ADAPTER_JOB_STALE_S = env.float("ADAPTER_JOB_STALE_S", default=60.0)
CELERY_BEAT_SCHEDULE = {
    "jobs-reconcile": {"task": "apps.core.tasks.jobs_reconcile_task", "schedule": JOBS_RECONCILE_EVERY_S},
}

# Files the suite writes: retrieval indexes, repository indexes, model artefacts.
SUITE_DATA_DIR = Path(env("SUITE_DATA_DIR", default=str(RUN_DIR / "data")))

# customer_service: strict mode answers with the cited entry's own text; rephrasing asks the model to
# reword it (off by default: the demo model's prose is weak); below the threshold the app hands off.
CUSTOMER_SERVICE_STRICT = env.bool("CUSTOMER_SERVICE_STRICT", default=True)
CUSTOMER_SERVICE_REPHRASE = env.bool("CUSTOMER_SERVICE_REPHRASE", default=False)
CUSTOMER_SERVICE_ADAPTER = env("CUSTOMER_SERVICE_ADAPTER", default="customer_service")
CODEGEN_ADAPTER = env("CODEGEN_ADAPTER", default="codegen")
MEDICAL_ADAPTER = env("MEDICAL_ADAPTER", default="medical")
# customer_service: text limits in characters; the API refuses longer text, the console cuts it (in the services).
CUSTOMER_SERVICE_MAX_QUESTION_CHARS = 1000  # a customer message, a search, an entry question or phrasing
CUSTOMER_SERVICE_MAX_ANSWER_CHARS = 10_000  # an entry answer
CUSTOMER_SERVICE_MAX_REASON_CHARS = 1000  # why a conversation was handed off
# customer_service: knowledge-base imports are refused past these while the upload is read.
CUSTOMER_SERVICE_IMPORT_MAX_BYTES = env.int("CUSTOMER_SERVICE_IMPORT_MAX_BYTES", default=5 * 2**20)
CUSTOMER_SERVICE_IMPORT_MAX_ENTRIES = env.int("CUSTOMER_SERVICE_IMPORT_MAX_ENTRIES", default=10_000)
# customer_service retrieval tuning: a knowledge base whose entries or feedback changed is tuned this
# many seconds after its reindex (the wait gathers a burst of edits into one tuning); unset: only on demand.
CUSTOMER_SERVICE_AUTO_TUNE_AFTER_S = env.float("CUSTOMER_SERVICE_AUTO_TUNE_AFTER_S", default=600.0) or None
# Overrides of the tuning recipe's settings (apps/customer_service/tuning.py TuningSettings), as JSON,
# e.g. {"epochs": 5}; the defaults were chosen by measurement on Banking77.
CUSTOMER_SERVICE_TUNING = env.json("CUSTOMER_SERVICE_TUNING", default={})

# codegen: completions must come back fast or not at all.
CODEGEN_MODEL_TIMEOUT = env.float("CODEGEN_MODEL_TIMEOUT", default=10.0)  # seconds
# A single line is what an IDE shows while the developer types: the model gets this long (all its attempts
# together) and is then dropped (model_service aborts the generation when the connection closes); the
# completion is then what the repository offered, or nothing. The end-to-end goal is 700 ms at p95 on
# 2 cores, where other work stretches every engine step (benchmarks/codegen.py, random positions).
CODEGEN_SINGLE_LINE_MODEL_DEADLINE_S = env.float("CODEGEN_SINGLE_LINE_MODEL_DEADLINE_S", default=0.55)
CODEGEN_MAX_SEGMENT_CHARS = 100_000  # prefix or suffix beyond this: 413
# codegen repositories: admins may register server folders only under these roots (none by default);
# developers upload archives, bounded before and while they are unpacked; indexing is bounded too.
CODEGEN_REPOSITORY_ROOTS = env.list("CODEGEN_REPOSITORY_ROOTS", default=[])
CODEGEN_ARCHIVE_MAX_BYTES = env.int("CODEGEN_ARCHIVE_MAX_BYTES", default=50 * 2**20)  # the upload itself
CODEGEN_ARCHIVE_MAX_UNPACKED_BYTES = env.int("CODEGEN_ARCHIVE_MAX_UNPACKED_BYTES", default=200 * 2**20)
CODEGEN_ARCHIVE_MAX_MEMBERS = env.int("CODEGEN_ARCHIVE_MAX_MEMBERS", default=20_000)
CODEGEN_ARCHIVE_MAX_RATIO = env.float("CODEGEN_ARCHIVE_MAX_RATIO", default=100.0)  # unpacked bytes / archive bytes
CODEGEN_INDEX_MAX_FILES = env.int("CODEGEN_INDEX_MAX_FILES", default=20_000)
CODEGEN_INDEX_MAX_BYTES = env.int("CODEGEN_INDEX_MAX_BYTES", default=200 * 2**20)

# medical: findings that always raise urgency (evidence codes), and whether model_service may reword
# the narrative (off: the demo model's prose is weak; the computed summary is shown either way).
MEDICAL_URGENT_FINDINGS = env.list("MEDICAL_URGENT_FINDINGS", default=[])
MEDICAL_NARRATIVE_MODEL = env.bool("MEDICAL_NARRATIVE_MODEL", default=False)
# medical: a running federated training job whose heartbeat is older than this (seconds) lost its worker
# and is queued again by the reconcile (its heartbeat is refreshed well within it while it runs).
MEDICAL_FEDERATED_JOB_STALE_S = env.float("MEDICAL_FEDERATED_JOB_STALE_S", default=600.0)

# adapters: the checkpoint adapters are trained on (the one model_service serves).
ADAPTER_BASE_CHECKPOINT = env("ADAPTER_BASE_CHECKPOINT", default=str(BASE_DIR / "checkpoints" / "demo-moe"))
# adapters: bounds of an uploaded JSONL dataset, checked while reading and before each line is parsed.
ADAPTER_DATASET_MAX_BYTES = env.int("ADAPTER_DATASET_MAX_BYTES", default=32 * 1024 * 1024)
ADAPTER_DATASET_MAX_LINES = 50_000
ADAPTER_DATASET_MAX_LINE_CHARS = 100_000  # a longer line is reported and left out, never parsed
ADAPTER_DATASET_MAX_DEPTH = 16  # JSON nesting of one example (a chat example needs 3)

WORKER_HEARTBEAT_INTERVAL = 10.0  # seconds between a worker's heartbeats
WORKER_HEARTBEAT_TIMEOUT = 30.0  # a worker unheard of for this long is shown as down

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}
