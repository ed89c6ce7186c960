from django.apps import AppConfig


class MedicalConfig(AppConfig):
    name = "apps.medical"
    label = "medical"
    verbose_name = "Medical"
