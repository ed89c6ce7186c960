from django.contrib.auth import views as auth_views
from django.urls import path
from django.views.generic import RedirectView

from frontend import adapters_views as ad
from frontend import codegen_views as cg
from frontend import customer_service_views as cs
from frontend import medical_views as md
from frontend import views

app_name = "frontend"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="frontend:home", permanent=False)),
    path("console/", views.home, name="home"),
    path("console/login/", auth_views.LoginView.as_view(template_name="frontend/login.html"), name="login"),
    path("console/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("console/customer-service/", cs.conversation_list, name="customer_service"),
    path("console/customer-service/conversations/start/", cs.conversation_start, name="cs_conversation_start"),
    path("console/customer-service/conversations/<int:conversation_id>/", cs.conversation_detail,
         name="cs_conversation"),
    path("console/customer-service/conversations/<int:conversation_id>/messages/", cs.conversation_messages,
         name="cs_conversation_messages"),
    path("console/customer-service/conversations/<int:conversation_id>/message/", cs.conversation_message,
         name="cs_conversation_message"),
    path("console/customer-service/conversations/<int:conversation_id>/status/", cs.conversation_status,
         name="cs_conversation_status"),
    path("console/customer-service/conversations/<int:conversation_id>/take/", cs.conversation_take,
         name="cs_conversation_take"),
    path("console/customer-service/conversations/<int:conversation_id>/assign/", cs.conversation_assign,
         name="cs_conversation_assign"),
    path("console/customer-service/knowledge-bases/", cs.knowledge_bases, name="cs_knowledge_bases"),
    path("console/customer-service/knowledge-bases/create/", cs.knowledge_base_create, name="cs_knowledge_base_create"),
    path("console/customer-service/knowledge-bases/<int:kb_id>/", cs.knowledge_base_detail, name="cs_knowledge_base"),
    path("console/customer-service/knowledge-bases/<int:kb_id>/import/", cs.knowledge_base_import, name="cs_import"),
    path("console/customer-service/knowledge-bases/<int:kb_id>/test/", cs.knowledge_base_test, name="cs_test"),
    path("console/customer-service/entries/<int:entry_id>/", cs.entry_edit, name="cs_entry"),
    path("console/codegen/", cg.overview, name="codegen"),
    path("console/codegen/repositories/", cg.repository_progress, name="cg_repositories"),
    path("console/codegen/repositories/register/", cg.repository_register, name="cg_register"),
    path("console/codegen/repositories/<int:repository_id>/reindex/", cg.repository_reindex, name="cg_reindex"),
    path("console/codegen/playground/", cg.playground, name="cg_playground"),
    path("console/medical/", md.case_form, name="medical"),
    path("console/medical/cases/<int:case_id>/", md.case_detail, name="medical_case"),
    path("console/medical/cases/<int:case_id>/answer/", md.case_answer, name="medical_answer"),
    path("console/medical/cases/<int:case_id>/report/", md.case_report, name="medical_report"),
    path("console/medical/cases/<int:case_id>/share/", md.case_share, name="medical_share"),
    path("console/medical/cases/open/", md.case_break_glass, name="medical_break_glass"),
    path("console/medical/audit/", md.audit_log, name="medical_audit"),
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
