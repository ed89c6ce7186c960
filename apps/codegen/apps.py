from django.apps import AppConfig


class CodegenConfig(AppConfig):
    name = "apps.codegen"
    label = "codegen"
    verbose_name = "Codegen"
