import uuid

from django.conf import settings
from django.db import models


VIEW_ID_MAX_CHARS = 128  # Tabby's agents send "view-" and a UUID


def new_completion_id() -> str:
    return f"cmpl-{uuid.uuid4().hex}"


class Repository(models.Model):
    """A codebase whose definitions and chunks give completions cross-file context.

    Private to `created_by` unless `shared`; admins see all (apps/codegen/selectors.py decides).
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        INDEXING = "indexing"
        READY = "ready"
        FAILED = "failed"

    name = models.CharField(max_length=200)  # unique per owner: another user's names are none of the caller's business
    path = models.CharField(max_length=1000, help_text="Local folder (an uploaded archive is unpacked into one).")
    git_url = models.CharField(max_length=500, blank=True, help_text="Matches the git_url IDE clients send.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    files_total = models.PositiveIntegerField(default=0)
    files_done = models.PositiveIntegerField(default=0)
    lines = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    skipped = models.JSONField(default=list, blank=True,
                               help_text="Files the last indexing left out and why ({path, reason}), at most 100.")
    shared = models.BooleanField(default=False, help_text="Readable by every developer, not only its owner.")
    indexed_at = models.DateTimeField(null=True, blank=True)
    index_version = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "repositories"
        constraints = [models.UniqueConstraint(fields=["created_by", "name"], name="unique_repository_name_per_owner")]

    def __str__(self) -> str:
        return self.name

    @property
    def progress(self) -> float:
        return self.files_done / self.files_total if self.files_total else 0.0


class SourceFile(models.Model):
    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="files")
    path = models.CharField(max_length=1000)  # relative to the repository root
    language = models.CharField(max_length=32)
    content_hash = models.CharField(max_length=64)
    lines = models.PositiveIntegerField(default=0)
    imports = models.JSONField(default=list)

    class Meta:
        ordering = ["path"]
        constraints = [models.UniqueConstraint(fields=["repository", "path"], name="unique_file_per_repository")]


class LineSpan(models.Model):
    """Lines `start_line`..`end_line` of an indexed file (the subclass's `file`), with their text."""

    start_line = models.PositiveIntegerField()
    end_line = models.PositiveIntegerField()
    text = models.TextField()

    class Meta:
        abstract = True
        ordering = ["file_id", "start_line"]


class Definition(LineSpan):
    file = models.ForeignKey(SourceFile, on_delete=models.CASCADE, related_name="definitions")
    name = models.CharField(max_length=300, db_index=True)
    kind = models.CharField(max_length=32)
    signature = models.TextField()
    docstring = models.TextField(blank=True)


class Chunk(LineSpan):
    """A window of a file's lines, embedded for similarity search."""

    file = models.ForeignKey(SourceFile, on_delete=models.CASCADE, related_name="chunks")


class Completion(models.Model):
    """One completion served to an IDE, kept for accept/reject telemetry."""

    id = models.CharField(primary_key=True, max_length=64, default=new_completion_id)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True)
    repository = models.ForeignKey(Repository, on_delete=models.SET_NULL, null=True, blank=True)
    language = models.CharField(max_length=32)
    filepath = models.CharField(max_length=1000, blank=True)
    text = models.TextField(blank=True)
    guard = models.CharField(max_length=32, blank=True)  # what the syntax guard did
    timings = models.JSONField(default=dict)  # milliseconds: retrieval, model, postprocess, total
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]


class CompletionEvent(models.Model):
    """What the IDE did with a completion it got, as Tabby's agents report it (`/v1/events`)."""

    class Type(models.TextChoices):
        VIEW = "view"
        SELECT = "select"  # accepted
        DISMISS = "dismiss"  # rejected

    class SelectKind(models.TextChoices):
        WHOLE = "", "whole completion"
        LINE = "line", "part of it (a line or a word)"  # Tabby's agents send "line" for both

    completion = models.ForeignKey(Completion, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=16, choices=Type.choices)
    choice_index = models.PositiveIntegerField(default=0)
    view_id = models.CharField(max_length=VIEW_ID_MAX_CHARS, blank=True,
                               help_text="The IDE's id of one showing of the completion: ties a select or dismiss "
                                         "to its view.")
    elapsed = models.PositiveBigIntegerField(null=True, blank=True,
                                             help_text="Milliseconds from showing to this event, as the IDE "
                                                       "measured them.")
    select_kind = models.CharField(max_length=8, choices=SelectKind.choices, blank=True, default=SelectKind.WHOLE)
    created_at = models.DateTimeField(auto_now_add=True)
