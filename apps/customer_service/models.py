import hashlib
import json

from django.conf import settings
from django.db import models

from apps.core.models import BackgroundJob


class KnowledgeBase(models.Model):
    class IndexStatus(models.TextChoices):
        EMPTY = "empty"
        PENDING = "pending"  # changes wait for the reindex job
        INDEXING = "indexing"
        READY = "ready"
        FAILED = "failed"

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    index_status = models.CharField(max_length=16, choices=IndexStatus.choices, default=IndexStatus.EMPTY)
    index_version = models.PositiveIntegerField(default=0)  # bumped by every finished reindex
    index_dense = models.BooleanField(default=False)  # the last index has embeddings (model_service was up)
    index_error = models.TextField(blank=True)
    indexed_at = models.DateTimeField(null=True, blank=True)
    # The knowledge base's own embedding model, served by model_service under this name (a retrieval
    # tuning's output); blank: the base model. The index records the model it was built with.
    embedding_model = models.CharField(max_length=100, blank=True)
    calibration = models.JSONField(default=dict, blank=True)  # per-KB confidence calibration; {}: the default
    answer_threshold = models.FloatField(null=True, blank=True)  # an admin's choice; None: the calibration's
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Entry(models.Model):
    """One FAQ entry: a canonical question, other ways customers ask it, and the answer."""

    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="entries")
    question = models.TextField()
    phrasings = models.JSONField(default=list, blank=True)
    answer = models.TextField()
    tags = models.JSONField(default=list, blank=True)
    source = models.CharField(max_length=200, blank=True, help_text="Where the entry came from (file, person).")
    enabled = models.BooleanField(default=True)
    content_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["knowledge_base", "question"], name="unique_question_per_kb")]

    def __str__(self) -> str:
        return self.question

    @staticmethod
    def hash_content(question: str, phrasings: list[str], answer: str) -> str:
        return hashlib.sha256(json.dumps([question, phrasings, answer]).encode()).hexdigest()


class EntryEmbedding(models.Model):
    """A cached sentence embedding of one of an entry's texts; reused until the text changes."""

    class Field(models.TextChoices):
        QUESTION = "question"  # the question and each phrasing
        ANSWER = "answer"

    entry = models.ForeignKey(Entry, on_delete=models.CASCADE, related_name="embeddings")
    model = models.CharField(max_length=100, blank=True)  # KnowledgeBase.embedding_model that made it; blank: base
    field = models.CharField(max_length=16, choices=Field.choices)
    text = models.TextField()
    vector = models.BinaryField()  # float32, unit length

    class Meta:
        ordering = ["id"]


class Conversation(models.Model):
    """A customer's conversation. Unassigned ones form the shared queue; once an agent takes one, only
    that agent (its assignee) or an admin may change it, while every support agent may still read it."""

    class Status(models.TextChoices):
        OPEN = "open"
        HANDOFF = "handoff"  # needs a human: the agent sees why in handoff_reason
        RESOLVED = "resolved"

    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.PROTECT, related_name="conversations")
    customer_name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    handoff_reason = models.TextField(blank=True)
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="assigned_conversations")  # None: in the shared queue
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]


class Message(models.Model):
    class Role(models.TextChoices):
        CUSTOMER = "customer"
        AGENT = "agent"
        ASSISTANT = "assistant"  # a suggestion for the agent, never sent on its own

    class Feedback(models.TextChoices):
        NONE = ""
        ACCEPTED = "accepted"
        EDITED = "edited"
        REJECTED = "rejected"

    class State(models.TextChoices):
        COMPLETE = "complete"
        STREAMING = "streaming"  # a suggestion whose stream has not ended yet
        INTERRUPTED = "interrupted"  # a suggestion whose client left mid-stream: never offered as complete

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16, choices=Role.choices)
    text = models.TextField()
    standalone_question = models.TextField(blank=True)  # the customer question retrieval used
    citations = models.JSONField(default=list, blank=True)  # [{"entry_id", "question", "score"}]
    confidence = models.FloatField(null=True, blank=True)
    # Who worded a suggestion: the model (an adapter's name, or "base model") when its rephrasing was
    # kept, empty when the text is the knowledge base's own answer.
    worded_by = models.CharField(max_length=100, blank=True)
    feedback = models.CharField(max_length=16, choices=Feedback.choices, default=Feedback.NONE, blank=True)
    final_text = models.TextField(blank=True)  # what the agent sent after accepting or editing
    state = models.CharField(max_length=16, choices=State.choices, default=State.COMPLETE)
    # A customer message's standalone question embedded when it arrived (float32), so that a suggestion
    # asked for later goes to the model at once; valid only while its key (text and embedding model) holds.
    question_vector = models.BinaryField(null=True, blank=True, editable=False)
    question_vector_key = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]


class FeedbackPair(models.Model):
    """A real customer wording and the entry that answers it, from an agent's review of a suggestion:
    accepted or edited (the cited entry), or rejected with the entry the agent chose instead. Tuning
    trains on these next to the entries' phrasings."""

    class Source(models.TextChoices):
        ACCEPTED = "accepted"
        EDITED = "edited"
        CORRECTED = "corrected"  # rejected, with the right entry named

    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="feedback_pairs")
    entry = models.ForeignKey(Entry, on_delete=models.CASCADE, related_name="feedback_pairs")
    text = models.TextField()
    source = models.CharField(max_length=16, choices=Source.choices)
    message = models.OneToOneField(Message, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="feedback_pair")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]


class RetrievalTuning(BackgroundJob):
    """A job that fine-tunes the embedding model on one knowledge base and switches to it only when it
    retrieves held-out phrasings better than the model in use (the gate)."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"  # finished: `switched` says whether the gate took the new model
        FAILED = "failed"

    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="tunings")
    version = models.PositiveIntegerField()
    # What model_service serves the tuned model as: kb-<knowledge base id>-v<version>-<random>, so a
    # name is never reused, even by a knowledge base that gets the id of a deleted one.
    model_name = models.CharField(max_length=100, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    # progress (BackgroundJob): phase, step, total, loss
    switched = models.BooleanField(default=False)
    metrics = models.JSONField(default=dict, blank=True)  # the gate's comparison, pair counts, trade-off
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["knowledge_base", "version"],
                                               name="unique_tuning_version_per_kb")]
