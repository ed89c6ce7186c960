from django.urls import path

from apps.medical import apis

app_name = "medical"

urlpatterns = [
    path("v1/status", apis.MedicalStatusApi.as_view(), name="status"),
    path("v1/diagnosis", apis.DiagnosisApi.as_view(), name="diagnosis"),
    path("v1/explain", apis.ExplainApi.as_view(), name="explain"),
    path("v1/evidences", apis.EvidenceSearchApi.as_view(), name="evidences"),
    path("v1/cases", apis.CaseCreateApi.as_view(), name="cases"),
    path("v1/cases/<int:case_id>", apis.CaseDetailApi.as_view(), name="case"),
]
