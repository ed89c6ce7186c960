"""Console pages of the customer-service area: conversations with streamed suggestions, knowledge bases."""
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.accounts.permissions import area_required
from apps.accounts.roles import Area
from apps.customer_service import selectors, services
from apps.customer_service.importers import ImportFormatError
from apps.customer_service.models import Conversation, Entry, KnowledgeBase, Message

customer_service_page = area_required(Area.CUSTOMER_SERVICE)


@customer_service_page
def conversation_list(request):
    status = request.GET.get("status") or None
    return render(request, "frontend/customer_service/conversations.html", {
        "conversations": selectors.conversation_list(status=status), "status": status or "",
        "statuses": Conversation.Status.choices, "knowledge_bases": KnowledgeBase.objects.all(),
        "stats": selectors.suggestion_stats()})


@customer_service_page
@require_POST
def conversation_start(request):
    knowledge_base = get_object_or_404(KnowledgeBase, id=request.POST.get("knowledge_base") or 0)
    text = request.POST.get("text", "").strip()
    conversation = services.conversation_create(knowledge_base=knowledge_base, agent=request.user,
                                                customer_name=request.POST.get("customer_name", "").strip()[:200])
    if text:
        services.conversation_message_add(conversation=conversation, role=Message.Role.CUSTOMER, text=text[:1000])
    return redirect("frontend:cs_conversation", conversation_id=conversation.id)


@customer_service_page
def conversation_detail(request, conversation_id: int):
    conversation = get_object_or_404(Conversation.objects.select_related("knowledge_base"), id=conversation_id)
    return render(request, "frontend/customer_service/conversation.html", _conversation_context(conversation))


@customer_service_page
def conversation_messages(request, conversation_id: int):
    """The message list alone, refreshed in place by HTMX after each action."""
    conversation = get_object_or_404(Conversation, id=conversation_id)
    return render(request, "frontend/customer_service/_messages.html", _conversation_context(conversation))


def _conversation_context(conversation: Conversation) -> dict:
    entries = Entry.objects.in_bulk([c["entry_id"] for m in conversation.messages.all() for c in m.citations])
    # not "messages": the base template shows Django's flash messages under that name
    return {"conversation": conversation, "conversation_messages": conversation.messages.all(),
            "cited_entries": entries}


@customer_service_page
@require_POST
def conversation_message(request, conversation_id: int):
    conversation = get_object_or_404(Conversation, id=conversation_id)
    role = request.POST.get("role") if request.POST.get("role") in (Message.Role.CUSTOMER, Message.Role.AGENT) else None
    text = request.POST.get("text", "").strip()
    if role and text:
        services.conversation_message_add(conversation=conversation, role=role, text=text[:1000])
    return redirect("frontend:cs_conversation", conversation_id=conversation.id)


@customer_service_page
@require_POST
def conversation_status(request, conversation_id: int):
    conversation = get_object_or_404(Conversation, id=conversation_id)
    if request.POST.get("status") in Conversation.Status.values:
        services.conversation_status_set(conversation=conversation, status=request.POST["status"],
                                         reason=request.POST.get("reason", "Flagged by the agent."))
    return redirect("frontend:cs_conversation", conversation_id=conversation.id)


@customer_service_page
def knowledge_bases(request):
    return render(request, "frontend/customer_service/knowledge_bases.html",
                  {"knowledge_bases": KnowledgeBase.objects.all()})


@customer_service_page
@require_POST
def knowledge_base_create(request):
    name = request.POST.get("name", "").strip()[:200]
    if not name or KnowledgeBase.objects.filter(name=name).exists():
        messages.error(request, "Give the knowledge base a name no other one has.")
        return redirect("frontend:cs_knowledge_bases")
    knowledge_base = services.knowledge_base_create(name=name)
    return redirect("frontend:cs_knowledge_base", kb_id=knowledge_base.id)


@customer_service_page
def knowledge_base_detail(request, kb_id: int, report=None, error: str = ""):
    knowledge_base = get_object_or_404(KnowledgeBase, id=kb_id)
    return render(request, "frontend/customer_service/knowledge_base.html", {
        "knowledge_base": knowledge_base, "entries": knowledge_base.entries.all(), "report": report,
        "import_error": error})


@customer_service_page
@require_POST
def knowledge_base_import(request, kb_id: int):
    knowledge_base = get_object_or_404(KnowledgeBase, id=kb_id)
    upload = request.FILES.get("file")
    if upload is None:
        return knowledge_base_detail(request, kb_id, error="Choose a CSV, JSON or Markdown file to import.")
    try:
        report = services.knowledge_base_import(knowledge_base=knowledge_base, filename=upload.name,
                                                data=upload.read())
    except ImportFormatError as exc:
        return knowledge_base_detail(request, kb_id, error=str(exc))
    return knowledge_base_detail(request, kb_id, report=report)


@customer_service_page
def knowledge_base_test(request, kb_id: int):
    """The "test retrieval" box: ranked entries with scores for a question (an HTMX partial)."""
    knowledge_base = get_object_or_404(KnowledgeBase, id=kb_id)
    question = request.GET.get("q", "").strip()[:1000]
    result = selectors.entry_search(knowledge_base=knowledge_base, question=question, k=5) if question else None
    return render(request, "frontend/customer_service/_test_results.html", {"result": result, "question": question})


@customer_service_page
def entry_edit(request, entry_id: int):
    entry = get_object_or_404(Entry, id=entry_id)
    if request.method == "POST":
        question, answer = request.POST.get("question", "").strip(), request.POST.get("answer", "").strip()
        if not question or not answer:
            messages.error(request, "An entry needs a question and an answer.")
        else:
            services.entry_update(entry=entry, question=question[:1000], answer=answer[:10_000],
                                  phrasings=request.POST.get("phrasings", "").splitlines(),
                                  tags=[t for t in request.POST.get("tags", "").split(",")],
                                  enabled=request.POST.get("enabled") == "on")
            messages.success(request, "Entry saved; the index is being updated.")
            return redirect("frontend:cs_knowledge_base", kb_id=entry.knowledge_base_id)
    return render(request, "frontend/customer_service/entry.html", {"entry": entry})
