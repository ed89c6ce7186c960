"""The one application error type: services raise it, the API and the console each map it once.

`status` is the HTTP status the API answers, `code` a machine-readable name, `field` the input at
fault (or ""), `message` a sentence for a person, `extra` more keys a client contract asks for (for
example the languages Tabby's clients may choose from).
"""
from dataclasses import dataclass, field as dataclass_field


@dataclass
class ApplicationError(Exception):
    message: str
    status: int = 400
    code: str = "invalid"
    field: str = ""
    extra: dict = dataclass_field(default_factory=dict)

    def __str__(self) -> str:
        return self.message

    def as_json(self) -> dict:
        body = {"detail": self.message, "code": self.code}
        if self.field:
            body["field"] = self.field
        return {**body, **self.extra}


class NotFoundError(ApplicationError):
    """An object that does not exist or that the caller may not see: the same 404 either way."""

    def __init__(self, message: str = "Not found.", field: str = ""):
        super().__init__(message=message, status=404, code="not_found", field=field)


class TooLargeError(ApplicationError):
    def __init__(self, message: str, field: str = ""):
        super().__init__(message=message, status=413, code="too_large", field=field)
