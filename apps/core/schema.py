"""OpenAPI schema generation for the suite's style of API views.

Every view nests its own `InputSerializer` / `OutputSerializer`; drf-spectacular would name them all
"Input" / "Output", and the schema would then describe every route's body with one of them. Components
are named after their view instead (`SearchApi.OutputSerializer` -> `SearchOutput`).
"""
from drf_spectacular.openapi import AutoSchema


class SuiteAutoSchema(AutoSchema):
    def _get_serializer_name(self, serializer, direction, bypass_extensions=False):
        name = super()._get_serializer_name(serializer, direction, bypass_extensions)
        owner, dot, _ = type(serializer).__qualname__.rpartition(".")
        if not dot:
            return name
        return owner.replace("Serializer", "").replace("Api", "").replace(".", "") + name

