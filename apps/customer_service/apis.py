"""HTTP API of the customer-service app (/api/customer-service/v1/); each view validates, calls one
service or selector, and serialises."""
from django.conf import settings
from django.db.models import ProtectedError
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import HasArea
from apps.accounts.roles import Area
from apps.core.apis import AppStatusApi
from apps.customer_service import selectors, services
from apps.customer_service.importers import ImportFormatError
from apps.customer_service.models import Conversation, Entry, KnowledgeBase, Message
from apps.customer_service.sse import sse_event


class CustomerServiceStatusApi(AppStatusApi):
    area = Area.CUSTOMER_SERVICE
    adapter = "customer_service"


class _Api(APIView):
    permission_classes = [HasArea]
    area = Area.CUSTOMER_SERVICE


def _knowledge_base(kb_id) -> KnowledgeBase:
    try:
        return KnowledgeBase.objects.get(id=int(kb_id))
    except (KnowledgeBase.DoesNotExist, TypeError, ValueError):
        raise NotFound(f"Knowledge base {kb_id} does not exist.") from None


class KnowledgeBaseSerializer(serializers.ModelSerializer):
    entry_count = serializers.IntegerField(source="entries.count", read_only=True)

    class Meta:
        model = KnowledgeBase
        fields = ["id", "name", "description", "entry_count", "index_status", "index_version", "index_dense",
                  "index_error", "indexed_at", "created_at", "updated_at"]


class EntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = Entry
        fields = ["id", "knowledge_base", "question", "phrasings", "answer", "tags", "source", "enabled",
                  "created_at", "updated_at"]


# --- knowledge bases -----------------------------------------------------------------------------

