"""What Tabby's IDE agents send as context besides the file: declarations, snippets of recently changed
and recently opened files, and the clipboard; ranked as Tabby's server ranks them, bounded, and shown
in debug_data with their source."""
import pytest

from apps.codegen.completion import (CLIPBOARD_CHARS, OPENED_FILE_CHARS, CompletionRequestData, Snippet, rank_context,
                                     render_context)
from tests.codegen.test_completion_api import URL, tabby_request

LINES = "".join(f"line_{i:03d} = {i}\n" for i in range(100))  # 1,300 characters, 13 per line


def context_request(**segments) -> dict:
    body = tabby_request("total = ", "\n", debug_options={"return_snippets": True, "return_prompt": True})
    body["segments"].update(segments)
    return body


def test_ide_context_ranks_as_in_tabbys_server_and_the_clipboard_comes_last():
    request = CompletionRequestData(
        language="python", prefix="x = ", clipboard="copied = 1",
        declarations=[Snippet("a.py", "def a(): ...", "declaration")],
        changed_file_snippets=[Snippet("b.py", "b = 2", "changed_file", 0.9)],
        opened_file_snippets=[Snippet("c.py", "c = 3", "recently_opened_file")])

    ranked = rank_context(request, [Snippet("d.py", "def d(): ...", "definition")])

    assert [(s.filepath, s.source) for s in ranked] == [
        ("a.py", "declaration"), ("b.py", "changed_file"), ("c.py", "recently_opened_file"), ("d.py", "definition"),
        ("", "clipboard")]


def test_an_opened_file_and_the_clipboard_are_cut_at_a_line_end():
    request = CompletionRequestData(language="python", prefix="x = ", clipboard=LINES,
                                    opened_file_snippets=[Snippet("c.py", LINES, "recently_opened_file")])

    opened, clipboard = rank_context(request, [])

    assert opened.body == LINES[:OPENED_FILE_CHARS // 13 * 13 - 1]
    assert clipboard.body == LINES[:CLIPBOARD_CHARS // 13 * 13 - 1]
    assert not opened.body.endswith("\n") and LINES.startswith(opened.body + "\n")


@pytest.mark.parametrize("clipboard", ["", "  ", "\n\n", "ab"])
def test_an_empty_or_tiny_clipboard_is_no_context(clipboard):
    assert rank_context(CompletionRequestData(language="python", prefix="x = ", clipboard=clipboard), []) == []


@pytest.mark.parametrize("budget,sources", [(1_500, ["recently_opened_file", "clipboard"]),
                                            (600, ["recently_opened_file"])])
def test_the_clipboard_only_gets_the_room_the_other_context_leaves(budget, sources):
    request = CompletionRequestData(language="python", prefix="x = ", clipboard="copied = 1",
                                    opened_file_snippets=[Snippet("c.py", LINES, "recently_opened_file")])

    _, used = render_context(rank_context(request, []), "python", budget=budget)  # the opened file takes 584

    assert [s.source for s in used] == sources


def test_opened_files_and_the_clipboard_reach_the_prompt_and_debug_data(client, bearer, scripted_model_service):
    body = context_request(
        declarations=[{"filepath": "inventory/models.py", "body": "def price(product): ..."}],
        relevant_snippets_from_changed_files=[{"filepath": "inventory/cart.py", "body": "CART = []", "score": 0.7}],
        relevant_snippets_from_recently_opened_files=[{"filepath": "inventory/tax.py", "body": "VAT = 0.2",
                                                       "score": 1.0}],
        clipboard="discount = 0.1\n")

    response = client.post(URL, body, content_type="application/json", **bearer)

    debug = response.json()["debug_data"]
    assert response.status_code == 200
    assert [(s["filepath"], s["source"], s["body"]) for s in debug["snippets"]] == [
        ("inventory/models.py", "declaration", "def price(product): ..."),
        ("inventory/cart.py", "changed_file", "CART = []"),
        ("inventory/tax.py", "recently_opened_file", "VAT = 0.2"),
        ("", "clipboard", "discount = 0.1")]
    assert debug["prompt"] == ("# Path: inventory/models.py\n# def price(product): ...\n"
                               "# Path: inventory/cart.py\n# CART = []\n"
                               "# Path: inventory/tax.py\n# VAT = 0.2\n"
                               "# Clipboard:\n# discount = 0.1\n"
                               "total = ")
    assert scripted_model_service.requests[-1]["prompt"] == debug["prompt"]


def test_tabbys_nulls_for_absent_segments_are_accepted(client, bearer, scripted_model_service):
    body = context_request(suffix=None, filepath=None, git_url=None, declarations=None, clipboard=None,
                           relevant_snippets_from_changed_files=None, relevant_snippets_from_recently_opened_files=None)

    response = client.post(URL, body, content_type="application/json", **bearer)

    assert response.status_code == 200
    assert response.json()["debug_data"]["snippets"] == []
    assert response.json()["debug_data"]["prompt"] == "total = "


def test_indentation_in_context_snippets_is_kept(client, bearer, scripted_model_service):
    body = context_request(relevant_snippets_from_recently_opened_files=[
        {"filepath": "a.py", "body": "    return 1\n", "score": 1}], clipboard="    x = 1")

    snippets = client.post(URL, body, content_type="application/json", **bearer).json()["debug_data"]["snippets"]

    assert [s["body"] for s in snippets] == ["    return 1\n", "    x = 1"]


@pytest.mark.parametrize("segments,field", [
    ({"relevant_snippets_from_recently_opened_files": [{"filepath": "a.py", "body": "a = 1"}] * 21},
     "relevant_snippets_from_recently_opened_files"),
    ({"declarations": [{"filepath": "a.py", "body": "x" * 20_001}]}, "declarations"),
    ({"clipboard": "x" * 20_001}, "clipboard"),
    ({"relevant_snippets_from_changed_files": [{"filepath": "a.py"}]}, "relevant_snippets_from_changed_files"),
])
def test_context_beyond_its_bounds_is_a_422_naming_the_field(client, bearer, segments, field):
    response = client.post(URL, context_request(**segments), content_type="application/json", **bearer)

    assert response.status_code == 422
    assert list(response.json()["errors"]) == [field]
