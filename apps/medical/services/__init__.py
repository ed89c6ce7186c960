"""Writes of the medical app: the knowledge base, models and the activation gate (`training`), federated
training jobs (`federated`), cases (`cases`), results (`results`), the narrative (`narratives`) and the
audit log (`audit`). Reads are in `selectors`."""
from apps.medical.services.audit import audit_event_create
from apps.medical.services.cases import (NOTE_MAX_CHARS, case_answer, case_create, case_share, case_summaries_export,
                                         case_unshare)
from apps.medical.services.federated import (FederatedJobBusy, federated_job_run, federated_job_start,
                                             federated_model_register)
from apps.medical.services.narratives import diagnosis_narrative
from apps.medical.services.results import (diagnosis_compute, diagnosis_explain, diagnosis_score,
                                           note_findings_propose)
from apps.medical.services.training import (diagnosis_model_activate, diagnosis_model_gate, diagnosis_model_register,
                                            diagnosis_model_train, knowledge_base_import)

__all__ = ["NOTE_MAX_CHARS", "FederatedJobBusy", "audit_event_create", "case_answer", "case_create", "case_share",
           "case_summaries_export", "case_unshare", "diagnosis_compute", "diagnosis_explain",
           "diagnosis_model_activate", "diagnosis_model_gate", "diagnosis_model_register", "diagnosis_model_train",
           "diagnosis_narrative", "diagnosis_score",
           "federated_job_run", "federated_job_start", "federated_model_register",
           "knowledge_base_import", "note_findings_propose"]
