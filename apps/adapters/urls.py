from django.urls import path

from apps.adapters import apis

app_name = "adapters"

urlpatterns = [
    path("v1/datasets", apis.DatasetListCreateApi.as_view(), name="datasets"),
    path("v1/jobs", apis.JobListCreateApi.as_view(), name="jobs"),
    path("v1/jobs/<int:job_id>", apis.JobDetailApi.as_view(), name="job"),
    path("v1/jobs/<int:job_id>/loss", apis.JobLossCurveApi.as_view(), name="job-loss"),
    path("v1/jobs/<int:job_id>/cancel", apis.JobCancelApi.as_view(), name="job-cancel"),
    path("v1/adapters", apis.AdapterListApi.as_view(), name="adapters"),
    path("v1/adapters/<int:adapter_id>/promote", apis.AdapterPromoteApi.as_view(), name="promote"),
    path("v1/adapters/<int:adapter_id>/retire", apis.AdapterRetireApi.as_view(), name="retire"),
]
