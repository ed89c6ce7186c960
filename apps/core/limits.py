"""Bounded reading of what users send: sizes are checked while reading, never after reading whole."""
import json

from django.conf import settings
from django.core.files.uploadhandler import TemporaryFileUploadHandler

from apps.core.errors import ApplicationError, TooLargeError

CHUNK = 64 * 1024


def read_bounded(stream, *, max_bytes: int, field: str = "file") -> bytes:
    """Read a file-like object (an upload, a request body) and stop with a 413 past `max_bytes`."""
    parts, total = [], 0
    while True:
        chunk = stream.read(CHUNK)
        if not chunk:
            return b"".join(parts)
        total += len(chunk)
        if total > max_bytes:
            raise TooLargeError(f"The {field} is larger than the limit of {max_bytes:,} bytes.", field=field)
        parts.append(chunk)


def json_loads_bounded(text: str | bytes, *, max_depth: int = 32, field: str = "file"):
    """`json.loads` that refuses nesting deeper than `max_depth` (a 400), before the parser recurses."""
    depth = deepest = 0
    in_string = escaped = False
    data = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text
    for char in data:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > max_depth:
                raise ApplicationError(f"The JSON in the {field} is nested deeper than {max_depth} levels.",
                                       code="too_deep", field=field)
        elif char in "]}":
            depth -= 1
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as error:
        raise ApplicationError(f"The {field} is not valid JSON: {error}", code="invalid_json", field=field) from None


class BoundedUploadHandler(TemporaryFileUploadHandler):
    """Streams a request's files to a temporary file and stops the request with a 413 once they pass
    `max_bytes`, while they are received: an oversized upload is never spooled whole to disk."""

    def __init__(self, request=None, *, max_bytes: int, setting: str, field: str):
        super().__init__(request)
        self.max_bytes, self.setting, self.field = max_bytes, setting, field
        self.received = 0

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.max_bytes:
            self.upload_interrupted()
            raise TooLargeError(f"The {self.field} is larger than the limit of {self.max_bytes:,} bytes "
                                f"({self.setting}).", field=self.field)
        return super().receive_data_chunk(raw_data, start)


def uploads_bound(request, *, setting: str, field: str) -> None:
    """Cap the files of `request` at `settings.<setting>` bytes. Call it before anything parses the body:
    in DRF's `initialize_request`, in a console view before its CSRF check (frontend.uploads.upload_limited)."""
    request.upload_handlers = [BoundedUploadHandler(request, max_bytes=getattr(settings, setting), setting=setting,
                                                    field=field)]
