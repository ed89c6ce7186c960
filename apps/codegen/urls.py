from django.urls import path

from apps.codegen import apis

app_name = "codegen"

urlpatterns = [
    path("v1/status", apis.CodegenStatusApi.as_view(), name="status"),
    path("v1/health", apis.HealthApi.as_view(), name="health"),
    path("v1beta/server_setting", apis.ServerSettingApi.as_view(), name="server_setting"),
    path("v1/completions", apis.CompletionApi.as_view(), name="completions"),
    path("v1/events", apis.EventApi.as_view(), name="events"),
    path("v1/repositories", apis.RepositoryListCreateApi.as_view(), name="repositories"),
    path("v1/repositories/<int:repository_id>", apis.RepositoryDetailApi.as_view(), name="repository"),
    path("v1/repositories/<int:repository_id>/reindex", apis.RepositoryReindexApi.as_view(), name="reindex"),
    path("v1/stats", apis.StatsApi.as_view(), name="stats"),
]
