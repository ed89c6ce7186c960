from django.urls import path

from apps.customer_service import apis

app_name = "customer_service"

urlpatterns = [
    path("v1/status", apis.CustomerServiceStatusApi.as_view(), name="status"),
    path("v1/knowledge-bases/", apis.KnowledgeBaseListCreateApi.as_view(), name="knowledge-bases"),
    path("v1/knowledge-bases/<int:kb_id>", apis.KnowledgeBaseDetailApi.as_view(), name="knowledge-base"),
    path("v1/knowledge-bases/<int:kb_id>/import", apis.KnowledgeBaseImportApi.as_view(), name="import"),
    path("v1/knowledge-bases/<int:kb_id>/export", apis.KnowledgeBaseExportApi.as_view(), name="export"),
    path("v1/knowledge-bases/<int:kb_id>/entries", apis.EntryListCreateApi.as_view(), name="entries"),
    path("v1/knowledge-bases/<int:kb_id>/tunings", apis.RetrievalTuningListCreateApi.as_view(), name="tunings"),
    path("v1/knowledge-bases/<int:kb_id>/accuracy", apis.SuggestionAccuracyApi.as_view(), name="accuracy"),
    path("v1/tunings/<int:tuning_id>", apis.RetrievalTuningDetailApi.as_view(), name="tuning"),
    path("v1/entries/<int:entry_id>", apis.EntryDetailApi.as_view(), name="entry"),
    path("v1/search", apis.SearchApi.as_view(), name="search"),
    path("v1/dify/retrieval", apis.DifyRetrievalApi.as_view(), name="dify-retrieval"),
    path("v1/conversations/", apis.ConversationListCreateApi.as_view(), name="conversations"),
    path("v1/conversations/<int:conversation_id>", apis.ConversationDetailApi.as_view(), name="conversation"),
    path("v1/conversations/<int:conversation_id>/take", apis.ConversationTakeApi.as_view(), name="take"),
    path("v1/conversations/<int:conversation_id>/assign", apis.ConversationAssignApi.as_view(), name="assign"),
    path("v1/conversations/<int:conversation_id>/messages", apis.ConversationMessageCreateApi.as_view(),
         name="messages"),
    path("v1/conversations/<int:conversation_id>/suggest", apis.ConversationSuggestApi.as_view(), name="suggest"),
    path("v1/conversations/<int:conversation_id>/status", apis.ConversationStatusApi.as_view(), name="status-set"),
    path("v1/messages/<int:message_id>/feedback", apis.MessageFeedbackApi.as_view(), name="feedback"),
    path("v1/stats", apis.SuggestionStatsApi.as_view(), name="stats"),
]
