"""Production, the default wherever the suite is deployed: every behaviour comes from environment variables.

SECRET_KEY and ALLOWED_HOSTS have no defaults. HTTPS is assumed end to end: plain HTTP is redirected,
cookies are secure, browsers are told to keep to HTTPS (HSTS). Behind a TLS-terminating proxy set
BEHIND_TLS_PROXY=true so the proxy's `X-Forwarded-Proto: https` counts as HTTPS (only there: a client
that reaches Django directly could send that header itself). `manage.py check --deploy` passes.
"""
from config.settings.base import *  # noqa: F401,F403
from config.settings.base import env

SECRET_KEY = env("SECRET_KEY")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
DEBUG = env.bool("DEBUG", default=False)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
if env.bool("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# Asking browsers to preload HSTS binds the whole domain for months: the domain's owner opts in with
# SECURE_HSTS_PRELOAD=true; the check that asks for it is not a defect of this deployment.
SILENCED_SYSTEM_CHECKS = [*SILENCED_SYSTEM_CHECKS, "security.W021"]  # noqa: F405

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
