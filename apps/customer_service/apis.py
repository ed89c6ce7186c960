"""HTTP API of the customer-service app (/api/customer-service/v1/); each view validates, calls one
service or selector, and serialises."""
from contextlib import aclosing

from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import ApiToken
from apps.accounts.permissions import HasArea
from apps.accounts.roles import Area
from apps.core.apis import AppStatusApi, BoundedUploadsMixin
from apps.core.db import release_connection
from apps.customer_service import dify, importers, selectors, services
from apps.customer_service.models import Conversation, Entry, KnowledgeBase, Message, RetrievalTuning
from apps.customer_service.pagination import PageSerializer, paginate, paginated
from apps.customer_service.sse import sse_event
from apps.customer_service.tag_filters import TagFilter


class _Api(APIView):
    permission_classes = [HasArea]
    area = Area.CUSTOMER_SERVICE


class CustomerServiceStatusApi(_Api, AppStatusApi):
    adapter = "customer_service"


def _knowledge_base(kb_id) -> KnowledgeBase:
    return selectors.knowledge_base_get(kb_id=kb_id)


class KnowledgeBaseSerializer(serializers.ModelSerializer):
    entry_count = serializers.IntegerField(source="entries.count", read_only=True)
    embedding_model = serializers.SerializerMethodField(help_text="the tuned model retrieval uses, or \"base\"")
    default_threshold = serializers.SerializerMethodField(
        help_text="the calibration's own threshold; answer_threshold (an admin's choice) overrides it when set")

    class Meta:
        model = KnowledgeBase
        fields = ["id", "name", "description", "entry_count", "index_status", "index_version", "index_dense",
                  "index_error", "indexed_at", "embedding_model", "answer_threshold", "default_threshold",
                  "created_at", "updated_at"]

    def get_embedding_model(self, knowledge_base) -> str:
        return knowledge_base.embedding_model or "base"

    def get_default_threshold(self, knowledge_base) -> float:
        return services.knowledge_base_calibration(knowledge_base).threshold


class RetrievalTuningSerializer(serializers.ModelSerializer):
    class Meta:
        model = RetrievalTuning
        fields = ["id", "knowledge_base", "version", "model_name", "status", "switched", "progress", "metrics",
                  "error", "attempts", "created_at", "started_at", "finished_at"]


class EntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = Entry
        fields = ["id", "knowledge_base", "question", "phrasings", "answer", "tags", "source", "enabled",
                  "created_at", "updated_at"]


# --- knowledge bases -----------------------------------------------------------------------------

