"""HTTP API of the codegen app (/api/codegen/v1/): Tabby-compatible completions, telemetry, repositories."""
from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import ApiToken
from apps.accounts.permissions import HasArea
from apps.accounts.roles import Area
from apps.codegen import selectors, services
from apps.codegen.completion import CHANGED_FILE, DECLARATION, OPENED_FILE, SOURCES, CompletionRequestData, Snippet
from apps.codegen.languages import PLAINTEXT, normalise
from apps.codegen.models import VIEW_ID_MAX_CHARS, CompletionEvent, Repository
from apps.core.apis import AppStatusApi, BoundedUploadsMixin
from apps.core.errors import ApplicationError, TooLargeError


# What an IDE may send as context besides the file (Tabby's agents send a handful of snippets of a few
# hundred characters each, and a clipboard of at most 2,000): beyond these the request is a 422.
CONTEXT_SNIPPETS_MAX = 20  # per list: declarations, changed files, opened files
CONTEXT_SNIPPET_MAX_CHARS = 20_000  # per snippet body, and the clipboard
CHOICE_INDEX_MAX = 2**31 - 1  # the column's limit (Tabby's choice_index is a u32; completions here have one choice)
ELAPSED_MAX_MS = 2**32 - 1  # Tabby's elapsed is a u32 of milliseconds


class _Api(APIView):
    permission_classes = [HasArea]
    area = Area.CODEGEN


class CodegenStatusApi(_Api, AppStatusApi):
    adapter = "codegen"


def _unprocessable(message: str, *, code: str, field: str, **extra) -> ApplicationError:
    """Tabby's clients expect 422 for a completion request they got wrong."""
    return ApplicationError(message=message, status=422, code=code, field=field, extra=extra)


def _tabby_body(data) -> dict:
    """The request in Tabby's shape (the native flat shape moved into `segments`), with its language
    normalised (plain text when missing or unknown) and its prefix and suffix within CODEGEN_MAX_SEGMENT_CHARS."""
    if not hasattr(data, "keys"):  # a JSON array, string or number
        raise _unprocessable("The body must be a JSON object (Tabby's completion request).", code="not_an_object",
                             field="")
    body = dict(data)
    if "segments" not in body:  # the native flat shape
        body["segments"] = {key: body.pop(key) for key in ("prefix", "suffix", "filepath") if key in body}
    language = normalise(str(body.get("language") or "")) or PLAINTEXT.name  # completed without a syntax guard
    segments = body.get("segments") or {}
    if not isinstance(segments, dict) or "prefix" not in segments:
        raise _unprocessable("segments.prefix is required (the code before the cursor).", code="required",
                             field="segments.prefix")
    limit = settings.CODEGEN_MAX_SEGMENT_CHARS
    if any(len(str(segments.get(key) or "")) > limit for key in ("prefix", "suffix")):
        raise TooLargeError(f"prefix and suffix are limited to {limit} characters each.", field="segments")
    return {**body, "language": language, "segments": segments}


class ContextSnippetSerializer(serializers.Serializer):
    """A snippet an IDE sends as context (Tabby's Declaration and Snippet; a declaration has no score)."""

    filepath = serializers.CharField(allow_blank=True, required=False, default="", max_length=1000)
    body = serializers.CharField(allow_blank=True, max_length=CONTEXT_SNIPPET_MAX_CHARS, trim_whitespace=False)
    score = serializers.FloatField(required=False, allow_null=True, default=0.0)


def _context_snippets() -> ContextSnippetSerializer:
    """A list of context snippets in Tabby's segments: optional, null allowed, at most CONTEXT_SNIPPETS_MAX."""
    return ContextSnippetSerializer(many=True, required=False, allow_null=True, default=list,
                                    max_length=CONTEXT_SNIPPETS_MAX)


