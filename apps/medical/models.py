from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import models

from apps.core.models import BackgroundJob


class Evidence(models.Model):
    """A finding the clinician can record, in the DDXPlus schema (binary, categorical or multi-choice)."""

    class DataType(models.TextChoices):
        BINARY = "B"
        CATEGORICAL = "C"
        MULTI_CHOICE = "M"

    code = models.CharField(max_length=64, unique=True)  # e.g. "E_91"
    parent_code = models.CharField(max_length=64)  # the question this one follows up ("code_question")
    question_en = models.TextField()
    question_fr = models.TextField(blank=True)
    data_type = models.CharField(max_length=1, choices=DataType.choices)
    is_antecedent = models.BooleanField(default=False)  # history/risk factor rather than a symptom
    default_value = models.JSONField(null=True, blank=True)
    possible_values = models.JSONField(default=list)
    value_meanings = models.JSONField(default=dict)  # value -> {"en": ..., "fr": ...}
    source = models.CharField(max_length=32)  # "ddxplus" or "demo"

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code}: {self.question_en}"

    def value_label(self, value) -> str:
        meaning = self.value_meanings.get(str(value)) or {}
        return meaning.get("en") or str(value)


class Condition(models.Model):
    name = models.CharField(max_length=200, unique=True)
    name_fr = models.CharField(max_length=200, blank=True)
    icd10 = models.CharField(max_length=16)
    severity = models.PositiveSmallIntegerField()  # DDXPlus: 1 most severe .. 5 least
    symptoms = models.JSONField(default=list)  # evidence codes
    antecedents = models.JSONField(default=list)
    source = models.CharField(max_length=32)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DiagnosisModel(models.Model):
    """A trained, versioned differential model; exactly one is active."""

    version = models.PositiveIntegerField(unique=True)
    source = models.CharField(max_length=32)  # the knowledge base its evidences come from
    artefact = models.CharField(max_length=500)  # path of the saved model
    data_hash = models.CharField(max_length=64)  # SHA-256 of the training CSV
    patients = models.PositiveIntegerField()
    metrics = models.JSONField(default=dict)
    active = models.BooleanField(default=False)
    trained_at = models.DateTimeField(auto_now_add=True)
    trained_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)

    class Meta:
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"v{self.version} ({self.source})"


class Case(models.Model):
    """One presentation entered by a clinician; the free-text note is stored de-identified."""

    class Sex(models.TextChoices):
        MALE = "M"
        FEMALE = "F"

    clinician = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="medical_cases")
    age = models.PositiveSmallIntegerField()
    sex = models.CharField(max_length=1, choices=Sex.choices)
    evidence = models.JSONField(default=list)  # DDXPlus tokens: "E_91", "E_54_@_V_161", "E_56_@_6"
    negatives = models.JSONField(default=list)  # evidence codes (or value tokens) asked and answered "no"
    unknown = models.JSONField(default=list)  # evidence codes asked and answered "don't know" (not "no", not unasked)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]


class CaseShare(models.Model):
    """A clinician the case's creator has shared it with: they may read, answer and report it."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="shares")
    clinician = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                  related_name="medical_case_shares")
    shared_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["case", "clinician"], name="medical_case_share_once")]


class CaseResult(models.Model):
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="results")
    model = models.ForeignKey(DiagnosisModel, on_delete=models.PROTECT)
    evidence = models.JSONField(default=list)  # what the result was computed from
    result = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]


class AuditEvent(models.Model):
    """Append-only record of who did what with which case and model version.

    The application can add events but never change or delete them, and the database refuses it
    too (triggers on PostgreSQL and SQLite: see this app's migrations)."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True)
    action = models.CharField(max_length=64)  # "case.create", "case.view", "diagnosis.compute", ...
    case = models.ForeignKey(Case, on_delete=models.PROTECT, null=True, blank=True)
    model_version = models.PositiveIntegerField(null=True, blank=True)
    details = models.JSONField(default=dict)  # never holds free text that was not de-identified
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionDenied("audit events cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionDenied("audit events cannot be deleted")


class FederatedJob(BackgroundJob):
    """A federated training run (apps.medical.federated) queued by an admin: sites simulated from a shared
    patients file train on their own patients and only model updates travel; the resulting model is
    registered as a DiagnosisModel and goes through the activation gate."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"  # finished: `metrics["gate"]` says whether its model was activated
        FAILED = "failed"

    source = models.CharField(max_length=32)  # the knowledge base the model's evidences come from
    patients_file = models.CharField(max_length=200)  # under SUITE_DATA_DIR/medical: the patients the sites split
    config = models.JSONField(default=dict)  # apps.medical.federated.FederatedConfig fields
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    # progress (BackgroundJob): iteration, most iterations, objective per training patient
    metrics = models.JSONField(default=dict)  # held-out figures, what each site sent, the gate
    error = models.TextField(blank=True)
    model = models.ForeignKey(DiagnosisModel, on_delete=models.SET_NULL, null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
