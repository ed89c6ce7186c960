"""HTTP API of the medical app (/api/medical/v1/): Infermedica-like diagnosis and interview (answers
present / absent / unknown), explain, finding search in clinical terms, note proposals, cases and their
FHIR R4 export. Decision support: every result carries its disclaimer.

Every case route finds its case through `case_get_for_user`: a case the caller may not see is a 404.
An admin opens another clinician's case by stating why, in the `X-Break-Glass-Reason` header or the
`reason` query parameter; the access is audited. Every error is `{"detail", "code", "field"}` JSON."""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import HasArea
from apps.accounts.roles import Area
from apps.core.apis import AppStatusApi
from apps.core.errors import ApplicationError
from apps.medical import selectors, services
from apps.medical.models import Case, FederatedJob

ERROR = inline_serializer("MedicalError", fields={  # DRF's own errors (403, 405) carry only `detail`
    "detail": serializers.CharField(), "code": serializers.CharField(required=False),
    "field": serializers.CharField(required=False)})
REASON = [OpenApiParameter("reason", str, description="An admin's reason for opening another clinician's case "
                                                       "(audited); the X-Break-Glass-Reason header works too."),
          OpenApiParameter("X-Break-Glass-Reason", str, location=OpenApiParameter.HEADER)]


class _Api(APIView):
    permission_classes = [HasArea]
    area = Area.MEDICAL


class MedicalStatusApi(_Api, AppStatusApi):
    adapter = "medical"


class PresentationSerializer(serializers.Serializer):
    sex = serializers.ChoiceField(choices=["M", "F"])
    age = serializers.IntegerField(min_value=0, max_value=120)
    evidence = serializers.ListField(child=serializers.CharField(max_length=80), max_length=300)


CHOICE_IDS = ["present", "absent", "unknown"]


@extend_schema_field({"oneOf": [
    {"type": "string", "minLength": 1, "maxLength": 80},
    {"type": "object", "required": ["id"], "additionalProperties": False,
     "properties": {"id": {"type": "string", "minLength": 1, "maxLength": 80},
                    "choice_id": {"type": "string", "enum": CHOICE_IDS, "default": "present"}}}]})
class AnswerField(serializers.Field):
    """One answer: {"id": "E_91", "choice_id": "present" | "absent" | "unknown"} (Infermedica's form),
    or a bare token string meaning present (the earlier form). Validated into {"id", "choice_id", "bare"}."""

    def to_internal_value(self, data):
        bare = isinstance(data, str)
        if bare:
            data = {"id": data, "choice_id": "present"}
        if not isinstance(data, dict) or set(data) - {"id", "choice_id"}:
            raise serializers.ValidationError('an evidence token, or {"id": ..., "choice_id": ...}')
        token = data.get("id")
        if not isinstance(token, str) or not token or len(token) > 80:
            raise serializers.ValidationError("id: an evidence token of at most 80 characters")
        if data.get("choice_id", "present") not in CHOICE_IDS:
            raise serializers.ValidationError(f"choice_id: one of {CHOICE_IDS}")
        return {"id": token, "choice_id": data.get("choice_id", "present"), "bare": bare}

    def to_representation(self, value):
        return value


class AnswersSerializer(serializers.Serializer):
    """A presentation with answers: what the diagnosis and interview endpoints take."""
    sex = serializers.ChoiceField(choices=["M", "F"])
    age = serializers.IntegerField(min_value=0, max_value=120)
    evidence = serializers.ListField(child=AnswerField(), max_length=300, help_text=(
        'answers: {"id": "E_91", "choice_id": "present"|"absent"|"unknown"} (an id may be a value token, '
        '"E_54_@_V_161"); a bare token string is a present finding'))


def _answers(data, serializer_class=None) -> dict:
    """The validated presentation (AnswersSerializer or `serializer_class`); each answer carries the field
    a bad id is reported under (`evidence[2].id` for an object, `evidence[2]` for a bare token, as before)."""
    values = _valid(serializer_class or AnswersSerializer, data)
    values["evidence"] = [{"id": answer["id"], "choice_id": answer["choice_id"],
                           "field": f"evidence[{i}]" + ("" if answer["bare"] else ".id")}
                          for i, answer in enumerate(values["evidence"])]
    return values


