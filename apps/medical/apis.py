"""HTTP API of the medical app (/api/medical/v1/): Infermedica-like diagnosis, explain, knowledge-base
search, cases. Decision support: every result carries its disclaimer."""
from django.db.models import Q
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import HasArea
from apps.accounts.roles import Area
from apps.core.apis import AppStatusApi
from apps.medical import services
from apps.medical.features import EvidenceError
from apps.medical.models import Case, Evidence


class MedicalStatusApi(AppStatusApi):
    area = Area.MEDICAL
    adapter = "medical"


class _Api(APIView):
    permission_classes = [HasArea]
    area = Area.MEDICAL


def _unprocessable(field: str, message: str) -> Response:
    return Response({"detail": message, "field": field}, status=422)


def _no_model() -> Response:
    return Response({"detail": "No diagnosis model is active yet; an admin must train one."}, status=503)


class PresentationSerializer(serializers.Serializer):
    sex = serializers.ChoiceField(choices=["M", "F"])
    age = serializers.IntegerField(min_value=0, max_value=120)
    evidence = serializers.ListField(child=serializers.CharField(max_length=80), max_length=300)


def _validated(request_data, extra_fields=()) -> tuple[dict | None, Response | None]:
    """The presentation, or a 422 response naming the first bad field."""
    data = PresentationSerializer(data=request_data)
    if not data.is_valid():
        field, errors = next(iter(data.errors.items()))
        message = errors[0] if isinstance(errors, list) else str(errors)
        return None, _unprocessable(field, f"{field}: {message}")
    values = dict(data.validated_data)
    for name in extra_fields:
        if not request_data.get(name):
            return None, _unprocessable(name, f"{name}: this field is required.")
        values[name] = request_data[name]
    try:
        model, engine = services.active_engine()
    except services.NoActiveModel:
        return None, _no_model()
    try:
        values["evidence"] = engine.features.validate(values["evidence"])
    except EvidenceError as error:
        return None, _unprocessable(error.field, str(error))
    values["model"], values["engine"] = model, engine
    return values, None


class DiagnosisApi(_Api):
    @extend_schema(request=PresentationSerializer, responses={200: {"type": "object"}, 422: None, 503: None})
    def post(self, request):
        values, problem = _validated(request.data)
        if problem:
            return problem
        result = services.diagnosis_result(model=values["model"], engine=values["engine"], age=values["age"],
                                           sex=values["sex"], evidence=values["evidence"])
        services.audit(actor=request.user, action="api.diagnosis", model_version=values["model"].version,
                       evidence=values["evidence"], top=[row["name"] for row in result["conditions"][:3]])
        questions = result["next_questions"]
        return Response({
            "conditions": [{"name": row["name"], "icd10": row["icd10"], "probability": row["probability"]}
                           for row in result["conditions"]],
            "next_question": {"evidence": questions[0]["evidence"],
                              "text": result["labels"].get(questions[0]["evidence"]),
                              "information_gain": questions[0]["information_gain"]} if questions else None,
            "urgency": result["urgency"], "should_stop": result["should_stop"],
            "model_version": values["model"].version, "disclaimer": result["disclaimer"]})


class ExplainApi(_Api):
    class InputSerializer(PresentationSerializer):
        condition = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={200: {"type": "object"}, 422: None})
    def post(self, request):
        values, problem = _validated(request.data, extra_fields=("condition",))
        if problem:
            return problem
        try:
            explanation = values["engine"].explain(values["age"], values["sex"], values["evidence"],
                                                   values["condition"])
        except KeyError:
            return _unprocessable("condition", f"condition: unknown condition {values['condition']!r}.")
        services.audit(actor=request.user, action="api.explain", model_version=values["model"].version,
                       condition=values["condition"])
        return Response({**explanation, "model_version": values["model"].version,
                         "disclaimer": services.DISCLAIMER})


class EvidenceSearchApi(_Api):
    class OutputSerializer(serializers.ModelSerializer):
        class Meta:
            model = Evidence
            fields = ["code", "question_en", "data_type", "is_antecedent", "possible_values", "value_meanings"]

    @extend_schema(parameters=[OpenApiParameter("q", str)], responses=OutputSerializer(many=True))
    def get(self, request):
        try:
            model, _ = services.active_engine()
        except services.NoActiveModel:
            return _no_model()
        query = request.query_params.get("q", "").strip()[:100]
        evidences = Evidence.objects.filter(source=model.source)
        if query:
            evidences = evidences.filter(Q(question_en__icontains=query) | Q(code__iexact=query))
        return Response(self.OutputSerializer(evidences[:50], many=True).data)


class CaseCreateApi(_Api):
    @extend_schema(request=PresentationSerializer, responses={201: {"type": "object"}, 422: None})
    def post(self, request):
        values, problem = _validated(request.data)
        if problem:
            return problem
        case = services.case_create(clinician=request.user, age=values["age"], sex=values["sex"],
                                    evidence=values["evidence"], note=str(request.data.get("note", ""))[:5000])
        result = services.diagnosis_compute(case=case, user=request.user)
        return Response({"case": case.id, "note": case.note, **result.result}, status=status.HTTP_201_CREATED)


class CaseDetailApi(_Api):
    @extend_schema(responses={200: {"type": "object"}})
    def get(self, request, case_id):
        case = get_object_or_404(Case, id=case_id)
        services.audit(actor=request.user, action="case.view", case=case)
        latest = case.results.first()
        return Response({"case": case.id, "age": case.age, "sex": case.sex, "evidence": case.evidence,
                         "negatives": case.negatives, "note": case.note,
                         "result": latest.result if latest else None})
