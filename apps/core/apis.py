from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import HasArea
from apps.core.limits import uploads_bound
from apps.core.selectors import model_service_status


class BoundedUploadsMixin:
    """An API view whose files are capped at `settings.<upload_limit_setting>` bytes while they arrive (DRF
    parses the body lazily, after `initialize_request`, so the limit is in place first)."""

    upload_limit_setting: str
    upload_field = "file"

    def initialize_request(self, request, *args, **kwargs):
        uploads_bound(request, setting=self.upload_limit_setting, field=self.upload_field)
        return super().initialize_request(request, *args, **kwargs)


class AppStatusApi(APIView):
    """What an app's clients need before using it: is the model service up, which adapter.

    Each use-case app mounts a subclass that names its `area` and `adapter`.
    """

    permission_classes = [HasArea]
    area = None
    adapter = ""

    class OutputSerializer(serializers.Serializer):
        app = serializers.CharField()
        adapter = serializers.CharField()
        model_service = serializers.DictField()

    @extend_schema(responses=OutputSerializer)
    def get(self, request):
        service = model_service_status()
        body = {
            "app": str(self.area),
            "adapter": self.adapter,
            "model_service": {"reachable": service.reachable, "healthy": service.healthy,
                              "backend": service.detail.get("backend"), "error": service.error},
        }
        return Response(self.OutputSerializer(body).data)
