"""HTTP API of the adapters app (/api/adapters/v1/), for admins."""
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import HasArea
from apps.accounts.roles import Area
from apps.adapters import selectors, services
from apps.adapters.models import Adapter, AdapterDataset, AdapterJob, Domain
from apps.core.apis import BoundedUploadsMixin
from apps.core.errors import ApplicationError


class _Api(APIView):
    permission_classes = [HasArea]
    area = Area.ADAPTERS


class DatasetSerializer(serializers.ModelSerializer):
    class Meta:
        model = AdapterDataset
        fields = ["id", "name", "domain", "origin", "content_hash", "report", "created_at"]


class JobSerializer(serializers.ModelSerializer):
    class Meta:
        model = AdapterJob
        fields = ["id", "dataset", "adapter_name", "config", "status", "progress", "log", "cancel_requested",
                  "attempts", "adapter", "created_at", "started_at", "finished_at"]


class AdapterSerializer(serializers.ModelSerializer):
    class Meta:
        model = Adapter
        fields = ["id", "name", "domain", "version", "path", "metrics", "serving", "status", "promoted_at",
                  "created_at"]


class DatasetListCreateApi(BoundedUploadsMixin, _Api):
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    upload_limit_setting = "ADAPTER_DATASET_MAX_BYTES"

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200, required=False, default="dataset")
        domain = serializers.ChoiceField(choices=Domain.choices, default=Domain.CUSTOMER_SERVICE)
        file = serializers.FileField(required=False)
        knowledge_base = serializers.IntegerField(required=False, help_text="build from this knowledge base")
        repository = serializers.IntegerField(required=False, help_text="build from this indexed repository (FIM)")
        source = serializers.ChoiceField(choices=["suggestions", "medical_cases"], required=False,
                                         help_text="build from accepted suggestions or medical cases")

    @extend_schema(responses=DatasetSerializer(many=True))
    def get(self, request):
        return Response(DatasetSerializer(selectors.dataset_list(), many=True).data)

    @extend_schema(request=InputSerializer, responses={201: DatasetSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        if values.get("file"):
            dataset = services.dataset_upload(name=values["name"], domain=values["domain"],
                                              filename=values["file"].name, file=values["file"], user=request.user)
        elif values.get("knowledge_base") or values.get("repository") or values.get("source"):
            source = ("knowledge_base" if values.get("knowledge_base") else
                      "repository" if values.get("repository") else values["source"])
            dataset = services.dataset_build(source=source, user=request.user,
                                             object_id=values.get("knowledge_base") or values.get("repository"))
        else:
            raise ApplicationError("send a JSONL `file`, a `knowledge_base` or `repository` id, or a `source` "
                                   "(suggestions, medical_cases)")
        return Response(DatasetSerializer(dataset).data, status=status.HTTP_201_CREATED)


class JobListCreateApi(_Api):
    class InputSerializer(serializers.Serializer):
        dataset = serializers.IntegerField()
        adapter_name = serializers.RegexField(f"^{services.ADAPTER_NAME_PATTERN}$")
        config = serializers.DictField(required=False, default=dict)

    @extend_schema(responses=JobSerializer(many=True))
    def get(self, request):
        return Response(JobSerializer(selectors.job_list(), many=True).data)

    @extend_schema(request=InputSerializer, responses={201: JobSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = services.job_start(dataset=selectors.dataset_get(dataset_id=data.validated_data["dataset"]),
                                 adapter_name=data.validated_data["adapter_name"],
                                 config=services.job_config(values=data.validated_data["config"]), user=request.user)
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)


class JobDetailApi(_Api):
    @extend_schema(responses=JobSerializer)
    def get(self, request, job_id):
        return Response(JobSerializer(selectors.job_get(job_id=job_id)).data)


class JobLossCurveApi(_Api):
    """The training loss per optimizer step (what the console's chart draws), and once the job has
    registered its adapter, the gate's comparison on the held-out examples."""

    class OutputSerializer(serializers.Serializer):
        job = serializers.IntegerField()
        status = serializers.CharField()
        total_steps = serializers.IntegerField(allow_null=True)
        points = serializers.ListField(child=serializers.DictField())
        gate = serializers.DictField(allow_null=True)

    @extend_schema(responses=OutputSerializer)
    def get(self, request, job_id):
        return Response(self.OutputSerializer(selectors.job_loss_curve(job=selectors.job_get(job_id=job_id))).data)


class JobCancelApi(_Api):
    @extend_schema(request=None, responses=JobSerializer)
    def post(self, request, job_id):
        return Response(JobSerializer(services.job_cancel(job=selectors.job_get(job_id=job_id))).data)


class AdapterListApi(_Api):
    @extend_schema(responses=AdapterSerializer(many=True))
    def get(self, request):
        return Response(AdapterSerializer(selectors.adapter_list(), many=True).data)


class AdapterPromoteApi(_Api):
    class InputSerializer(serializers.Serializer):
        override = serializers.BooleanField(default=False)

    @extend_schema(request=InputSerializer, responses=AdapterSerializer)
    def post(self, request, adapter_id):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        adapter = services.adapter_promote(adapter=selectors.adapter_get(adapter_id=adapter_id), user=request.user,
                                           override=data.validated_data["override"])
        return Response(AdapterSerializer(adapter).data)


class AdapterRetireApi(_Api):
    @extend_schema(request=None, responses=AdapterSerializer)
    def post(self, request, adapter_id):
        adapter = services.adapter_retire(adapter=selectors.adapter_get(adapter_id=adapter_id))
        return Response(AdapterSerializer(adapter).data)
