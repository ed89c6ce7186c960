from django.apps import AppConfig


class CustomerServiceConfig(AppConfig):
    name = "apps.customer_service"
    label = "customer_service"
    verbose_name = "Customer service"