def _valid(serializer_class, data) -> dict:
    """The validated input; raises a 422 naming the first bad field (`evidence[2]` inside a list)."""
    serializer = serializer_class(data=data)
    if serializer.is_valid():
        return dict(serializer.validated_data)
    field, errors = next(iter(serializer.errors.items()))
    if isinstance(errors, dict):  # a list field: {position: [messages]}
        position, errors = next(iter(errors.items()))
        field = f"{field}[{position}]"
    message = errors[0] if isinstance(errors, list) else str(errors)
    raise ApplicationError(message=f"{field}: {message}", status=422, code="invalid", field=field)


NARRATIVE = ("The summary of the computed result a clinician reads: the computed paragraph, or the model's "
             "rewording of it when MEDICAL_NARRATIVE_MODEL is on and the rewording passed the fact guard.")


class DiagnosisResultSerializer(serializers.Serializer):
    """A computed result as it is stored (`selectors.diagnosis_result` plus its narrative)."""
    model_version = serializers.IntegerField()
    disclaimer = serializers.CharField()
    conditions = serializers.JSONField(help_text="the differential: name, icd10, probability, severity, most "
                                                 "probable first")
    urgency = serializers.JSONField(help_text="level and reasons")
    next_questions = serializers.JSONField(help_text="unasked evidence ranked by information gain")
    should_stop = serializers.BooleanField()
    explanations = serializers.JSONField(help_text="findings for and against each leading condition")
    labels = serializers.JSONField(help_text="evidence token -> question text")
    narrative = serializers.CharField(help_text=NARRATIVE)


class MedicalCaseCreatedSerializer(DiagnosisResultSerializer):
    case = serializers.IntegerField()
    note = serializers.CharField(help_text="the note as stored, de-identified")


class MedicalCaseSerializer(serializers.Serializer):
    """A case as `selectors.case_detail` shows it."""
    case = serializers.IntegerField()
    clinician = serializers.CharField()
    shared_with = serializers.ListField(child=serializers.CharField())
    age = serializers.IntegerField()
    sex = serializers.CharField()
    evidence = serializers.ListField(child=serializers.CharField())
    negatives = serializers.ListField(child=serializers.CharField(), help_text="codes (or value tokens) answered no")
    unknown = serializers.ListField(child=serializers.CharField(), help_text='codes answered "don\'t know"')
    note = serializers.CharField()
    result = serializers.JSONField(allow_null=True, help_text="the latest computed result (see MedicalCaseCreated)")
    narrative = serializers.CharField(allow_null=True, help_text=NARRATIVE)


def _case(request, case_id) -> Case:
    reason = request.headers.get("X-Break-Glass-Reason") or request.query_params.get("reason", "")
    return selectors.case_get_for_user(user=request.user, case_id=case_id, reason=reason)


class DiagnosisScoreSerializer(serializers.Serializer):
    """The stateless diagnosis: the differential, the best next question, urgency."""
    conditions = inline_serializer("DiagnosisCondition", many=True, fields={
        "name": serializers.CharField(), "icd10": serializers.CharField(),
        "probability": serializers.FloatField()})
    next_question = inline_serializer("DiagnosisNextQuestion", allow_null=True, fields={
        "evidence": serializers.CharField(), "text": serializers.CharField(allow_null=True),
        "information_gain": serializers.FloatField()})
    urgency = inline_serializer("DiagnosisUrgency", fields={
        "level": serializers.CharField(), "reasons": serializers.ListField(child=serializers.CharField())})
    should_stop = serializers.BooleanField()
    model_version = serializers.IntegerField()
    disclaimer = serializers.CharField()


class DiagnosisFindingSerializer(serializers.Serializer):
    evidence = serializers.CharField()
    weight = serializers.FloatField(help_text="its contribution to the condition's score against the average condition")


