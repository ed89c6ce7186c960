from django.urls import path

from apps.medical.apis import MedicalStatusApi

app_name = "medical"

urlpatterns = [
    path("v1/status", MedicalStatusApi.as_view(), name="status"),
]