class HealthApi(_Api):
    """Tabby's `/v1/health`: IDE clients show "ready" and register completion only when it names a model."""

    token_scope = ApiToken.Scope.COMPLETION

    class OutputSerializer(serializers.Serializer):
        class VersionSerializer(serializers.Serializer):
            build_date = serializers.CharField(allow_blank=True)
            build_timestamp = serializers.CharField(allow_blank=True)
            git_sha = serializers.CharField(allow_blank=True)
            git_describe = serializers.CharField(allow_blank=True)

        model = serializers.CharField(help_text="The checkpoint model_service serves.")
        chat_model = serializers.CharField(allow_null=True)
        device = serializers.CharField()
        arch = serializers.CharField()
        cpu_info = serializers.CharField(allow_blank=True)
        cpu_count = serializers.IntegerField()
        cuda_devices = serializers.ListField(child=serializers.CharField())
        version = VersionSerializer()

    @extend_schema(request=None, responses={200: OutputSerializer, 401: None})
    def get(self, request):
        return Response(self.OutputSerializer(selectors.tabby_health()).data)

    @extend_schema(request=None, responses={200: OutputSerializer, 401: None})
    def post(self, request):  # Tabby's agents of the 1.x line ask with POST
        return self.get(request)


class ServerSettingApi(_Api):
    """Tabby's `/v1beta/server_setting`: what the server asks of its IDE clients."""

    token_scope = ApiToken.Scope.COMPLETION

    class OutputSerializer(serializers.Serializer):
        disable_client_side_telemetry = serializers.BooleanField()

    @extend_schema(responses={200: OutputSerializer, 401: None})
    def get(self, request):
        return Response(self.OutputSerializer({"disable_client_side_telemetry": False}).data)


