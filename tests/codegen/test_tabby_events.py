"""Tabby's LogEventRequest at /v1/events: view_id, elapsed and select_kind are kept, bounded, and shown in
the stats and the admin."""
import pytest

from apps.codegen.models import Completion, CompletionEvent

EVENTS = "/api/codegen/v1/events"


@pytest.fixture
def completion(developer):
    return Completion.objects.create(user=developer, language="python", text="return 1")


def post_event(client, bearer, query="", **event):
    return client.post(EVENTS + query, event, content_type="application/json", **bearer)


def test_an_event_keeps_the_view_id_and_elapsed_and_answers_as_tabby_does(client, bearer, completion):
    response = post_event(client, bearer, type="dismiss", completion_id=completion.id, choice_index=0,
                          view_id="view-3f2a", elapsed=1830)

    event = completion.events.get()
    assert (response.status_code, response.content) == (200, b"")
    assert (event.type, event.view_id, event.elapsed, event.select_kind) == ("dismiss", "view-3f2a", 1830, "")


def test_a_partial_accept_is_a_select_with_select_kind_line_from_the_query_string(client, bearer, completion):
    response = post_event(client, bearer, "?select_kind=line", type="select", completion_id=completion.id,
                          choice_index=0, view_id="view-1", elapsed=420)

    assert response.status_code == 200
    assert completion.events.get().select_kind == "line"


def test_select_kind_in_the_body_counts_too_and_nulls_are_absent_values(client, bearer, completion):
    post_event(client, bearer, type="select", completion_id=completion.id, choice_index=0, select_kind="line",
               view_id=None, elapsed=None)
    post_event(client, bearer, type="select", completion_id=completion.id, choice_index=0, select_kind=None)

    assert list(completion.events.order_by("id").values_list("select_kind", "view_id", "elapsed")) == [
        ("line", "", None), ("", "", None)]


@pytest.mark.parametrize("query,event,field", [
    ("", {"type": "view", "select_kind": "line"}, "select_kind"),
    ("?select_kind=word", {"type": "select"}, "select_kind"),
    ("", {"type": "select", "elapsed": -1}, "elapsed"),
    ("", {"type": "select", "elapsed": 2**32}, "elapsed"),
    ("", {"type": "view", "view_id": "v" * 129}, "view_id"),
    ("", {"type": "view", "choice_index": 2**31}, "choice_index"),
    ("", {"type": "shown"}, "type"),
])
def test_events_out_of_bounds_are_refused_naming_the_field(client, bearer, completion, query, event, field):
    response = post_event(client, bearer, query, completion_id=completion.id, **event)

    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert not completion.events.exists()


def test_the_stats_count_partial_accepts_and_the_time_to_accept(client, bearer, developer):
    shown = [Completion.objects.create(user=developer, language="python", text=f"x{i}") for i in range(3)]
    for completion in shown:
        post_event(client, bearer, type="view", completion_id=completion.id, view_id=f"view-{completion.id}")
    post_event(client, bearer, type="select", completion_id=shown[0].id, elapsed=1000)
    post_event(client, bearer, "?select_kind=line", type="select", completion_id=shown[1].id, elapsed=2001)

    client.force_login(developer)
    stats = client.get("/api/codegen/v1/stats").json()

    assert (stats["shown"], stats["accepted"], stats["accepted_partly"]) == (3, 2, 1)
    assert stats["mean_accept_ms"] == 1500
    assert stats["acceptance_rate"] == 0.667


def test_the_stats_have_no_time_to_accept_before_any(client, developer):
    client.force_login(developer)

    stats = client.get("/api/codegen/v1/stats").json()

    assert (stats["accepted_partly"], stats["mean_accept_ms"]) == (0, None)


def test_the_admin_lists_events_with_their_view_kind_and_elapsed(admin_client, completion):
    CompletionEvent.objects.create(completion=completion, type="select", view_id="view-77", elapsed=930,
                                   select_kind="line")

    listing = admin_client.get("/admin/codegen/completionevent/?select_kind=line")

    assert listing.status_code == 200
    assert b"view-77" in listing.content and b"930" in listing.content
    assert b"part of it (a line or a word)" in listing.content