class KnowledgeBaseListCreateApi(_Api):
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        description = serializers.CharField(required=False, allow_blank=True, default="")

        def validate_name(self, value):
            if KnowledgeBase.objects.filter(name=value.strip()).exists():
                raise serializers.ValidationError("A knowledge base with this name exists.")
            return value

    @extend_schema(responses=KnowledgeBaseSerializer(many=True))
    def get(self, request):
        return Response(KnowledgeBaseSerializer(KnowledgeBase.objects.all(), many=True).data)

    @extend_schema(request=InputSerializer, responses={201: KnowledgeBaseSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        knowledge_base = services.knowledge_base_create(**data.validated_data)
        return Response(KnowledgeBaseSerializer(knowledge_base).data, status=status.HTTP_201_CREATED)


class KnowledgeBaseDetailApi(_Api):
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200, required=False)
        description = serializers.CharField(required=False, allow_blank=True)

    @extend_schema(responses=KnowledgeBaseSerializer)
    def get(self, request, kb_id):
        return Response(KnowledgeBaseSerializer(_knowledge_base(kb_id)).data)

    @extend_schema(request=InputSerializer, responses=KnowledgeBaseSerializer)
    def patch(self, request, kb_id):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        knowledge_base = services.knowledge_base_update(knowledge_base=_knowledge_base(kb_id), **data.validated_data)
        return Response(KnowledgeBaseSerializer(knowledge_base).data)

    @extend_schema(responses={204: None})
    def delete(self, request, kb_id):
        try:
            services.knowledge_base_delete(knowledge_base=_knowledge_base(kb_id))
        except ProtectedError:
            return Response({"detail": "Conversations use this knowledge base; resolve or delete them first."},
                            status=status.HTTP_409_CONFLICT)
        return Response(status=status.HTTP_204_NO_CONTENT)


class KnowledgeBaseImportApi(_Api):
    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField(help_text="CSV (question,answer,phrasings,tags), JSON or Markdown")

    @extend_schema(request={"multipart/form-data": InputSerializer},
                   responses={200: {"type": "object", "description": "per-row import report"}})
    def post(self, request, kb_id):
        knowledge_base = _knowledge_base(kb_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        try:
            report = services.knowledge_base_import(knowledge_base=knowledge_base, filename=upload.name,
                                                    data=upload.read())
        except ImportFormatError as error:
            raise ValidationError({"file": [str(error)]}) from None
        return Response(report.as_dict())


class KnowledgeBaseExportApi(_Api):
    @extend_schema(parameters=[OpenApiParameter("file_format", str, enum=["csv", "json"])], responses={200: bytes})
    def get(self, request, kb_id):
        knowledge_base = _knowledge_base(kb_id)
        file_format = request.query_params.get("file_format", "csv")
        if file_format not in ("csv", "json"):
            raise ValidationError({"file_format": ["Use csv or json."]})
        content, media_type = selectors.knowledge_base_export(knowledge_base=knowledge_base, file_format=file_format)
        response = HttpResponse(content, content_type=media_type)
        response["Content-Disposition"] = f'attachment; filename="knowledge-base-{knowledge_base.id}.{file_format}"'
        return response


# --- entries -------------------------------------------------------------------------------------

class EntryInputSerializer(serializers.Serializer):
    question = serializers.CharField(max_length=1000)
    answer = serializers.CharField(max_length=10_000)
    phrasings = serializers.ListField(child=serializers.CharField(max_length=1000), required=False, default=list)
    tags = serializers.ListField(child=serializers.CharField(max_length=100), required=False, default=list)
    enabled = serializers.BooleanField(required=False, default=True)


class EntryListCreateApi(_Api):
    @extend_schema(responses=EntrySerializer(many=True))
    def get(self, request, kb_id):
        return Response(EntrySerializer(_knowledge_base(kb_id).entries.all(), many=True).data)

    @extend_schema(request=EntryInputSerializer, responses={201: EntrySerializer})
    def post(self, request, kb_id):
        knowledge_base = _knowledge_base(kb_id)
        data = EntryInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if knowledge_base.entries.filter(question=data.validated_data["question"].strip()).exists():
            raise ValidationError({"question": ["This knowledge base already has an entry with this question."]})
        entry = services.entry_create(knowledge_base=knowledge_base, source=f"api:{request.user.username}",
                                      **data.validated_data)
        return Response(EntrySerializer(entry).data, status=status.HTTP_201_CREATED)


class EntryDetailApi(_Api):
    @extend_schema(responses=EntrySerializer)
    def get(self, request, entry_id):
        return Response(EntrySerializer(get_object_or_404(Entry, id=entry_id)).data)

    @extend_schema(request=EntryInputSerializer(partial=True), responses=EntrySerializer)
    def patch(self, request, entry_id):
        entry = get_object_or_404(Entry, id=entry_id)
        data = EntryInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        return Response(EntrySerializer(services.entry_update(entry=entry, **data.validated_data)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, entry_id):
        services.entry_delete(entry=get_object_or_404(Entry, id=entry_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- search --------------------------------------------------------------------------------------

class SearchApi(_Api):
    class InputSerializer(serializers.Serializer):
        kb = serializers.IntegerField()
        q = serializers.CharField(max_length=settings.CUSTOMER_SERVICE_MAX_QUESTION_CHARS, trim_whitespace=True,
                                  error_messages={"blank": "The question is empty."})
        k = serializers.IntegerField(min_value=1, max_value=50, default=5)

    class OutputSerializer(serializers.Serializer):
        class ResultSerializer(serializers.Serializer):
            entry_id = serializers.IntegerField(source="entry.id")
            question = serializers.CharField(source="entry.question")
            answer = serializers.CharField(source="entry.answer")
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
                                        k=data.validated_data["k"])
        return Response(self.OutputSerializer(result).data)


# --- conversations -------------------------------------------------------------------------------

class MessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Message
        fields = ["id", "role", "text", "standalone_question", "citations", "confidence", "worded_by", "feedback",
                  "final_text", "created_at"]


class ConversationSerializer(serializers.ModelSerializer):
    messages = MessageSerializer(many=True, read_only=True)

    class Meta:
        model = Conversation
        fields = ["id", "knowledge_base", "customer_name", "status", "handoff_reason", "created_at", "updated_at",
                  "messages"]


def _conversation(conversation_id) -> Conversation:
    return get_object_or_404(Conversation.objects.select_related("knowledge_base"), id=conversation_id)


class ConversationListCreateApi(_Api):
    class InputSerializer(serializers.Serializer):
        knowledge_base = serializers.IntegerField()
        customer_name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

    @extend_schema(parameters=[OpenApiParameter("status", str, enum=list(Conversation.Status.values))],
                   responses=ConversationSerializer(many=True))
    def get(self, request):
        conversations = selectors.conversation_list(status=request.query_params.get("status"))
        return Response(ConversationSerializer(conversations.prefetch_related("messages"), many=True).data)

    @extend_schema(request=InputSerializer, responses={201: ConversationSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        conversation = services.conversation_create(knowledge_base=_knowledge_base(data.validated_data["knowledge_base"]),
                                                    customer_name=data.validated_data["customer_name"],
                                                    agent=request.user)
        return Response(ConversationSerializer(conversation).data, status=status.HTTP_201_CREATED)


class ConversationDetailApi(_Api):
    @extend_schema(responses=ConversationSerializer)
    def get(self, request, conversation_id):
        return Response(ConversationSerializer(_conversation(conversation_id)).data)


class ConversationMessageCreateApi(_Api):
    class InputSerializer(serializers.Serializer):
        role = serializers.ChoiceField(choices=[Message.Role.CUSTOMER, Message.Role.AGENT])
        text = serializers.CharField(max_length=settings.CUSTOMER_SERVICE_MAX_QUESTION_CHARS,
                                     error_messages={"blank": "The message is empty."})

    @extend_schema(request=InputSerializer, responses={201: MessageSerializer})
    def post(self, request, conversation_id):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        message = services.conversation_message_add(conversation=_conversation(conversation_id), **data.validated_data)
        return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)


class ConversationSuggestApi(_Api):
    """A suggested reply to the last customer message; `?stream=1` streams it as Server-Sent Events
    (`token` events with text, then one `done` event with the saved message)."""

    @extend_schema(parameters=[OpenApiParameter("stream", bool)], request=None, responses={201: MessageSerializer})
    def post(self, request, conversation_id):
        conversation = _conversation(conversation_id)
        try:
            suggestion = services.conversation_suggest(conversation=conversation)
        except ValueError as error:
            raise ValidationError({"detail": str(error)}) from None
        if request.query_params.get("stream") in ("1", "true"):
            return StreamingHttpResponse(_suggestion_events(suggestion), content_type="text/event-stream",
                                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        text = "".join(suggestion.chunks)  # finalises the message
        suggestion.message.refresh_from_db()
        return Response(dict(MessageSerializer(suggestion.message).data, streamed_text=text),
                        status=status.HTTP_201_CREATED)


def _suggestion_events(suggestion):
    for chunk in suggestion.chunks:
        yield sse_event("token", {"text": chunk})
    suggestion.message.refresh_from_db()
    conversation = suggestion.message.conversation
    conversation.refresh_from_db()
    yield sse_event("done", dict(MessageSerializer(suggestion.message).data, conversation_status=conversation.status,
                                 handoff_reason=conversation.handoff_reason))


class MessageFeedbackApi(_Api):
    class InputSerializer(serializers.Serializer):
        action = serializers.ChoiceField(choices=[Message.Feedback.ACCEPTED, Message.Feedback.EDITED,
                                                  Message.Feedback.REJECTED])
        text = serializers.CharField(required=False, allow_blank=True, default="", max_length=10_000)

    @extend_schema(request=InputSerializer, responses=MessageSerializer)
    def post(self, request, message_id):
        message = get_object_or_404(Message, id=message_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            message = services.message_feedback(message=message, action=data.validated_data["action"],
                                                final_text=data.validated_data["text"])
        except ValueError as error:
            raise ValidationError({"detail": str(error)}) from None
        return Response(MessageSerializer(message).data)


class ConversationStatusApi(_Api):
    class InputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=Conversation.Status.choices)
        reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=1000)

    @extend_schema(request=InputSerializer, responses=ConversationSerializer)
    def post(self, request, conversation_id):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        conversation = services.conversation_status_set(conversation=_conversation(conversation_id),
                                                        **data.validated_data)
        return Response(ConversationSerializer(conversation).data)


class StatsApi(_Api):
    @extend_schema(responses={200: {"type": "object"}})
    def get(self, request):
        return Response(selectors.suggestion_stats())
