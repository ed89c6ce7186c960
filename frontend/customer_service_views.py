"""Console pages of the customer-service area: the conversation queue, conversations with streamed
suggestions, knowledge bases with their retrieval model. Who may change what is decided by the services
(one rule, shared with the API)."""
import math
from datetime import timedelta
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.accounts.permissions import area_required
from apps.accounts.roles import Area
from apps.core.errors import ApplicationError, NotFoundError
from apps.customer_service import importers, selectors, services
from apps.customer_service.models import Conversation, KnowledgeBase, Message, RetrievalTuning
from frontend.uploads import upload_limited

customer_service_page = area_required(Area.CUSTOMER_SERVICE)
TUNINGS_SHOWN = 5
ACCURACY_DAYS = 30
CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 600, 160, 24  # the accuracy chart's viewBox and margin, in SVG units


def shows_errors(back: str | None = None):
    """Console mapping of application errors: an unknown object is a 404 page; any other refusal is a
    message on the page `back` names (reversed with the view's own URL arguments)."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            try:
                return view(request, *args, **kwargs)
            except NotFoundError as error:
                raise Http404(str(error)) from None
            except ApplicationError as error:
                if back is None:
                    raise
                messages.error(request, str(error))
                return redirect(back, **kwargs)

        return wrapper

    return decorator


def conversation_action(change):
    """A POST that changes one conversation and goes back to its page (a refusal is a message there):
    `change(request, conversation)` makes the change."""

    @customer_service_page
    @require_POST
    @shows_errors("frontend:cs_conversation")
    @wraps(change)
    def view(request, conversation_id: int):
        conversation = selectors.conversation_get(conversation_id=conversation_id)
        change(request, conversation)
        return redirect("frontend:cs_conversation", conversation_id=conversation.id)

    return view


@customer_service_page
def conversation_list(request):
    status = request.GET.get("status") if request.GET.get("status") in Conversation.Status.values else ""
    assignee = request.GET.get("assignee") if request.GET.get("assignee") in ("none", "me") else ""
    return render(request, "frontend/customer_service/conversations.html", {
        "conversations": selectors.conversation_list(status=status, assignee=assignee, user=request.user),
        "status": status, "assignee": assignee, "statuses": Conversation.Status.choices,
        "knowledge_bases": selectors.knowledge_base_list(), "stats": selectors.suggestion_stats()})


@customer_service_page
@require_POST
@shows_errors("frontend:customer_service")
def conversation_start(request):
    """A conversation the agent starts is theirs, unless they put it in the shared queue."""
    knowledge_base = selectors.knowledge_base_get(kb_id=request.POST.get("knowledge_base", ""))
    text = request.POST.get("text", "").strip()
    conversation = services.conversation_create(
        knowledge_base=knowledge_base, customer_name=request.POST.get("customer_name", ""),
        assignee=None if request.POST.get("queue") == "on" else request.user)
    if text:
        services.conversation_message_add(conversation=conversation, user=request.user, role=Message.Role.CUSTOMER,
                                          text=text)
    return redirect("frontend:cs_conversation", conversation_id=conversation.id)


@customer_service_page
@shows_errors()
def conversation_detail(request, conversation_id: int):
    conversation = selectors.conversation_get(conversation_id=conversation_id)
    context = _conversation_context(request, conversation)
    if selectors.user_is_admin(request.user):
        context["agents"] = selectors.support_agent_list()
    if context["may_change"]:  # a rejected suggestion may name the entry that was right instead
        context["entries"] = selectors.entry_list(knowledge_base=conversation.knowledge_base).filter(enabled=True)
    return render(request, "frontend/customer_service/conversation.html", context)


@customer_service_page
@shows_errors()
def conversation_messages(request, conversation_id: int):
    """The message list alone, refreshed in place by HTMX after each action."""
    conversation = selectors.conversation_get(conversation_id=conversation_id)
    return render(request, "frontend/customer_service/_messages.html", _conversation_context(request, conversation))


def _conversation_context(request, conversation: Conversation) -> dict:
    # not "messages": the base template shows Django's flash messages under that name
    return {"conversation": conversation, "conversation_messages": conversation.messages.all(),
            "cited_entries": selectors.conversation_cited_entries(conversation=conversation),
            "is_admin": selectors.user_is_admin(request.user),
            "may_change": selectors.conversation_may_change(user=request.user, conversation=conversation),
            "may_take": selectors.conversation_may_take(user=request.user, conversation=conversation)}


@conversation_action
def conversation_take(request, conversation: Conversation) -> None:
    services.conversation_take(conversation=conversation, user=request.user)
    messages.success(request, "You took this conversation: it is yours to answer.")


@conversation_action
def conversation_assign(request, conversation: Conversation) -> None:
    """Admins reassign (a user id) or release (empty); an assignee releases their own conversation."""
    assignee_id = request.POST.get("assignee", "").strip()
    assignee = selectors.support_agent_get(user_id=assignee_id) if assignee_id else None
    services.conversation_assign(conversation=conversation, user=request.user, assignee=assignee)
    messages.success(request, f"Conversation assigned to {assignee.username}." if assignee
                     else "Conversation released to the queue.")


@conversation_action
def conversation_message(request, conversation: Conversation) -> None:
    role = request.POST.get("role") if request.POST.get("role") in (Message.Role.CUSTOMER, Message.Role.AGENT) else None
    text = request.POST.get("text", "").strip()
    if role and text:
        services.conversation_message_add(conversation=conversation, user=request.user, role=role, text=text)


@conversation_action
def conversation_status(request, conversation: Conversation) -> None:
    if request.POST.get("status") in Conversation.Status.values:
        services.conversation_status_set(conversation=conversation, user=request.user, status=request.POST["status"],
                                         reason=request.POST.get("reason", "Flagged by the agent."))


@customer_service_page
def knowledge_bases(request):
    return render(request, "frontend/customer_service/knowledge_bases.html",
                  {"knowledge_bases": selectors.knowledge_base_list()})


@customer_service_page
@require_POST
@shows_errors("frontend:cs_knowledge_bases")
def knowledge_base_create(request):
    knowledge_base = services.knowledge_base_create(name=request.POST.get("name", ""))
    return redirect("frontend:cs_knowledge_base", kb_id=knowledge_base.id)


@customer_service_page
@shows_errors()
def knowledge_base_detail(request, kb_id: int, report=None, error: str = ""):
    knowledge_base = selectors.knowledge_base_get(kb_id=kb_id)
    accuracy = selectors.suggestion_accuracy(knowledge_base=knowledge_base, days=ACCURACY_DAYS)
    return render(request, "frontend/customer_service/knowledge_base.html", {
        "knowledge_base": knowledge_base, "entries": selectors.entry_list(knowledge_base=knowledge_base),
        "report": report, "import_error": error, **_retrieval_context(request, knowledge_base),
        **_threshold_context(knowledge_base), "accuracy": accuracy, "chart": _accuracy_chart(accuracy)})


def _retrieval_context(request, knowledge_base: KnowledgeBase) -> dict:
    """The "Retrieval model" card: the model in use, the latest tunings, the gate of the latest finished one."""
    tunings = list(selectors.retrieval_tuning_list(knowledge_base=knowledge_base)[:TUNINGS_SHOWN])
    finished = selectors.retrieval_tuning_list(knowledge_base=knowledge_base).filter(
        status=RetrievalTuning.Status.SUCCEEDED).first()
    return {"knowledge_base": knowledge_base, "tunings": tunings, "finished": finished,
            "tuning_active": any(t.status in (RetrievalTuning.Status.QUEUED, RetrievalTuning.Status.RUNNING)
                                 for t in tunings),
            "is_admin": selectors.user_is_admin(request.user)}


def _threshold_context(knowledge_base: KnowledgeBase) -> dict:
    default = services.knowledge_base_calibration(knowledge_base).threshold
    chosen = knowledge_base.answer_threshold
    return {"default_threshold": default, "threshold_in_use": default if chosen is None else chosen}


def _accuracy_chart(rows: list[dict]) -> dict:
    """Geometry of the accuracy chart, drawn in the template as inline SVG: x is the day within the last
    ACCURACY_DAYS (as the selector counts them, UTC), y the accuracy from 0 (bottom) to 1 (top); days
    without reviews have no point."""
    first = timezone.now().date() - timedelta(days=ACCURACY_DAYS)
    width, height = CHART_WIDTH - 2 * CHART_PAD, CHART_HEIGHT - 2 * CHART_PAD
    points = [{**row, "x": round(CHART_PAD + width * (row["day"] - first).days / ACCURACY_DAYS, 1),
               "y": round(CHART_PAD + height * (1 - row["accuracy"]), 1)}
              for row in rows if row["accuracy"] is not None]
    return {"points": points, "line": " ".join(f"{p['x']},{p['y']}" for p in points),
            "width": CHART_WIDTH, "height": CHART_HEIGHT, "left": CHART_PAD, "right": CHART_WIDTH - CHART_PAD,
            "top": CHART_PAD, "middle": CHART_PAD + height / 2, "bottom": CHART_HEIGHT - CHART_PAD,
            "days": ACCURACY_DAYS}


@customer_service_page
@shows_errors()
def knowledge_base_retrieval(request, kb_id: int):
    """The "Retrieval model" card alone, polled by HTMX while a tuning is queued or running. Once none is,
    the whole page is reloaded (HX-Refresh): the model in use, the trade-off and the threshold changed."""
    knowledge_base = selectors.knowledge_base_get(kb_id=kb_id)
    context = _retrieval_context(request, knowledge_base)
    response = render(request, "frontend/customer_service/_retrieval.html", context)
    if not context["tuning_active"]:
        response["HX-Refresh"] = "true"
    return response


@customer_service_page
@require_POST
@shows_errors("frontend:cs_knowledge_base")
def knowledge_base_tune(request, kb_id: int):
    tuning = services.retrieval_tuning_request(knowledge_base=selectors.knowledge_base_get(kb_id=kb_id),
                                               user=request.user)
    messages.success(request, f"Retrieval tuning v{tuning.version} queued: the page follows its progress.")
    return redirect("frontend:cs_knowledge_base", kb_id=kb_id)


def _posted_threshold(value: str) -> float | None:
    """"default" (None: the calibration's own threshold) or a number; text that is no number is NaN, which
    the service refuses as out of range, so the refusal (and the admin check before it) is the service's."""
    if value.strip().lower() == "default":
        return None
    try:
        return float(value)
    except ValueError:
        return math.nan


@customer_service_page
@require_POST
@shows_errors("frontend:cs_knowledge_base")
def knowledge_base_threshold(request, kb_id: int):
    knowledge_base = services.answer_threshold_set(
        knowledge_base=selectors.knowledge_base_get(kb_id=kb_id), user=request.user,
        threshold=_posted_threshold(request.POST.get("threshold", "")))
    if knowledge_base.answer_threshold is None:
        threshold = services.knowledge_base_calibration(knowledge_base).threshold
        messages.success(request, f"Answer threshold back to the calibration's default, {threshold:g}.")
    else:
        messages.success(request, f"Answer threshold set to {knowledge_base.answer_threshold:g}.")
    return redirect("frontend:cs_knowledge_base", kb_id=kb_id)


@customer_service_page
@require_POST
@upload_limited(setting="CUSTOMER_SERVICE_IMPORT_MAX_BYTES", field="file", back="frontend:cs_knowledge_base")
@shows_errors()
def knowledge_base_import(request, kb_id: int):
    knowledge_base = selectors.knowledge_base_get(kb_id=kb_id)
    upload = request.FILES.get("file")
    if upload is None:
        return knowledge_base_detail(request, kb_id, error="Choose a CSV, JSON or Markdown file to import.")
    try:
        report = services.knowledge_base_import(knowledge_base=knowledge_base, filename=upload.name,
                                                data=importers.read_import(upload))
    except ApplicationError as error:
        return knowledge_base_detail(request, kb_id, error=str(error))
    return knowledge_base_detail(request, kb_id, report=report)


@customer_service_page
@shows_errors()
def knowledge_base_test(request, kb_id: int):
    """The "test retrieval" box: ranked entries with scores for a question (an HTMX partial)."""
    knowledge_base = selectors.knowledge_base_get(kb_id=kb_id)
    question = request.GET.get("q", "").strip()[:settings.CUSTOMER_SERVICE_MAX_QUESTION_CHARS]
    result = selectors.entry_search(knowledge_base=knowledge_base, question=question, k=5) if question else None
    return render(request, "frontend/customer_service/_test_results.html", {"result": result, "question": question})


@customer_service_page
@shows_errors("frontend:cs_entry")
def entry_edit(request, entry_id: int):
    entry = selectors.entry_get(entry_id=entry_id)
    if request.method == "POST":
        services.entry_update(entry=entry, question=request.POST.get("question", ""),
                              answer=request.POST.get("answer", ""),
                              phrasings=request.POST.get("phrasings", "").splitlines(),
                              tags=request.POST.get("tags", "").split(","),
                              enabled=request.POST.get("enabled") == "on")
        messages.success(request, "Entry saved; the index is being updated.")
        return redirect("frontend:cs_knowledge_base", kb_id=entry.knowledge_base_id)
    return render(request, "frontend/customer_service/entry.html", {"entry": entry})
