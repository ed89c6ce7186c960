"""Parse knowledge-base files (CSV, JSON, Markdown) into candidate rows, without touching the database.

A file that cannot be read at all raises ImportFormatError (the API answers 400); a bad row becomes
a ParsedRow with an error, reported and skipped, never half-imported.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field

MAX_FILE_BYTES = 5 * 2**20
MAX_ROWS = 10_000
MAX_QUESTION_CHARS = 1_000
MAX_ANSWER_CHARS = 10_000
LIST_SEPARATOR = "|"


class ImportFormatError(ValueError):
    """The file as a whole cannot be imported; the message says why."""


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
    row.question, row.answer = row.question.strip(), row.answer.strip()
    if not row.question:
        row.error = "missing question"
    elif not row.answer:
        row.error = "missing answer"
    elif len(row.question) > MAX_QUESTION_CHARS:
        row.error = f"question longer than {MAX_QUESTION_CHARS} characters"
    elif len(row.answer) > MAX_ANSWER_CHARS:
        row.error = f"answer longer than {MAX_ANSWER_CHARS} characters"
    elif any(len(p) > MAX_QUESTION_CHARS for p in row.phrasings):
        row.error = f"a phrasing is longer than {MAX_QUESTION_CHARS} characters"
    return row


def _text(data: bytes) -> str:
    if len(data) > MAX_FILE_BYTES:
        raise ImportFormatError(f"the file is larger than {MAX_FILE_BYTES // 2**20} MB")
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
            if number > MAX_ROWS:
                raise ImportFormatError(f"more than {MAX_ROWS} rows")
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
    try:
        document = json.loads(_text(data))
    except json.JSONDecodeError as error:
        raise ImportFormatError(f"malformed JSON: {error}") from None
    items = document.get("entries") if isinstance(document, dict) else document
    if not isinstance(items, list):
        raise ImportFormatError("the JSON must be a list of entries or an object with an 'entries' list")
    if len(items) > MAX_ROWS:
        raise ImportFormatError(f"more than {MAX_ROWS} entries")
    rows = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            rows.append(ParsedRow(number, error="not an object"))
            continue
        rows.append(_validated(ParsedRow(number, str(item.get("question") or ""), str(item.get("answer") or ""),
                                         _split(item.get("phrasings")), _split(item.get("tags")))))
    return rows


HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")
META = re.compile(r"^(phrasings|tags)\s*:\s*(.*)$", re.IGNORECASE)


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
        heading = HEADING.match(line)
        if heading:
            close()
            rows.append(ParsedRow(len(rows) + 1, question=heading.group(1)))
            body = []
        elif rows and (meta := META.match(line.strip())):
            setattr(rows[-1], meta.group(1).lower(), _split(meta.group(2)))
        elif rows:
            body.append(line)
    close()
    if not rows:
        raise ImportFormatError("no headings found: each entry starts with a '#' heading holding its question")
    if len(rows) > MAX_ROWS:
        raise ImportFormatError(f"more than {MAX_ROWS} entries")
    return rows


PARSERS = {"csv": parse_csv, "json": parse_json, "md": parse_markdown, "markdown": parse_markdown}


def parse_file(name: str, data: bytes) -> list[ParsedRow]:
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if extension not in PARSERS:
        raise ImportFormatError(f"unsupported file type '.{extension}': use .csv, .json or .md")
    return PARSERS[extension](data)
