import pytest

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
    with pytest.raises(ImportFormatError, match="malformed JSON"):
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
