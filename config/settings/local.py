"""`make run` on a developer's machine: debug on, embedded SQLite unless DATABASE_URL is set.

Chosen explicitly (`DJANGO_SETTINGS_MODULE=config.settings.local`, as the Makefile does): without it
every entry point runs production settings.
"""
from config.settings.base import *  # noqa: F401,F403
from config.settings.base import env

DEBUG = env.bool("DEBUG", default=True)
API_SCHEMA_PUBLIC = env.bool("API_SCHEMA_PUBLIC", default=True)

# Serve static files straight from the apps' static folders: no collectstatic step locally.
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
