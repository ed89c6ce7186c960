from django.urls import path

from apps.medical import apis

app_name = "medical"

# Case ids are matched as text so that a non-numeric one is the selector's JSON 404, not an HTML page.
urlpatterns = [
    path("v1/status", apis.MedicalStatusApi.as_view(), name="status"),
    path("v1/diagnosis", apis.DiagnosisApi.as_view(), name="diagnosis"),
    path("v1/explain", apis.ExplainApi.as_view(), name="explain"),
    path("v1/interview", apis.InterviewApi.as_view(), name="interview"),
    path("v1/evidences", apis.EvidenceSearchApi.as_view(), name="evidences"),
    path("v1/notes/findings", apis.NoteFindingsApi.as_view(), name="note_findings"),
    path("v1/federated-jobs", apis.FederatedJobListCreateApi.as_view(), name="federated_jobs"),
    path("v1/cases", apis.CaseListCreateApi.as_view(), name="cases"),
    path("v1/cases/<str:case_id>", apis.CaseDetailApi.as_view(), name="case"),
    path("v1/cases/<str:case_id>/fhir", apis.CaseFhirApi.as_view(), name="case_fhir"),
    path("v1/cases/<str:case_id>/answer", apis.CaseAnswerApi.as_view(), name="case_answer"),
    path("v1/cases/<str:case_id>/shares", apis.CaseShareApi.as_view(), name="case_shares"),
    path("v1/cases/<str:case_id>/shares/<str:username>", apis.CaseUnshareApi.as_view(), name="case_share"),
]