class CompletionApi(_Api):
    """Tabby's `/v1/completions` request and response shapes, so Tabby's IDE extensions work unchanged.

    A flat native shape is accepted too: {"language", "prefix", "suffix", "filepath", "repository"}.
    """

    token_scope = ApiToken.Scope.COMPLETION  # an IDE token may call this

    class SegmentsSerializer(serializers.Serializer):
        """Tabby's Segments: its clients send null for what they do not have."""

        prefix = serializers.CharField(allow_blank=True, trim_whitespace=False)
        suffix = serializers.CharField(allow_blank=True, allow_null=True, required=False, default="",
                                       trim_whitespace=False)
        filepath = serializers.CharField(allow_blank=True, allow_null=True, required=False, default="")
        git_url = serializers.CharField(allow_blank=True, allow_null=True, required=False, default="")
        declarations = _context_snippets()
        relevant_snippets_from_changed_files = _context_snippets()
        relevant_snippets_from_recently_opened_files = _context_snippets()
        clipboard = serializers.CharField(allow_blank=True, allow_null=True, required=False, default="",
                                          trim_whitespace=False, max_length=CONTEXT_SNIPPET_MAX_CHARS)

    class DebugOptionsSerializer(serializers.Serializer):
        return_snippets = serializers.BooleanField(required=False, default=False)
        return_prompt = serializers.BooleanField(required=False, default=False)
        disable_retrieval_augmented_code_completion = serializers.BooleanField(required=False, default=False)
        disable_repository_candidates = serializers.BooleanField(
            required=False, default=False, help_text="Only the model's samples are candidates (no continuations of "
                                                     "earlier occurrences in the repository or the file).")
        disable_ranking = serializers.BooleanField(
            required=False, default=False, help_text="Candidates are tried in the match order (longest match, most "
                                                     "frequent) and the model's order, not ranked by its log-probability.")

    class InputSerializer(serializers.Serializer):
        language = serializers.CharField()
        segments = serializers.DictField()
        temperature = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=2)
        seed = serializers.IntegerField(required=False, allow_null=True)
        repository = serializers.IntegerField(required=False, allow_null=True)
        debug_options = serializers.DictField(required=False, default=dict)

    class OutputSerializer(serializers.Serializer):
        class ChoiceSerializer(serializers.Serializer):
            index = serializers.IntegerField()
            text = serializers.CharField(allow_blank=True)

        class DebugDataSerializer(serializers.Serializer):
            """What happened: the prompt (with `return_prompt`), the context snippets, the guard's log."""

            class SnippetSerializer(serializers.Serializer):
                filepath = serializers.CharField(allow_blank=True)
                body = serializers.CharField(allow_blank=True)
                source = serializers.ChoiceField(choices=SOURCES)
                score = serializers.FloatField()

            prompt = serializers.CharField(required=False, allow_blank=True)
            prompt_scale = serializers.FloatField(help_text="The share of the context and window budgets used.")
            fill_in_the_middle = serializers.BooleanField(
                help_text="False: the model has no fill-in-the-middle format, so it continued the text before the "
                          "cursor (the text after it was not sent).")
            multiline = serializers.BooleanField()
            model_called = serializers.BooleanField(help_text=(
                "False: a repository continuation passed the guard, so the model was not asked (no prompt or "
                "snippets then)."))
            model_timed_out = serializers.BooleanField(help_text=(
                "True: the model did not answer a single line within its deadline "
                "(CODEGEN_SINGLE_LINE_MODEL_DEADLINE_S), so only the repository's candidates counted."))
            guard = serializers.ListField(child=serializers.DictField(), help_text="One entry per model candidate.")
            timings = serializers.DictField(child=serializers.FloatField(), help_text="Milliseconds per stage.")
            snippets = SnippetSerializer(many=True)
            source = serializers.CharField(allow_blank=True, help_text=(
                "Where the completion came from: model, repository (what followed the longest earlier occurrence "
                "of the text before the cursor in another file) or same_file; empty when none was served."))
            ranking = serializers.ListField(child=serializers.CharField(), help_text=(
                "How each round of candidates was ordered (the repository's, then the model's samples when it "
                "was asked): logprob (by the model's log-probability of each plus the match bonus), or why they "
                "kept their order: one-candidate, no-candidate, scoring-failed, model-order."))
            candidates = serializers.ListField(child=serializers.DictField(), help_text=(
                "Every candidate in the order tried, with its source and, for a repository one, the match length "
                "in tokens, how often that continuation followed, and the file it came from; logprob is the "
                "model's log-probability of it after the prompt and rank_score what it was ranked by (null: not "
                "scored)."))

        id = serializers.CharField()
        choices = ChoiceSerializer(many=True)
        debug_data = DebugDataSerializer(required=False)

    @extend_schema(request=InputSerializer,
                   responses={200: OutputSerializer, 404: None, 413: None, 422: None, 503: None})
    def post(self, request):
        body = _tabby_body(request.data)
        data = self.InputSerializer(data=body)
        data.is_valid(raise_exception=True)
        segments = self.SegmentsSerializer(data=body["segments"])
        if not segments.is_valid():
            raise _unprocessable("Invalid segments.", code="invalid", field="segments", errors=segments.errors)
        debug_options = self.DebugOptionsSerializer(data=data.validated_data["debug_options"])
        debug_options.is_valid(raise_exception=True)
        options = debug_options.validated_data
        result = services.completion_create(
            request=self._request_data(request.user, body["language"], segments.validated_data, data.validated_data,
                                       options), user=request.user)
        response = {"id": result.completion.id,
                    "choices": [{"index": i, "text": text} for i, text in enumerate(result.choices)]}
        if options["return_snippets"] or options["return_prompt"]:
            debug = dict(result.debug)
            if not options["return_prompt"]:
                debug.pop("prompt")
            response["debug_data"] = debug
        return Response(self.OutputSerializer(response).data)

    @staticmethod
    def _request_data(user, language, segments, body, debug_options) -> CompletionRequestData:
        def text(key) -> str:
            return segments[key] or ""  # Tabby's clients send null for what they do not have

        def snippets(key, source) -> list[Snippet]:
            return [Snippet(item["filepath"], item["body"], source, item["score"] or 0.0)
                    for item in segments[key] or [] if item["body"]]

        repository = selectors.repository_for_completion(user=user, repository_id=body.get("repository"),
                                                         git_url=text("git_url"))
        return CompletionRequestData(
            language=language, prefix=segments["prefix"], suffix=text("suffix"), filepath=text("filepath"),
            repository=repository, declarations=snippets("declarations", DECLARATION),
            changed_file_snippets=snippets("relevant_snippets_from_changed_files", CHANGED_FILE),
            opened_file_snippets=snippets("relevant_snippets_from_recently_opened_files", OPENED_FILE),
            clipboard=text("clipboard"), temperature=body.get("temperature"), seed=body.get("seed"),
            use_context=not debug_options["disable_retrieval_augmented_code_completion"],
            use_repository_candidates=not debug_options["disable_repository_candidates"],
            use_ranking=not debug_options["disable_ranking"])