class DiagnosisExplanationSerializer(serializers.Serializer):
    """The findings for and against a condition, and its typical findings not asked about yet."""
    condition = serializers.CharField()
    not_asked = serializers.ListField(child=serializers.CharField())
    model_version = serializers.IntegerField()
    disclaimer = serializers.CharField()

    def get_fields(self):  # "for" is a Python keyword, so these two are not class attributes
        return {**super().get_fields(), "for": DiagnosisFindingSerializer(many=True),
                "against": DiagnosisFindingSerializer(many=True)}


class DiagnosisApi(_Api):
    @extend_schema(request=AnswersSerializer, responses={200: DiagnosisScoreSerializer, 422: ERROR, 503: ERROR})
    def post(self, request):
        result = services.diagnosis_score(user=request.user, **_answers(request.data))
        questions = result["next_questions"]
        next_question = {**questions[0], "text": result["labels"].get(questions[0]["evidence"])} if questions else None
        return Response(DiagnosisScoreSerializer({**result, "next_question": next_question}).data)


class ExplainApi(_Api):
    class InputSerializer(PresentationSerializer):
        condition = serializers.CharField(max_length=200)

    @extend_schema(request=InputSerializer, responses={200: DiagnosisExplanationSerializer, 422: ERROR, 503: ERROR})
    def post(self, request):
        explanation = services.diagnosis_explain(user=request.user, **_valid(self.InputSerializer, request.data))
        return Response(DiagnosisExplanationSerializer(explanation).data)


YES_NO_CHOICES = [{"id": "present", "label": "Yes"}, {"id": "absent", "label": "No"},
                  {"id": "unknown", "label": "Don't know"}]


def _interview_question(question: dict | None, labels: dict[str, str]) -> dict | None:
    """The next question as a client asks it: a yes/no question's choices are the answers (choice_id);
    a choice, multi-choice or scale question's are the tokens to send as present (its bare code sent
    absent or unknown answers the whole question)."""
    if question is None:
        return None
    code = question["evidence"]
    if question["type"] == "yes_no":
        choices = YES_NO_CHOICES
    else:
        tokens = [selectors.choice_token(code, choice) for choice in question["choices"]]
        choices = [{"id": token, "label": labels.get(token, token).split(" — ")[-1]} for token in tokens]
    return {"id": code, "type": question["type"], "text": labels.get(code, code), "choices": choices,
            "information_gain": question["information_gain"]}


class InterviewSerializer(serializers.Serializer):
    """The next step of an interview: the question to ask, or `should_stop`; the differential; triage."""
    question = inline_serializer("InterviewQuestion", allow_null=True, fields={
        "id": serializers.CharField(), "type": serializers.ChoiceField(choices=["yes_no", "choice", "multi", "scale"]),
        "text": serializers.CharField(), "information_gain": serializers.FloatField(),
        "choices": inline_serializer("InterviewChoice", many=True, fields={
            "id": serializers.CharField(help_text="a choice_id (yes/no) or the value token to send as present"),
            "label": serializers.CharField()})})
    should_stop = serializers.BooleanField()
    conditions = serializers.JSONField(help_text="the differential, most probable first")
    triage = inline_serializer("InterviewTriage", fields={
        "level": serializers.CharField(help_text="emergency, see a doctor today or routine"),
        "reasons": serializers.ListField(child=serializers.CharField())})
    model_version = serializers.IntegerField()
    disclaimer = serializers.CharField()


class InterviewApi(_Api):
    @extend_schema(request=AnswersSerializer, responses={200: InterviewSerializer, 422: ERROR, 503: ERROR})
    def post(self, request):
        """The next question for the answers so far (present, absent, don't know), with its type and choices."""
        result = services.diagnosis_score(user=request.user, action="api.interview", **_answers(request.data))
        questions = result["next_questions"]
        question = None if result["should_stop"] or not questions else questions[0]
        return Response(InterviewSerializer({**result, "triage": result["urgency"],
                                             "question": _interview_question(question, result["labels"])}).data)


