from django.urls import path

from apps.accounts.apis import ApiTokenCreateApi, ApiTokenDeleteApi, ApiTokenListApi

app_name = "accounts"

urlpatterns = [
    path("v1/tokens", ApiTokenListApi.as_view(), name="token-list"),
    path("v1/tokens/create", ApiTokenCreateApi.as_view(), name="token-create"),
    path("v1/tokens/<int:token_id>", ApiTokenDeleteApi.as_view(), name="token-delete"),
]
