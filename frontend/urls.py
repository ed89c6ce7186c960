"""The console's URLs. The pages of a use-case area (customer service, code completion, diagnosis
assist) are served only by the processes whose SUITE_APPS name it, and their views are imported only
there; the shared areas (log-in, API tokens, adapters, users, status) are served by every process."""
from importlib import import_module

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.urls import path
from django.views.generic import RedirectView

from frontend import adapters_views as ad
from frontend import views

app_name = "frontend"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="frontend:home", permanent=False)),
    path("console/", views.home, name="home"),
    path("console/login/", auth_views.LoginView.as_view(template_name="frontend/login.html"), name="login"),
    path("console/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("console/tokens/", views.tokens, name="tokens"),
    path("console/tokens/create/", views.token_create, name="token_create"),
    path("console/tokens/<int:token_id>/delete/", views.token_delete, name="token_delete"),
    path("console/adapters/", ad.overview, name="adapters"),
    path("console/adapters/jobs/", ad.jobs_panel, name="ad_jobs"),
    path("console/adapters/datasets/upload/", ad.dataset_upload, name="ad_dataset_upload"),
    path("console/adapters/datasets/build/", ad.dataset_build, name="ad_dataset_build"),
    path("console/adapters/jobs/start/", ad.job_start, name="ad_job_start"),
    path("console/adapters/jobs/<int:job_id>/cancel/", ad.job_cancel, name="ad_job_cancel"),
    path("console/adapters/<int:adapter_id>/promote/", ad.adapter_promote, name="ad_promote"),
    path("console/adapters/<int:adapter_id>/retire/", ad.adapter_retire, name="ad_retire"),
    path("console/users/", views.users, name="users"),
    path("console/status/", views.status, name="status"),
    path("console/status/panel/", views.status_panel, name="status_panel"),
]


# The pages of each use-case area: its URL prefix, then (route, view in frontend/<app>_views.py, URL name).
AREA_PAGES = {
    "customer_service": ("console/customer-service/", [
        ("", "conversation_list", "customer_service"),
        ("conversations/start/", "conversation_start", "cs_conversation_start"),
        ("conversations/<int:conversation_id>/", "conversation_detail", "cs_conversation"),
        ("conversations/<int:conversation_id>/messages/", "conversation_messages", "cs_conversation_messages"),
        ("conversations/<int:conversation_id>/message/", "conversation_message", "cs_conversation_message"),
        ("conversations/<int:conversation_id>/status/", "conversation_status", "cs_conversation_status"),
        ("conversations/<int:conversation_id>/take/", "conversation_take", "cs_conversation_take"),
        ("conversations/<int:conversation_id>/assign/", "conversation_assign", "cs_conversation_assign"),
        ("knowledge-bases/", "knowledge_bases", "cs_knowledge_bases"),
        ("knowledge-bases/create/", "knowledge_base_create", "cs_knowledge_base_create"),
        ("knowledge-bases/<int:kb_id>/", "knowledge_base_detail", "cs_knowledge_base"),
        ("knowledge-bases/<int:kb_id>/import/", "knowledge_base_import", "cs_import"),
        ("knowledge-bases/<int:kb_id>/test/", "knowledge_base_test", "cs_test"),
        ("knowledge-bases/<int:kb_id>/retrieval/", "knowledge_base_retrieval", "cs_retrieval"),
        ("knowledge-bases/<int:kb_id>/tune/", "knowledge_base_tune", "cs_tune"),
        ("knowledge-bases/<int:kb_id>/threshold/", "knowledge_base_threshold", "cs_threshold"),
        ("entries/<int:entry_id>/", "entry_edit", "cs_entry"),
    ]),
    "codegen": ("console/codegen/", [
        ("", "overview", "codegen"),
        ("repositories/", "repository_progress", "cg_repositories"),
        ("repositories/register/", "repository_register", "cg_register"),
        ("repositories/<int:repository_id>/reindex/", "repository_reindex", "cg_reindex"),
        ("playground/", "playground", "cg_playground"),
    ]),
    "medical": ("console/medical/", [
        ("", "case_form", "medical"),
        ("cases/<int:case_id>/", "case_detail", "medical_case"),
        ("cases/<int:case_id>/answer/", "case_answer", "medical_answer"),
        ("cases/<int:case_id>/report/", "case_report", "medical_report"),
        ("cases/<int:case_id>/share/", "case_share", "medical_share"),
        ("cases/open/", "case_break_glass", "medical_break_glass"),
        ("audit/", "audit_log", "medical_audit"),
        ("federated/", "federated_jobs", "medical_federated"),
        ("federated/jobs/", "federated_jobs_panel", "medical_federated_jobs"),
        ("federated/start/", "federated_job_start", "medical_federated_start"),
    ]),
}
urlpatterns += [path(prefix + route, getattr(import_module(f"frontend.{app}_views"), view), name=name)
                for app, (prefix, pages) in AREA_PAGES.items() if app in settings.SUITE_APPS
                for route, view, name in pages]
