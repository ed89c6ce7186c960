"""Token management over the API: the console session only (`token_scope = None`), never a token."""
from django.conf import settings
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import ApiToken
from apps.accounts.permissions import HasArea
from apps.accounts.roles import Area
from apps.accounts.selectors import api_token_list
from apps.accounts.services import api_token_create, api_token_delete


class TokenOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    hint = serializers.CharField()
    scope = serializers.ChoiceField(choices=ApiToken.Scope.choices)
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)


class _TokenApi(APIView):
    permission_classes = [HasArea]
    area = Area.API_TOKENS
    token_scope = None  # no token may list, mint or revoke tokens


class ApiTokenListApi(_TokenApi):
    @extend_schema(responses=TokenOutputSerializer(many=True))
    def get(self, request):
        return Response(TokenOutputSerializer(api_token_list(user=request.user), many=True).data)


class ApiTokenCreateApi(_TokenApi):
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        scope = serializers.ChoiceField(choices=ApiToken.Scope.choices, default=ApiToken.Scope.COMPLETION)
        expires_in_days = serializers.IntegerField(min_value=1, max_value=settings.API_TOKEN_MAX_DAYS,
                                                   default=settings.API_TOKEN_DEFAULT_DAYS)

    class OutputSerializer(TokenOutputSerializer):
        token = serializers.CharField(help_text="The secret; shown only in this response.")

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        created = api_token_create(user=request.user, **data.validated_data)
        body = dict(TokenOutputSerializer(created.token).data, token=created.secret)
        return Response(body, status=status.HTTP_201_CREATED)


class ApiTokenDeleteApi(_TokenApi):
    @extend_schema(responses={204: None})
    def delete(self, request, token_id: int):
        if not api_token_delete(user=request.user, token_id=token_id):
            raise Http404("No such token.")
        return Response(status=status.HTTP_204_NO_CONTENT)
