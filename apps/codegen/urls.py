from django.urls import path

from apps.codegen.apis import CodegenStatusApi

app_name = "codegen"

urlpatterns = [
    path("v1/status", CodegenStatusApi.as_view(), name="status"),
]
