from django.urls import path

from apps.customer_service.apis import CustomerServiceStatusApi

app_name = "customer_service"

urlpatterns = [
    path("v1/status", CustomerServiceStatusApi.as_view(), name="status"),
]
