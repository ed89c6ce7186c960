import hashlib
import secrets

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone

from apps.accounts.roles import Area, Role, ROLE_LABELS, role_may_use


class User(AbstractUser):
    """A console or API user; `role` decides which areas they may use."""

    role = models.CharField(
        max_length=32,
        choices=[(role.value, ROLE_LABELS[role]) for role in Role],
        default=Role.SUPPORT_AGENT,
    )

    def may_use(self, area: Area) -> bool:
        return self.is_active and role_may_use(self.role, area)


class ApiToken(models.Model):
    """A per-user bearer token for API clients (IDEs). Only its SHA-256 digest is stored.

    A token acts for its user only within its scope and until it expires; no token may manage tokens.
    """

    PREFIX = "moe_"

    class Scope(models.TextChoices):
        COMPLETION = "completion", "Code completion (IDE)"  # completions and their events, nothing else
        API = "api", "Full API of your role"  # every API the user's role may use, except tokens
        RETRIEVAL = "retrieval", "Knowledge retrieval (Dify)"  # the Dify external-knowledge API, nothing else

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    digest = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=12, help_text="The token's first characters, to recognise it.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    scope = models.CharField(max_length=16, choices=Scope.choices)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @classmethod
    def new_secret(cls) -> str:
        return cls.PREFIX + secrets.token_urlsafe(32)

    @staticmethod
    def digest_of(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()

    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()

    def allows(self, view_scope: "ApiToken.Scope | None") -> bool:
        """Whether this token may call a view that asks for `view_scope` (None: no token at all)."""
        if view_scope is None:
            return False
        return self.scope == self.Scope.API or view_scope == self.scope
