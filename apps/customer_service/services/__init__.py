"""Writes of the customer-service app."""
from apps.customer_service.services.conversations import (Suggestion, conversation_assign, conversation_create,
                                                          conversation_message_add, conversation_status_set,
                                                          conversation_suggest, conversation_take, message_feedback)
from apps.customer_service.services.knowledge import (ImportReport, entry_create, entry_delete, entry_update,
                                                      knowledge_base_create, knowledge_base_delete,
                                                      knowledge_base_import, knowledge_base_reindex,
                                                      knowledge_base_calibration, knowledge_base_update)
from apps.customer_service.services.retrieval_tuning import answer_threshold_set, retrieval_tuning_request

__all__ = [
    "ImportReport", "Suggestion", "answer_threshold_set", "conversation_assign", "conversation_create",
    "conversation_message_add", "conversation_status_set", "conversation_suggest", "conversation_take",
    "entry_create", "entry_delete", "entry_update", "knowledge_base_calibration", "knowledge_base_create",
    "knowledge_base_delete", "knowledge_base_import", "knowledge_base_reindex", "knowledge_base_update", "message_feedback",
    "retrieval_tuning_request",
]