class EvidenceSearchApi(_Api):
    class OutputSerializer(serializers.Serializer):
        code = serializers.CharField()
        token = serializers.CharField(help_text="what to record: the code, or the matched value's token")
        question_en = serializers.CharField()
        data_type = serializers.CharField()
        is_antecedent = serializers.BooleanField()
        possible_values = serializers.JSONField()
        value_meanings = serializers.JSONField()
        matched_value = inline_serializer("EvidenceMatchedValue", allow_null=True, fields={
            "value": serializers.CharField(), "label": serializers.CharField()})
        score = serializers.FloatField()

    @extend_schema(parameters=[OpenApiParameter("q", str, description='clinical terms ("chest pain", "hemoptysis")')],
                   responses={200: OutputSerializer(many=True), 503: ERROR})
    def get(self, request):
        """Questions and values for a clinician's words, best first, each saying which value matched."""
        evidences = selectors.evidence_search(query=request.query_params.get("q", ""))
        return Response(self.OutputSerializer(evidences, many=True).data)


NOTE_DISCLAIMER = "Proposals read from the note by rules: a clinician confirms each before it is recorded."


class NoteFindingsApi(_Api):
    class InputSerializer(serializers.Serializer):
        note = serializers.CharField(max_length=services.NOTE_MAX_CHARS, allow_blank=True)

    class OutputSerializer(serializers.Serializer):
        findings = inline_serializer("NoteFinding", many=True, fields={
            "token": serializers.CharField(), "code": serializers.CharField(), "question": serializers.CharField(),
            "matched_value": serializers.JSONField(allow_null=True),
            "status": serializers.ChoiceField(choices=["present", "absent", "uncertain"]),
            "text": serializers.CharField(help_text="the words of the note it was read from"),
            "start": serializers.IntegerField(), "end": serializers.IntegerField()})
        disclaimer = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer, 422: ERROR, 503: ERROR})
    def post(self, request):
        """Findings a free-text note names, present, absent ("denies fever") or uncertain ("possible
        fever"), each with its span: proposals for the clinician to confirm. The note is not stored."""
        note = _valid(self.InputSerializer, request.data)["note"]
        proposals = services.note_findings_propose(user=request.user, note=note)
        return Response(self.OutputSerializer({"findings": proposals, "disclaimer": NOTE_DISCLAIMER}).data)


class CaseListCreateApi(_Api):
    class InputSerializer(AnswersSerializer):
        note = serializers.CharField(max_length=services.NOTE_MAX_CHARS, required=False, allow_blank=True, default="")

    class ListItemSerializer(serializers.ModelSerializer):
        clinician = serializers.CharField(source="clinician.username")

        class Meta:
            model = Case
            fields = ["id", "clinician", "age", "sex", "created_at", "updated_at"]

    @extend_schema(responses={200: ListItemSerializer(many=True)})
    def get(self, request):
        """The caller's cases and those shared with them, most recently changed first (at most 100)."""
        cases = selectors.case_list_for_user(user=request.user).select_related("clinician")[:100]
        return Response(self.ListItemSerializer(cases, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: MedicalCaseCreatedSerializer, 422: ERROR, 503: ERROR})
    def post(self, request):
        values = _answers(request.data, self.InputSerializer)
        case = services.case_create(clinician=request.user, **values)
        result = services.diagnosis_compute(case=case, user=request.user)
        return Response(MedicalCaseCreatedSerializer({"case": case.id, "note": case.note, **result.result}).data,
                        status=status.HTTP_201_CREATED)


class CaseDetailApi(_Api):
    @extend_schema(parameters=REASON, responses={200: MedicalCaseSerializer, 404: ERROR, 422: ERROR})
    def get(self, request, case_id):
        case = _case(request, case_id)
        services.audit_event_create(actor=request.user, action="case.view", case=case)
        return Response(MedicalCaseSerializer(selectors.case_detail(case=case)).data)


