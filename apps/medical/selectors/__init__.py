"""Reads of the medical app: who may see a case (`cases`), the active engine and computed results
(`engine`), the knowledge base (`knowledge`), federated training jobs (`jobs`)."""
from apps.medical.selectors.cases import (BREAK_GLASS, audit_event_list, case_detail, case_fhir_bundle,
                                          case_get_for_user, case_list_for_user, case_result_latest,
                                          case_summary_training_rows, result_narrative)
from apps.medical.selectors.engine import DISCLAIMER, NoActiveModel, active_engine, choice_token, diagnosis_result
from apps.medical.selectors.jobs import federated_job_list, federated_patients_files, patients_dir
from apps.medical.selectors.knowledge import (condition_infos, condition_names, evidence_options, evidence_search,
                                              evidence_specs, knowledge_base_sources, note_findings)

__all__ = ["BREAK_GLASS", "DISCLAIMER", "NoActiveModel", "active_engine", "audit_event_list", "case_detail",
           "case_fhir_bundle", "case_get_for_user", "case_list_for_user", "case_result_latest",
           "case_summary_training_rows", "choice_token", "condition_infos", "condition_names", "diagnosis_result",
           "evidence_options", "evidence_search", "evidence_specs", "federated_job_list", "federated_patients_files",
           "knowledge_base_sources", "note_findings", "patients_dir", "result_narrative"]
