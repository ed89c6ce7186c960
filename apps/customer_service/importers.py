"""Parse knowledge-base files (CSV, JSON, Markdown) into candidate rows, without touching the database.

A file that cannot be read at all raises ImportFormatError (the API answers 400); a bad row becomes
a ParsedRow with an error, reported and skipped, never half-imported. Every parser runs in time
linear in the file's size: the CSV and JSON readers are Python's, nesting depth is checked before
JSON is parsed, and Markdown lines are cut with string operations, never a backtracking regex.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from django.conf import settings

from apps.core.errors import ApplicationError
from apps.core.limits import json_loads_bounded, read_bounded

MAX_PHRASINGS = 50  # each is embedded and indexed
MAX_TAGS = 20
MAX_JSON_DEPTH = 16  # an entries object holding entries with lists needs 4
LIST_SEPARATOR = "|"


class ImportFormatError(ApplicationError):
    """The file as a whole cannot be imported; the message says why (a 400 naming the `file` field)."""

    def __init__(self, message: str):
        super().__init__(message=message, code="invalid_file", field="file")


def _max_entries() -> int:
    return settings.CUSTOMER_SERVICE_IMPORT_MAX_ENTRIES


@dataclass
class ParsedRow:
    row: int  # 1-based: the CSV line after the header, the JSON item, the Markdown section
    question: str = ""
    answer: str = ""
    phrasings: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    error: str = ""


def _split(value) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(LIST_SEPARATOR)
    return [str(item).strip() for item in items if str(item).strip()]


def _validated(row: ParsedRow) -> ParsedRow:
    max_question, max_answer = settings.CUSTOMER_SERVICE_MAX_QUESTION_CHARS, settings.CUSTOMER_SERVICE_MAX_ANSWER_CHARS
    row.question, row.answer = row.question.strip(), row.answer.strip()
    if not row.question:
        row.error = "missing question"
    elif not row.answer:
        row.error = "missing answer"
    elif len(row.question) > max_question:
        row.error = f"question longer than {max_question} characters"
    elif len(row.answer) > max_answer:
        row.error = f"answer longer than {max_answer} characters"
    elif any(len(p) > max_question for p in row.phrasings):
        row.error = f"a phrasing is longer than {max_question} characters"
    elif len(row.phrasings) > MAX_PHRASINGS:
        row.error = f"more than {MAX_PHRASINGS} phrasings"
    elif len(row.tags) > MAX_TAGS:
        row.error = f"more than {MAX_TAGS} tags"
    return row


def read_import(upload) -> bytes:
    """An uploaded import file, refused (413) as soon as it passes the size limit while being read."""
    return read_bounded(upload, max_bytes=settings.CUSTOMER_SERVICE_IMPORT_MAX_BYTES, field="file")


def _text(data: bytes) -> str:
    """The file as text; callers that read an upload bound it while reading (`read_import`)."""
    limit = settings.CUSTOMER_SERVICE_IMPORT_MAX_BYTES
    if len(data) > limit:
        raise ImportFormatError(f"the file is larger than the limit of {limit:,} bytes")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportFormatError("the file is not UTF-8 text") from None


def parse_csv(data: bytes) -> list[ParsedRow]:
    """Header `question,answer,phrasings,tags`; phrasings and tags optional, values separated by `|`."""
    text = _text(data)
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
        header = [name.strip().lower() for name in (reader.fieldnames or [])]
    except csv.Error as error:
        raise ImportFormatError(f"malformed CSV: {error}") from None
    missing = [column for column in ("question", "answer") if column not in header]
    if missing:
        raise ImportFormatError(f"the CSV header must have the columns question and answer (missing: "
                                f"{', '.join(missing)}); optional: phrasings, tags")
    reader.fieldnames = header
    rows = []
    try:
        for number, record in enumerate(reader, start=1):
            if number > _max_entries():
                raise ImportFormatError(f"more than {_max_entries()} rows")
            if None in record:  # more cells than header columns
                rows.append(ParsedRow(number, error="more cells than the header has columns"))
                continue
            rows.append(_validated(ParsedRow(number, record.get("question") or "", record.get("answer") or "",
                                             _split(record.get("phrasings")), _split(record.get("tags")))))
    except csv.Error as error:
        raise ImportFormatError(f"malformed CSV near row {reader.line_num}: {error}") from None
    return rows


def parse_json(data: bytes) -> list[ParsedRow]:
    """A list of {"question", "answer", "phrasings"?, "tags"?} objects, or {"entries": [...]}."""
    document = json_loads_bounded(_text(data), max_depth=MAX_JSON_DEPTH, field="file")
    items = document.get("entries") if isinstance(document, dict) else document
    if not isinstance(items, list):
        raise ImportFormatError("the JSON must be a list of entries or an object with an 'entries' list")
    if len(items) > _max_entries():
        raise ImportFormatError(f"more than {_max_entries()} entries")
    rows = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            rows.append(ParsedRow(number, error="not an object"))
            continue
        rows.append(_validated(ParsedRow(number, str(item.get("question") or ""), str(item.get("answer") or ""),
                                         _split(item.get("phrasings")), _split(item.get("tags")))))
    return rows


META_FIELDS = ("phrasings", "tags")


def _heading(line: str) -> str | None:
    """The text of an ATX heading (`## How do I pay? ##`), or None when `line` is not one.

    CommonMark's rule: one to six `#`, then whitespace (or the end); a closing run of `#` counts only
    after whitespace, so `# What is C#` keeps its `#`. Each step scans the line once.
    """
    level = len(line) - len(line.lstrip("#"))
    rest = line[level:]
    if not 1 <= level <= 6 or (rest and not rest[0].isspace()):
        return None
    text = rest.strip()
    unclosed = text.rstrip("#")
    if not unclosed or unclosed[-1].isspace():
        text = unclosed.rstrip()
    return text


def _meta(line: str) -> tuple[str, str] | None:
    """`Phrasings: a | b` or `Tags: x | y` as (field, value); None for any other line."""
    name, colon, value = line.strip().partition(":")
    name = name.rstrip().lower()
    return (name, value) if colon and name in META_FIELDS else None


def parse_markdown(data: bytes) -> list[ParsedRow]:
    """One entry per heading: the heading is the question, the text under it the answer.

    Optional lines `Phrasings: a | b` and `Tags: x | y` under a heading fill those fields.
    """
    rows: list[ParsedRow] = []
    body: list[str] = []

    def close():
        if rows:
            rows[-1].answer = "\n".join(body).strip()
            _validated(rows[-1])

    for line in _text(data).splitlines():
        question = _heading(line)
        if question is not None:
            close()
            if len(rows) == _max_entries():
                raise ImportFormatError(f"more than {_max_entries()} entries")
            rows.append(ParsedRow(len(rows) + 1, question=question))
            body = []
        elif rows and (meta := _meta(line)):
            setattr(rows[-1], meta[0], _split(meta[1]))
        elif rows:
            body.append(line)
    close()
    if not rows:
        raise ImportFormatError("no headings found: each entry starts with a '#' heading holding its question")
    return rows


PARSERS = {"csv": parse_csv, "json": parse_json, "md": parse_markdown, "markdown": parse_markdown}


def parse_file(name: str, data: bytes) -> list[ParsedRow]:
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if extension not in PARSERS:
        raise ImportFormatError(f"unsupported file type '.{extension}': use .csv, .json or .md")
    return PARSERS[extension](data)