class EventApi(_Api):
    """Accept/reject telemetry per completion in Tabby's LogEventRequest shape ("view", "select", "dismiss",
    with the IDE's `view_id` and `elapsed` milliseconds); only for the caller's own completions. A partial
    accept is a select with `select_kind` "line", which Tabby's agents put in the query string."""

    token_scope = ApiToken.Scope.COMPLETION

    class InputSerializer(serializers.Serializer):
        type = serializers.ChoiceField(choices=CompletionEvent.Type.choices)
        completion_id = serializers.CharField(max_length=64)
        choice_index = serializers.IntegerField(min_value=0, max_value=CHOICE_INDEX_MAX, default=0)
        view_id = serializers.CharField(max_length=VIEW_ID_MAX_CHARS, required=False, allow_blank=True,
                                        allow_null=True, default="")
        elapsed = serializers.IntegerField(min_value=0, max_value=ELAPSED_MAX_MS, required=False, allow_null=True,
                                           default=None, help_text="Milliseconds since the IDE showed the completion.")
        select_kind = serializers.ChoiceField(choices=[CompletionEvent.SelectKind.LINE], required=False,
                                              allow_blank=True, allow_null=True, default="",
                                              help_text="\"line\": part of the completion was accepted.")

        def validate(self, attrs):
            if attrs["select_kind"] and attrs["type"] != CompletionEvent.Type.SELECT:
                raise serializers.ValidationError({"select_kind": "Only a select event has a select_kind."})
            return {**attrs, "view_id": attrs["view_id"] or "", "select_kind": attrs["select_kind"] or ""}

    @extend_schema(request=InputSerializer, responses={200: None, 400: None},
                   parameters=[OpenApiParameter("select_kind", str, enum=[CompletionEvent.SelectKind.LINE],
                                                required=False)])
    def post(self, request):
        data = self.InputSerializer(data=self._with_query_select_kind(request))
        data.is_valid(raise_exception=True)
        event = data.validated_data
        completion = selectors.completion_get_for_user(user=request.user, completion_id=event["completion_id"])
        services.completion_event_record(completion=completion, event_type=event["type"],
                                         choice_index=event["choice_index"], view_id=event["view_id"],
                                         elapsed=event["elapsed"], select_kind=event["select_kind"])
        return Response(status=status.HTTP_200_OK)  # Tabby's answer: 200, no body

    @staticmethod
    def _with_query_select_kind(request):
        """The body, with `select_kind` from the query string where there is one (Tabby's server reads it there)."""
        kind = request.query_params.get("select_kind")
        if kind is None or not hasattr(request.data, "keys"):
            return request.data
        body = request.data.copy()
        body["select_kind"] = kind
        return body


class RepositorySerializer(serializers.ModelSerializer):
    """`path` is the folder on the server: an admin's business (who registers folders), null for anyone else."""

    progress = serializers.FloatField(read_only=True)
    path = serializers.SerializerMethodField()
    owner = serializers.CharField(source="created_by.username", default=None, allow_null=True, read_only=True)

    class Meta:
        model = Repository
        fields = ["id", "name", "path", "git_url", "shared", "owner", "status", "files_total", "files_done", "progress",
                  "lines", "error", "skipped", "indexed_at", "created_at"]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_path(self, repository: Repository) -> str | None:
        request = self.context.get("request")
        return repository.path if request is not None and selectors.user_is_admin(request.user) else None


