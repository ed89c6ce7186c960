import pytest

from apps.core.errors import ApplicationError
from apps.customer_service.importers import ImportFormatError, parse_csv, parse_file, parse_json, parse_markdown


def test_csv_rows_with_optional_lists():
    data = ("question,answer,phrasings,tags\n"
            "Where is my order?,Check Account > Orders.,Where's my parcel?|Order status,orders|shipping\n"
            "How do I pay?,By card.,,\n").encode()

    rows = parse_csv(data)

    assert [(r.row, r.question, r.phrasings, r.tags, r.error) for r in rows] == [
        (1, "Where is my order?", ["Where's my parcel?", "Order status"], ["orders", "shipping"], ""),
        (2, "How do I pay?", [], [], ""),
    ]


def test_csv_only_needs_question_and_answer_columns():
    rows = parse_csv(b"answer,question\nBy card.,How do I pay?\n")

    assert (rows[0].question, rows[0].answer) == ("How do I pay?", "By card.")


@pytest.mark.parametrize("line,error", [
    (",An answer without a question", "missing question"),
    ("A question without an answer,", "missing answer"),
    ("Q?,A.,p,t,an extra cell", "more cells than the header has columns"),
    (f"{'x' * 1001},A.", "question longer than 1000 characters"),
])
def test_bad_csv_rows_carry_their_reason(line, error):
    rows = parse_csv(f"question,answer,phrasings,tags\n{line}\n".encode())

    assert rows[0].error == error


@pytest.mark.parametrize("data,message", [
    (b"title,body\nx,y\n", "must have the columns question and answer"),
    (b"\xff\xfe\x00q", "not UTF-8"),
    (b'question,answer\n"unclosed,quote\n', "malformed CSV"),
])
def test_an_unreadable_csv_is_refused_as_a_whole(data, message):
    with pytest.raises(ImportFormatError, match=message):
        parse_csv(data)


def test_json_accepts_a_list_or_an_entries_object():
    as_list = parse_json(b'[{"question": "Q?", "answer": "A.", "phrasings": ["Q2?"], "tags": "t1|t2"}]')
    as_object = parse_json(b'{"entries": [{"question": "Q?", "answer": "A."}, 3]}')

    assert (as_list[0].phrasings, as_list[0].tags) == (["Q2?"], ["t1", "t2"])
    assert [r.error for r in as_object] == ["", "not an object"]
    with pytest.raises(ApplicationError, match="The file is not valid JSON"):
        parse_json(b"[{")


def test_markdown_has_one_entry_per_heading():
    data = ("# Returns\n\n## How long can I return items?\nPhrasings: return window | days to return\n"
            "Tags: returns\n30 days from delivery.\n\nUse the returns page.\n## Empty one\n").encode()

    rows = parse_markdown(data)

    assert [(r.question, r.answer, r.phrasings, r.error) for r in rows] == [
        ("Returns", "", [], "missing answer"),
        ("How long can I return items?", "30 days from delivery.\n\nUse the returns page.",
         ["return window", "days to return"], ""),
        ("Empty one", "", [], "missing answer"),
    ]


def test_unknown_file_types_are_refused():
    with pytest.raises(ImportFormatError, match="unsupported file type '.xlsx'"):
        parse_file("faq.xlsx", b"")


def test_markdown_headings_follow_commonmark():
    data = "# What is C#\nA language.\n## How do I pay? ##\nBy card.\n####### seven is text\n#hashtag too\n".encode()

    rows = parse_markdown(data)

    assert [(r.question, r.answer) for r in rows] == [
        ("What is C#", "A language."), ("How do I pay?", "By card.\n####### seven is text\n#hashtag too")]


def test_markdown_meta_lines_allow_spaces_before_the_colon():
    rows = parse_markdown(b"# Q?\nTags : a | b\nPHRASINGS:q2\nA.\n")

    assert (rows[0].tags, rows[0].phrasings, rows[0].answer) == (["a", "b"], ["q2"], "A.")


# Each of these lines took the old heading regex cubic time (1,600 characters: seconds); at 200,000
# characters a backtracking parser would outlast the suite's pytest timeout.
@pytest.mark.parametrize("text,question,error", [
    ("# x" + " \t" * 100_000 + "y\nA.", "x" + " \t" * 100_000 + "y", "question longer than 1000 characters"),
    ("#" + " " * 200_000 + "\nA.", "", "missing question"),
    ("# " + "#" * 200_000 + "\nA.", "", "missing question"),
    ("# Q" + " #" * 100_000 + "\nA.", "Q" + " #" * 99_999, "question longer than 1000 characters"),
    ("# Q\n" + " " * 200_000, "Q", "missing answer"),
    ("# Q\nTags:" + " " * 200_000 + "x", "Q", "missing answer"),
])
def test_markdown_parses_adversarial_lines_in_one_pass(text, question, error):
    rows = parse_markdown(text.encode())

    assert [(r.question, r.error) for r in rows] == [(question, error)]


def test_a_long_line_of_hashes_is_no_heading():
    with pytest.raises(ImportFormatError, match="no headings found"):
        parse_markdown(b"#" * 200_000)


def test_the_importers_use_no_regular_expressions():
    """Linear time by construction: the CSV and JSON readers are Python's, Markdown uses string methods."""
    from apps.customer_service import importers

    assert not hasattr(importers, "re")


def test_deeply_nested_json_is_refused_before_parsing():
    with pytest.raises(ApplicationError) as refused:
        parse_json(b'[{"question": "Q?", "answer": ' + b"[" * 50_000 + b"]" * 50_000 + b"}]")

    assert (refused.value.status, refused.value.code, refused.value.field) == (400, "too_deep", "file")


@pytest.mark.parametrize("name,data", [
    ("faq.csv", b"question,answer\n" + b"Q?,A.\n" * 3),
    ("faq.json", b'[{"question": "Q?", "answer": "A."}, 1, 2]'),
    ("faq.md", b"# Q1\nA.\n# Q2\nA.\n# Q3\nA.\n"),
])
def test_files_with_more_entries_than_the_limit_are_refused(settings, name, data):
    settings.CUSTOMER_SERVICE_IMPORT_MAX_ENTRIES = 2

    with pytest.raises(ImportFormatError, match="more than 2 "):
        parse_file(name, data)


def test_rows_with_too_many_phrasings_or_tags_carry_their_reason():
    rows = parse_csv(b"question,answer,phrasings,tags\nQ?,A.," + b"|".join(b"p%d" % i for i in range(51))
                     + b",\nR?,A.,," + b"|".join(b"t%d" % i for i in range(21)) + b"\n")

    assert [r.error for r in rows] == ["more than 50 phrasings", "more than 20 tags"]
