from django.contrib.auth import views as auth_views
from django.urls import path
from django.views.generic import RedirectView

from frontend import views

app_name = "frontend"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="frontend:home", permanent=False)),
    path("console/", views.home, name="home"),
    path("console/login/", auth_views.LoginView.as_view(template_name="frontend/login.html"), name="login"),
    path("console/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("console/customer-service/", views.customer_service, name="customer_service"),
    path("console/codegen/", views.codegen, name="codegen"),
    path("console/medical/", views.medical, name="medical"),
    path("console/tokens/", views.tokens, name="tokens"),
    path("console/tokens/create/", views.token_create, name="token_create"),
    path("console/tokens/<int:token_id>/delete/", views.token_delete, name="token_delete"),
    path("console/adapters/", views.adapters, name="adapters"),
    path("console/users/", views.users, name="users"),
    path("console/status/", views.status, name="status"),
    path("console/status/panel/", views.status_panel, name="status_panel"),
]