class CaseAnswerApi(_Api):
    class InputSerializer(serializers.Serializer):
        evidence = serializers.CharField(max_length=80)
        answer = serializers.ChoiceField(choices=["yes", "no", "unknown", "value"],
                                         help_text='"unknown": don\'t know; "value": `evidence` is a value token '
                                                   '("E_54_@_V_161")')

    @extend_schema(parameters=REASON, request=InputSerializer, responses={200: MedicalCaseSerializer, 404: ERROR,
                                                                          422: ERROR, 503: ERROR})
    def post(self, request, case_id):
        values = _valid(self.InputSerializer, request.data)
        case = _case(request, case_id)
        services.case_answer(case=case, evidence=values["evidence"], answer=values["answer"], clinician=request.user)
        services.diagnosis_compute(case=case, user=request.user)
        return Response(MedicalCaseSerializer(selectors.case_detail(case=case)).data)


class CaseFhirApi(_Api):
    @extend_schema(parameters=REASON, responses={200: OpenApiTypes.OBJECT, 404: ERROR, 422: ERROR})
    def get(self, request, case_id):
        """The case as a FHIR R4 Bundle (collection): a Patient stub (gender only), an Observation per
        finding, a Condition (verificationStatus differential, ICD-10) per condition of the latest result."""
        case = _case(request, case_id)
        services.audit_event_create(actor=request.user, action="case.export_fhir", case=case)
        return Response(selectors.case_fhir_bundle(case=case), content_type="application/fhir+json")


class CaseShareApi(_Api):
    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)

    @extend_schema(request=InputSerializer,
                   responses={200: MedicalCaseSerializer, 403: ERROR, 404: ERROR, 422: ERROR})
    def post(self, request, case_id):
        """Share the case with another clinician (only its creator may)."""
        values = _valid(self.InputSerializer, request.data)
        case = _case(request, case_id)
        services.case_share(case=case, by=request.user, username=values["username"])
        return Response(MedicalCaseSerializer(selectors.case_detail(case=case)).data)


class CaseUnshareApi(_Api):
    @extend_schema(responses={204: None, 403: ERROR, 404: ERROR, 422: ERROR})
    def delete(self, request, case_id, username):
        """Stop sharing the case with a clinician (only its creator may)."""
        services.case_unshare(case=_case(request, case_id), by=request.user, username=username)
        return Response(status=status.HTTP_204_NO_CONTENT)


class FederatedJobSerializer(serializers.ModelSerializer):
    model_version = serializers.IntegerField(source="model.version", allow_null=True, default=None)

    class Meta:
        model = FederatedJob
        fields = ["id", "source", "patients_file", "config", "status", "progress", "metrics", "error", "attempts",
                  "model_version", "created_at", "started_at", "finished_at"]


class FederatedJobListCreateApi(APIView):
    """Federated training (admins): sites simulated from a patients file train the diagnosis model on
    their own patients and only model updates travel (Flower); the model goes through the activation gate."""
    permission_classes = [HasArea]
    area = Area.ADAPTERS  # the admins' training area: clinicians may not start training

    class InputSerializer(serializers.Serializer):
        source = serializers.CharField(max_length=32, default="ddxplus", help_text="the knowledge base")
        patients_file = serializers.CharField(max_length=200, help_text=(
            "a DDXPlus-format CSV in the suite's medical data folder (SUITE_DATA_DIR/medical), e.g. demo_patients.csv"))
        config = serializers.DictField(required=False, default=dict, help_text=(
            "sites, iterations, alpha (Dirichlet case mix), seed; left out: the defaults"))

    @extend_schema(responses=FederatedJobSerializer(many=True))
    def get(self, request):
        """The latest federated jobs, newest first, with their progress and, when done, what each site sent."""
        return Response(FederatedJobSerializer(selectors.federated_job_list(), many=True).data)

    @extend_schema(request=InputSerializer, responses={201: FederatedJobSerializer, 409: ERROR, 422: ERROR})
    def post(self, request):
        """Queue a federated training job; a 409 while another one is queued or running."""
        values = _valid(self.InputSerializer, request.data)
        job = services.federated_job_start(source=values["source"], patients_file=values["patients_file"],
                                           config=values["config"], user=request.user)
        return Response(FederatedJobSerializer(job).data, status=status.HTTP_201_CREATED)
