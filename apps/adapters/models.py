from django.conf import settings
from django.db import models

from apps.core.models import BackgroundJob


class Domain(models.TextChoices):
    CUSTOMER_SERVICE = "customer_service"
    CODEGEN = "codegen"
    MEDICAL = "medical"
    OTHER = "other"


class AdapterDataset(models.Model):
    """Training examples for an adapter (JSONL: chat `messages`, `prompt`/`completion` or `text`)."""

    name = models.CharField(max_length=200)
    domain = models.CharField(max_length=32, choices=Domain.choices)
    origin = models.CharField(max_length=200)  # "upload:<file>" or "knowledge-base:<id>"
    content_hash = models.CharField(max_length=64)
    train_examples = models.JSONField(default=list)
    validation_examples = models.JSONField(default=list)
    report = models.JSONField(default=dict)  # per-line validation: accepted, rejected with reasons
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]


class Adapter(models.Model):
    class Status(models.TextChoices):
        TRAINED = "trained"
        PROMOTED = "promoted"  # loaded in model_service, used by its domain's app
        RETIRED = "retired"

    name = models.CharField(max_length=100)  # the model id apps ask model_service for, e.g. "customer_service"
    domain = models.CharField(max_length=32, choices=Domain.choices)
    version = models.PositiveIntegerField()
    path = models.CharField(max_length=500)
    metrics = models.JSONField(default=dict)  # the evaluation gate's numbers
    # how model_service serves it: strategy (merged-vllm, peft-beside, peft), detail, and the merge's
    # state (queued, running, merged, failed, not needed) with its error; set by promotion and the merge job
    serving = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.TRAINED)
    promoted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="unique_adapter_version")]

    @property
    def domain_scores(self) -> dict:
        """The gate's domain metric: its label and the base / current / new values (None when absent)."""
        metric = self.metrics.get("domain_metric", {"key": "answer_f1", "label": "answer F1"})
        return {"label": metric["label"], **{side: self.metrics.get(side, {}).get(metric["key"])
                                            for side in ("base", "current", "new")}}


class AdapterJob(BackgroundJob):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    dataset = models.ForeignKey(AdapterDataset, on_delete=models.PROTECT, related_name="jobs")
    adapter_name = models.CharField(max_length=100)
    config = models.JSONField(default=dict)  # training.adapters.AdapterConfig fields
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    # progress (BackgroundJob): step, total, loss, tokens_per_s, eta_s
    loss_curve = models.JSONField(default=list, blank=True)  # [step, training loss] pairs, at most LOSS_CURVE_POINTS
    log = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    output_dir = models.CharField(max_length=500, blank=True)  # fixed by the first attempt
    adapter = models.ForeignKey(Adapter, on_delete=models.SET_NULL, null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
