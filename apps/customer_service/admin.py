"""The Django admin shows customer-service data read-only: every change goes through the services
(the name and entry rules, reindexing, who may change a conversation), which the admin's forms would
bypass. Knowledge bases and entries are edited in the console or the API."""
from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin
from apps.customer_service.models import Conversation, Entry, KnowledgeBase, Message


@admin.register(KnowledgeBase)
class KnowledgeBaseAdmin(ReadOnlyAdmin):
    list_display = ("name", "index_status", "index_version", "index_dense", "indexed_at", "updated_at")
    list_filter = ("index_status",)
    search_fields = ("name",)


@admin.register(Entry)
class EntryAdmin(ReadOnlyAdmin):
    list_display = ("question", "knowledge_base", "enabled", "source", "updated_at")
    list_filter = ("knowledge_base", "enabled")
    search_fields = ("question", "answer")
    exclude = ("content_hash",)


class MessageInline(admin.TabularInline):
    model = Message
    fields = ("role", "text", "confidence", "worded_by", "feedback", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyAdmin):
    list_display = ("id", "customer_name", "knowledge_base", "status", "assignee", "updated_at")
    list_filter = ("status", "knowledge_base")
    search_fields = ("customer_name",)
    inlines = [MessageInline]


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ("id", "conversation", "role", "feedback", "worded_by", "created_at")
    list_filter = ("role", "feedback")