class RepositoryListCreateApi(BoundedUploadsMixin, _Api):
    """The repositories the caller may read; registration by archive upload (anyone) or server folder (admins)."""

    parser_classes = [JSONParser, MultiPartParser, FormParser]
    upload_limit_setting = "CODEGEN_ARCHIVE_MAX_BYTES"
    upload_field = "archive"

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        path = serializers.CharField(required=False, allow_blank=True, default="", max_length=1000)
        archive = serializers.FileField(required=False)
        git_url = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)
        shared = serializers.BooleanField(required=False, default=False)

        def validate(self, attrs):
            if bool(attrs.get("path")) == bool(attrs.get("archive")):
                raise serializers.ValidationError("Give either a server path or an archive (.zip, .tar.gz).")
            return attrs

    @extend_schema(responses=RepositorySerializer(many=True))
    def get(self, request):
        return Response(RepositorySerializer(selectors.repository_list_for_user(user=request.user)
                                             .select_related("created_by"), many=True,
                                             context={"request": request}).data)

    @extend_schema(request=InputSerializer, responses={201: RepositorySerializer, 400: None, 403: None, 413: None})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        common = {"name": fields["name"], "git_url": fields["git_url"], "shared": fields["shared"],
                  "user": request.user}
        if fields.get("archive"):
            repository = services.repository_register_archive(archive=fields["archive"],
                                                              archive_name=fields["archive"].name, **common)
        else:
            repository = services.repository_register_folder(path=fields["path"], **common)
        return Response(RepositorySerializer(repository, context={"request": request}).data,
                        status=status.HTTP_201_CREATED)


class RepositoryDetailApi(_Api):
    class InputSerializer(serializers.Serializer):
        shared = serializers.BooleanField()

    @extend_schema(responses={200: RepositorySerializer, 404: None})
    def get(self, request, repository_id):
        return Response(RepositorySerializer(
            selectors.repository_get_for_user(user=request.user, repository_id=repository_id),
            context={"request": request}).data)

    @extend_schema(request=InputSerializer, responses={200: RepositorySerializer, 403: None, 404: None})
    def patch(self, request, repository_id):
        repository = selectors.repository_get_for_user(user=request.user, repository_id=repository_id, change=True)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        repository = services.repository_update(repository=repository, shared=data.validated_data["shared"])
        return Response(RepositorySerializer(repository, context={"request": request}).data)

    @extend_schema(responses={204: None, 403: None, 404: None})
    def delete(self, request, repository_id):
        services.repository_delete(repository=selectors.repository_get_for_user(
            user=request.user, repository_id=repository_id, change=True))
        return Response(status=status.HTTP_204_NO_CONTENT)


class RepositoryReindexApi(_Api):
    @extend_schema(request=None, responses={202: RepositorySerializer, 404: None})
    def post(self, request, repository_id):
        repository = services.repository_reindex(
            repository=selectors.repository_get_for_user(user=request.user, repository_id=repository_id))
        return Response(RepositorySerializer(repository, context={"request": request}).data,
                        status=status.HTTP_202_ACCEPTED)


class StatsApi(_Api):
    class OutputSerializer(serializers.Serializer):
        served = serializers.IntegerField()
        empty = serializers.IntegerField(help_text="Served with no text (every candidate dropped or rejected).")
        guard_trimmed = serializers.IntegerField()
        guard_rejected = serializers.IntegerField()
        shown = serializers.IntegerField()
        accepted = serializers.IntegerField()
        accepted_partly = serializers.IntegerField(help_text="Accepted a line or a word at a time (select_kind "
                                                             "\"line\"); counted in accepted too.")
        dismissed = serializers.IntegerField()
        acceptance_rate = serializers.FloatField(allow_null=True, help_text="accepted / shown; null before any.")
        mean_accept_ms = serializers.IntegerField(allow_null=True, help_text="Mean milliseconds from showing to "
                                                                             "accepting, as the IDEs measured them.")

    @extend_schema(responses=OutputSerializer)
    def get(self, request):
        return Response(self.OutputSerializer(selectors.completion_stats()).data)