class KnowledgeBaseListCreateApi(_Api):
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        description = serializers.CharField(required=False, allow_blank=True, default="", max_length=10_000)

    @extend_schema(operation_id="customer_service_v1_knowledge_bases_list", parameters=[PageSerializer],
                   responses=paginated(KnowledgeBaseSerializer))
    def get(self, request):
        return Response(paginate(request, selectors.knowledge_base_list(), KnowledgeBaseSerializer))

    @extend_schema(request=InputSerializer, responses={201: KnowledgeBaseSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        knowledge_base = services.knowledge_base_create(**data.validated_data)
        return Response(KnowledgeBaseSerializer(knowledge_base).data, status=status.HTTP_201_CREATED)


class KnowledgeBaseDetailApi(_Api):
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200, required=False)
        description = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
        answer_threshold = serializers.FloatField(required=False, allow_null=True, min_value=0.0, max_value=1.0,
                                                  help_text="admins: the confidence from which suggestions answer; "
                                                            "null: the calibration's default")

    @extend_schema(responses=KnowledgeBaseSerializer)
    def get(self, request, kb_id):
        return Response(KnowledgeBaseSerializer(_knowledge_base(kb_id)).data)

    @extend_schema(request=InputSerializer, responses=KnowledgeBaseSerializer)
    def patch(self, request, kb_id):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        knowledge_base = _knowledge_base(kb_id)
        if "answer_threshold" in values:
            knowledge_base = services.answer_threshold_set(knowledge_base=knowledge_base, user=request.user,
                                                           threshold=values.pop("answer_threshold"))
        knowledge_base = services.knowledge_base_update(knowledge_base=knowledge_base, **values)
        return Response(KnowledgeBaseSerializer(knowledge_base).data)

    @extend_schema(responses={204: None})
    def delete(self, request, kb_id):
        services.knowledge_base_delete(knowledge_base=_knowledge_base(kb_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class KnowledgeBaseImportApi(BoundedUploadsMixin, _Api):
    parser_classes = [MultiPartParser, FormParser]
    upload_limit_setting = "CUSTOMER_SERVICE_IMPORT_MAX_BYTES"

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField(help_text="CSV (question,answer,phrasings,tags), JSON or Markdown")

    class OutputSerializer(serializers.Serializer):
        """The per-row import report."""

        class RowSerializer(serializers.Serializer):
            row = serializers.IntegerField(help_text="1-based: the CSV line after the header, the JSON item, "
                                                     "the Markdown section")
            status = serializers.ChoiceField(choices=["imported", "updated", "skipped"])
            question = serializers.CharField()
            reason = serializers.CharField(help_text="why a row was skipped; empty otherwise")

        imported = serializers.IntegerField()
        updated = serializers.IntegerField()
        skipped = serializers.IntegerField()
        rows = RowSerializer(many=True)

    @extend_schema(request={"multipart/form-data": InputSerializer}, responses=OutputSerializer)
    def post(self, request, kb_id):
        knowledge_base = _knowledge_base(kb_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        report = services.knowledge_base_import(knowledge_base=knowledge_base, filename=upload.name,
                                                data=importers.read_import(upload))
        return Response(self.OutputSerializer(report).data)


class KnowledgeBaseExportApi(_Api):
    class FilterSerializer(serializers.Serializer):
        file_format = serializers.ChoiceField(choices=["csv", "json"], default="csv",
                                              error_messages={"invalid_choice": "Use csv or json."})

    @extend_schema(parameters=[FilterSerializer], responses={200: bytes})
    def get(self, request, kb_id):
        knowledge_base = _knowledge_base(kb_id)
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        file_format = filters.validated_data["file_format"]
        content, media_type = selectors.knowledge_base_export(knowledge_base=knowledge_base, file_format=file_format)
        response = HttpResponse(content, content_type=media_type)
        response["Content-Disposition"] = f'attachment; filename="knowledge-base-{knowledge_base.id}.{file_format}"'
        return response


# --- entries -------------------------------------------------------------------------------------

class EntryInputSerializer(serializers.Serializer):
    question = serializers.CharField(max_length=settings.CUSTOMER_SERVICE_MAX_QUESTION_CHARS)
    answer = serializers.CharField(max_length=settings.CUSTOMER_SERVICE_MAX_ANSWER_CHARS)
    phrasings = serializers.ListField(
        child=serializers.CharField(max_length=settings.CUSTOMER_SERVICE_MAX_QUESTION_CHARS), required=False,
        default=list, max_length=importers.MAX_PHRASINGS)
    tags = serializers.ListField(child=serializers.CharField(max_length=100), required=False, default=list,
                                 max_length=importers.MAX_TAGS)
    enabled = serializers.BooleanField(required=False, default=True)


class EntryListCreateApi(_Api):
    @extend_schema(operation_id="customer_service_v1_knowledge_bases_entries_list", parameters=[PageSerializer],
                   responses=paginated(EntrySerializer))
    def get(self, request, kb_id):
        entries = selectors.entry_list(knowledge_base=_knowledge_base(kb_id))
        return Response(paginate(request, entries, EntrySerializer))

    @extend_schema(request=EntryInputSerializer, responses={201: EntrySerializer})
    def post(self, request, kb_id):
        knowledge_base = _knowledge_base(kb_id)
        data = EntryInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        entry = services.entry_create(knowledge_base=knowledge_base, source=f"api:{request.user.username}",
                                      **data.validated_data)
        return Response(EntrySerializer(entry).data, status=status.HTTP_201_CREATED)


class EntryDetailApi(_Api):
    @extend_schema(responses=EntrySerializer)
    def get(self, request, entry_id):
        return Response(EntrySerializer(selectors.entry_get(entry_id=entry_id)).data)

    @extend_schema(request=EntryInputSerializer(partial=True), responses=EntrySerializer)
    def patch(self, request, entry_id):
        entry = selectors.entry_get(entry_id=entry_id)
        data = EntryInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        return Response(EntrySerializer(services.entry_update(entry=entry, **data.validated_data)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, entry_id):
        services.entry_delete(entry=selectors.entry_get(entry_id=entry_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- retrieval tuning ----------------------------------------------------------------------------

class RetrievalTuningListCreateApi(_Api):
    """A knowledge base's retrieval tunings, newest first; admins queue one with POST."""

    @extend_schema(operation_id="customer_service_v1_tunings_list", parameters=[PageSerializer],
                   responses=paginated(RetrievalTuningSerializer))
    def get(self, request, kb_id):
        tunings = selectors.retrieval_tuning_list(knowledge_base=_knowledge_base(kb_id))
        return Response(paginate(request, tunings, RetrievalTuningSerializer))

    @extend_schema(request=None, responses={201: RetrievalTuningSerializer})
    def post(self, request, kb_id):
        tuning = services.retrieval_tuning_request(knowledge_base=_knowledge_base(kb_id), user=request.user)
        return Response(RetrievalTuningSerializer(tuning).data, status=status.HTTP_201_CREATED)


class RetrievalTuningDetailApi(_Api):
    @extend_schema(responses=RetrievalTuningSerializer)
    def get(self, request, tuning_id):
        return Response(RetrievalTuningSerializer(selectors.retrieval_tuning_get(tuning_id=tuning_id)).data)


class SuggestionAccuracyApi(_Api):
    """Per day, how agents reviewed the knowledge base's suggestions (the console's accuracy chart)."""

    class FilterSerializer(serializers.Serializer):
        days = serializers.IntegerField(min_value=1, max_value=366, default=30)

    class OutputSerializer(serializers.Serializer):
        day = serializers.DateField()
        suggestions = serializers.IntegerField()
        right = serializers.IntegerField(help_text="accepted or edited")
        wrong = serializers.IntegerField(help_text="rejected")
        accuracy = serializers.FloatField(allow_null=True, help_text="right over reviewed; null without reviews")

    @extend_schema(parameters=[FilterSerializer], responses=OutputSerializer(many=True))
    def get(self, request, kb_id):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        rows = selectors.suggestion_accuracy(knowledge_base=_knowledge_base(kb_id), **filters.validated_data)
        return Response(self.OutputSerializer(rows, many=True).data)


# --- search --------------------------------------------------------------------------------------

class SearchApi(_Api):
    class InputSerializer(serializers.Serializer):
        kb = serializers.IntegerField()
        q = serializers.CharField(max_length=settings.CUSTOMER_SERVICE_MAX_QUESTION_CHARS, trim_whitespace=True,
                                  error_messages={"blank": "The question is empty."})
        k = serializers.IntegerField(min_value=1, max_value=50, default=5)
        tags = serializers.CharField(required=False, max_length=2000,
                                     help_text="comma-separated: only entries having every one of these tags")

        def validate_tags(self, value: str) -> TagFilter | None:
            tags = [tag.strip() for tag in value.split(",") if tag.strip()]
            if len(tags) > importers.MAX_TAGS:
                raise serializers.ValidationError(f"At most {importers.MAX_TAGS} tags.")
            return TagFilter.having_all(tags) if tags else None

    class OutputSerializer(serializers.Serializer):
        class ResultSerializer(serializers.Serializer):
            entry_id = serializers.IntegerField(source="entry.id")
            question = serializers.CharField(source="entry.question")
            answer = serializers.CharField(source="entry.answer")
            tags = serializers.ListField(child=serializers.CharField(), source="entry.tags")
            score = serializers.FloatField()

        results = ResultSerializer(many=True, source="hits")
        confident = serializers.BooleanField()
        confidence = serializers.FloatField()
        dense = serializers.BooleanField()

    @extend_schema(parameters=[InputSerializer], responses=OutputSerializer)
    def get(self, request):
        data = self.InputSerializer(data=request.query_params)
        data.is_valid(raise_exception=True)
        knowledge_base = _knowledge_base(data.validated_data["kb"])
        result = selectors.entry_search(knowledge_base=knowledge_base, question=data.validated_data["q"],
                                        k=data.validated_data["k"], tag_filter=data.validated_data.get("tags"))
        return Response(self.OutputSerializer(result).data)


class DifyRetrievalApi(APIView):
    """Dify's external knowledge API: paste `<this server>/api/customer-service/v1/dify` into Dify as the
    endpoint (Dify appends `/retrieval`) and a retrieval-scope API token as its key; the External
    Knowledge ID is the knowledge base's id.

    Records are the best entries by hybrid retrieval, `score` the retrieval score over the best
    possible one (in [0, 1]); those under `score_threshold` are left out. Errors are Dify's
    `{"error_code", "error_msg"}`: 1001 no or a malformed Authorization header, 1002 a token that is
    unknown, expired or of another scope (403 both), 2001 a knowledge base that does not exist or that
    the token's user may not read (404), 3001 (this suite's) a request outside the contract (400).
    """

    authentication_classes = [dify.DifyBearerAuthentication]
    parser_classes = [JSONParser]
    token_scope = ApiToken.Scope.RETRIEVAL

    class InputSerializer(serializers.Serializer):
        class RetrievalSettingSerializer(serializers.Serializer):
            top_k = serializers.IntegerField(min_value=1, max_value=50)
            score_threshold = serializers.FloatField(min_value=0.0, max_value=1.0, default=0.0)

        knowledge_id = serializers.CharField(max_length=100, help_text="the knowledge base's id")
        query = serializers.CharField(max_length=settings.CUSTOMER_SERVICE_MAX_QUESTION_CHARS,
                                      error_messages={"blank": "The query is empty."})
        retrieval_setting = RetrievalSettingSerializer()
        metadata_condition = dify.MetadataConditionSerializer(required=False, allow_null=True)

    class OutputSerializer(serializers.Serializer):
        class RecordSerializer(serializers.Serializer):
            class MetadataSerializer(serializers.Serializer):
                entry_id = serializers.IntegerField(source="entry.id")
                tags = serializers.ListField(child=serializers.CharField(), source="entry.tags")
                knowledge_base_id = serializers.IntegerField(source="entry.knowledge_base_id")
                knowledge_base = serializers.CharField(source="entry.knowledge_base.name")

            content = serializers.CharField(source="entry.answer")
            score = serializers.FloatField(source="relevance", min_value=0.0, max_value=1.0)
            title = serializers.CharField(source="entry.question")
            metadata = MetadataSerializer(source="*")

        records = RecordSerializer(many=True)

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer, **dify.ERROR_RESPONSES})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        setting = data.validated_data["retrieval_setting"]
        tag_filter = dify.tag_filter_from_condition(data.validated_data.get("metadata_condition"))
        knowledge_base = selectors.knowledge_base_get_for_user(user=request.user,
                                                               kb_id=data.validated_data["knowledge_id"])
        result = selectors.entry_search(knowledge_base=knowledge_base, question=data.validated_data["query"],
                                        k=setting["top_k"], tag_filter=tag_filter)
        records = [hit for hit in result.hits if hit.relevance >= setting["score_threshold"]]
        return Response(self.OutputSerializer({"records": records}).data)

    def handle_exception(self, exc):
        return super().handle_exception(dify.dify_error_for(exc))


# --- conversations -------------------------------------------------------------------------------

class MessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Message
        fields = ["id", "role", "text", "standalone_question", "citations", "confidence", "worded_by", "state",
                  "feedback", "final_text", "created_at"]


class AssigneeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class ConversationSerializer(serializers.ModelSerializer):
    assignee = AssigneeSerializer(allow_null=True, read_only=True, help_text="null: in the shared queue")
    messages = MessageSerializer(many=True, read_only=True)

    class Meta:
        model = Conversation
        fields = ["id", "knowledge_base", "customer_name", "status", "handoff_reason", "assignee", "created_at",
                  "updated_at", "messages"]


def _conversation(conversation_id) -> Conversation:
    return selectors.conversation_get(conversation_id=conversation_id)


class ConversationListCreateApi(_Api):
    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=Conversation.Status.choices, required=False)
        assignee = serializers.ChoiceField(choices=["none", "me"], required=False,
                                           help_text="none: the shared queue; me: the caller's conversations")

    class InputSerializer(serializers.Serializer):
        knowledge_base = serializers.IntegerField()
        customer_name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
        queue = serializers.BooleanField(required=False, default=False,
                                         help_text="true: leave it unassigned in the shared queue; "
                                                   "false: the caller takes it")

    @extend_schema(operation_id="customer_service_v1_conversations_list", parameters=[FilterSerializer, PageSerializer],
                   responses=paginated(ConversationSerializer))
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        conversations = selectors.conversation_list(user=request.user, with_messages=True, **filters.validated_data)
        return Response(paginate(request, conversations, ConversationSerializer))

    @extend_schema(request=InputSerializer, responses={201: ConversationSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        conversation = services.conversation_create(
            knowledge_base=_knowledge_base(data.validated_data["knowledge_base"]),
            customer_name=data.validated_data["customer_name"],
            assignee=None if data.validated_data["queue"] else request.user)
        return Response(ConversationSerializer(conversation).data, status=status.HTTP_201_CREATED)


class ConversationDetailApi(_Api):
    @extend_schema(responses=ConversationSerializer)
    def get(self, request, conversation_id):
        return Response(ConversationSerializer(_conversation(conversation_id)).data)


class ConversationTakeApi(_Api):
    """Take a conversation from the shared queue: the caller becomes its assignee (admins may take any)."""

    @extend_schema(request=None, responses=ConversationSerializer)
    def post(self, request, conversation_id):
        conversation = services.conversation_take(conversation=_conversation(conversation_id), user=request.user)
        return Response(ConversationSerializer(conversation).data)


class ConversationAssignApi(_Api):
    """Assign a conversation to a support agent (admins), or release it to the queue with `assignee: null`
    (admins, or its assignee)."""

    class InputSerializer(serializers.Serializer):
        assignee = serializers.IntegerField(allow_null=True, min_value=1, help_text="a user id; null releases it")

    @extend_schema(request=InputSerializer, responses=ConversationSerializer)
    def post(self, request, conversation_id):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        assignee_id = data.validated_data["assignee"]
        assignee = selectors.support_agent_get(user_id=assignee_id) if assignee_id is not None else None
        conversation = services.conversation_assign(conversation=_conversation(conversation_id), user=request.user,
                                                    assignee=assignee)
        return Response(ConversationSerializer(conversation).data)


class ConversationMessageCreateApi(_Api):
    class InputSerializer(serializers.Serializer):
        role = serializers.ChoiceField(choices=[Message.Role.CUSTOMER, Message.Role.AGENT])
        text = serializers.CharField(max_length=settings.CUSTOMER_SERVICE_MAX_QUESTION_CHARS,
                                     error_messages={"blank": "The message is empty."})

    @extend_schema(request=InputSerializer, responses={201: MessageSerializer})
    def post(self, request, conversation_id):
        conversation = _conversation(conversation_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        message = services.conversation_message_add(conversation=conversation, user=request.user,
                                                    **data.validated_data)
        return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)


class ConversationSuggestApi(_Api):
    """A suggested reply to the last customer message; `?stream=1` streams it as Server-Sent Events
    (`token` events with text as the model generates it, then one `done` event: the saved message,
    `conversation_status` and `handoff_reason`). A client that hangs up mid-stream leaves the message
    `interrupted`, and model_service stops generating it.

    The stream runs on the event loop under ASGI (uvicorn: `make run`, compose), holding no thread;
    a WSGI server (the tests' live server) gets the same events sent whole at the end."""

    class OutputSerializer(MessageSerializer):
        streamed_text = serializers.SerializerMethodField(help_text="the text as it streamed, with the note "
                                                                    "when the model's wording was replaced")

        class Meta(MessageSerializer.Meta):
            fields = [*MessageSerializer.Meta.fields, "streamed_text"]

        @extend_schema_field(OpenApiTypes.STR)
        def get_streamed_text(self, message) -> str:
            return self.context["streamed_text"]

    class DoneEventSerializer(MessageSerializer):
        conversation_status = serializers.CharField(source="conversation.status")
        handoff_reason = serializers.CharField(source="conversation.handoff_reason")

        class Meta(MessageSerializer.Meta):
            fields = [*MessageSerializer.Meta.fields, "conversation_status", "handoff_reason"]

    @extend_schema(parameters=[OpenApiParameter("stream", bool)], request=None, responses={201: OutputSerializer})
    def post(self, request, conversation_id):
        suggestion = services.conversation_suggest(conversation=_conversation(conversation_id), user=request.user)
        release_connection()  # the model generates for seconds now; the message's last write takes one again
        if request.query_params.get("stream") in ("1", "true"):
            events = self._events(suggestion)
            if not isinstance(request._request, ASGIRequest):  # no event loop to stream from under WSGI
                events = async_to_sync(_collected)(events)
            return StreamingHttpResponse(events, content_type="text/event-stream",
                                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        text = suggestion.text()
        return Response(self.OutputSerializer(suggestion.message, context={"streamed_text": text}).data,
                        status=status.HTTP_201_CREATED)

    async def _events(self, suggestion):
        async with aclosing(suggestion.chunks) as chunks:  # closed early, it marks the message interrupted
            async for chunk in chunks:
                yield sse_event("token", {"text": chunk})
        yield sse_event("done", self.DoneEventSerializer(suggestion.message).data)


async def _collected(events) -> list[str]:
    return [event async for event in events]


class MessageFeedbackApi(_Api):
    class InputSerializer(serializers.Serializer):
        action = serializers.ChoiceField(choices=[Message.Feedback.ACCEPTED, Message.Feedback.EDITED,
                                                  Message.Feedback.REJECTED])
        text = serializers.CharField(required=False, allow_blank=True, default="",
                                     max_length=settings.CUSTOMER_SERVICE_MAX_ANSWER_CHARS)
        entry = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1,
                                         help_text="the entry that answers the customer (for a rejected suggestion, "
                                                   "the right one): a training pair for retrieval tuning")

    @extend_schema(request=InputSerializer, responses=MessageSerializer)
    def post(self, request, message_id):
        message = selectors.message_get(message_id=message_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        message = services.message_feedback(message=message, user=request.user, action=data.validated_data["action"],
                                            final_text=data.validated_data["text"],
                                            entry_id=data.validated_data["entry"])
        return Response(MessageSerializer(message).data)


class ConversationStatusApi(_Api):
    class InputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=Conversation.Status.choices)
        reason = serializers.CharField(required=False, allow_blank=True, default="",
                                       max_length=settings.CUSTOMER_SERVICE_MAX_REASON_CHARS)

    @extend_schema(request=InputSerializer, responses=ConversationSerializer)
    def post(self, request, conversation_id):
        conversation = _conversation(conversation_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        conversation = services.conversation_status_set(conversation=conversation, user=request.user,
                                                        **data.validated_data)
        return Response(ConversationSerializer(conversation).data)


class SuggestionStatsApi(_Api):
    """How agents used the suggestions and how conversations ended."""

    class OutputSerializer(serializers.Serializer):
        class SuggestionCountsSerializer(serializers.Serializer):
            total = serializers.IntegerField()
            accepted = serializers.IntegerField()
            edited = serializers.IntegerField()
            rejected = serializers.IntegerField()

        class ConversationCountsSerializer(serializers.Serializer):
            total = serializers.IntegerField()
            resolved = serializers.IntegerField()
            handoff = serializers.IntegerField()

        suggestions = SuggestionCountsSerializer()
        acceptance_rate = serializers.FloatField(allow_null=True, help_text="accepted or edited of those reviewed; "
                                                                            "null before any review")
        conversations = ConversationCountsSerializer()
        resolution_rate = serializers.FloatField(allow_null=True, help_text="null before any conversation")

    @extend_schema(responses=OutputSerializer)
    def get(self, request):
        return Response(self.OutputSerializer(selectors.suggestion_stats()).data)
