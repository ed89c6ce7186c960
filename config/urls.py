from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.accounts.permissions import SchemaAccess

# URL prefix of each use-case app; settings.SUITE_APPS picks which ones this process serves (and
# frontend/urls.py which console areas). Accounts and adapters are served by every process.
APP_URLS = {
    "customer_service": "api/customer-service/",
    "codegen": "api/codegen/",
    "medical": "api/medical/",
}

urlpatterns = [
    path("", include("frontend.urls")),
    path("admin/", admin.site.urls),
    path("api/accounts/", include("apps.accounts.urls")),
    path("api/adapters/", include("apps.adapters.urls")),
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[SchemaAccess]), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema", permission_classes=[SchemaAccess]),
         name="api-docs"),
]
urlpatterns += [path(prefix, include(f"apps.{app}.urls")) for app, prefix in APP_URLS.items()
                if app in settings.SUITE_APPS]

handler400 = "apps.core.error_views.bad_request"
handler403 = "apps.core.error_views.permission_denied"
handler404 = "apps.core.error_views.not_found"
handler500 = "apps.core.error_views.server_error"
