"""A case as a FHIR R4 Bundle (type "collection"), for a clinical system to import.

- a Patient stub: gender only (no identifier, no name, no birth date: the suite records an age, and
  an age turned into a birth year would be a made-up fact that narrows who the patient is);
- an Observation per finding: present ones valueBoolean true (interpretation POS), absent ones
  valueBoolean false (interpretation NEG), a finding with a value (a pain location, a scale) with
  the value as a coded concept or an integer; one asked and answered "don't know" with no value and
  dataAbsentReason asked-unknown (HL7's "asked but unknown", a kind of "unknown");
- a Condition per condition of the latest differential, verificationStatus "differential", coded in
  ICD-10 (http://hl7.org/fhir/sid/icd-10, as DDXPlus gives it: uppercased, "J17, J18" as two codings),
  with the model's probabilities as extensions under the suite's own namespace.

Findings are coded in the suite's own code system (the DDXPlus evidence codes), since DDXPlus maps
them to no standard terminology. Django-free: the caller passes the case's facts.
"""
from __future__ import annotations

import uuid

from apps.medical.features import split_token

NAMESPACE = "https://moe-suite.invalid/fhir"
PROBABILITY_URL = f"{NAMESPACE}/probability"  # the pathology head's probability of the condition
DIFFERENTIAL_PROBABILITY_URL = f"{NAMESPACE}/differential-probability"  # the differential head's
EVIDENCE_SYSTEM = f"{NAMESPACE}/ddxplus-evidence"
VALUE_SYSTEM = f"{NAMESPACE}/ddxplus-value"
ICD10_SYSTEM = "http://hl7.org/fhir/sid/icd-10"
VERIFICATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-category"
INTERPRETATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
DATA_ABSENT_SYSTEM = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
GENDERS = {"M": "male", "F": "female"}
_URN = uuid.UUID("5b0c7a52-4a57-4c6e-9f0e-2f6c8d1f0a11")  # names this suite's resources (uuid5 below)


def _full_url(case_id: int, name: str) -> str:
    """A stable urn:uuid per case and resource: the same export twice has the same references."""
    return f"urn:uuid:{uuid.uuid5(_URN, f'case/{case_id}/{name}')}"


def icd10_codings(icd10: str, display: str) -> list[dict]:
    return [{"system": ICD10_SYSTEM, "code": code.strip().upper(), "display": display}
            for code in icd10.split(",") if code.strip()]


def _observation(token: str, present: bool | None, labels: dict[str, str], patient: str,
                 questions: dict[str, str]) -> dict:
    """The Observation of a finding present (True), absent (False) or answered "don't know" (None)."""
    code, value = split_token(token)
    question = questions.get(code, code)
    observation = {"resourceType": "Observation", "status": "final",
                   "code": {"coding": [{"system": EVIDENCE_SYSTEM, "code": code, "display": question}],
                            "text": question},
                   "subject": {"reference": patient}}
    if present is None:
        observation["dataAbsentReason"] = {"coding": [{"system": DATA_ABSENT_SYSTEM, "code": "asked-unknown",
                                                       "display": "Asked But Unknown"}],
                                           "text": "Don't know"}
    elif value is None:
        observation["valueBoolean"] = present
        observation["interpretation"] = [{"coding": [{"system": INTERPRETATION_SYSTEM,
                                                      "code": "POS" if present else "NEG",
                                                      "display": "Positive" if present else "Negative"}]}]
    elif value.isdigit():
        observation["valueInteger"] = int(value)
    else:
        label = labels.get(token, token).split(" — ")[-1]
        observation["valueCodeableConcept"] = {"coding": [{"system": VALUE_SYSTEM, "code": value, "display": label}],
                                               "text": label}
        if not present:  # "not at this location"
            observation["interpretation"] = [{"coding": [{"system": INTERPRETATION_SYSTEM, "code": "NEG",
                                                          "display": "Negative"}]}]
    return observation


def _condition(row: dict, patient: str) -> dict:
    extension = [{"url": PROBABILITY_URL, "valueDecimal": row["probability"]}]
    if "differential_probability" in row:
        extension.append({"url": DIFFERENTIAL_PROBABILITY_URL, "valueDecimal": row["differential_probability"]})
    return {"resourceType": "Condition", "extension": extension,
            "verificationStatus": {"coding": [{"system": VERIFICATION_SYSTEM, "code": "differential",
                                               "display": "Differential"}]},
            "category": [{"coding": [{"system": CATEGORY_SYSTEM, "code": "encounter-diagnosis"}]}],
            "code": {"coding": icd10_codings(row["icd10"], row["name"]), "text": row["name"]},
            "subject": {"reference": patient}}


def case_bundle(*, case_id: int, sex: str, evidence: list[str], negatives: list[str], conditions: list[dict],
                labels: dict[str, str], questions: dict[str, str], timestamp: str, unknown: list[str] = ()) -> dict:
    """The Bundle of one case: `conditions` from its latest result, `labels` token → text, `questions`
    evidence code → question text, `timestamp` ISO 8601 with a time zone, `unknown` the codes answered
    "don't know"."""
    patient = _full_url(case_id, "patient")
    resources = [(patient, {"resourceType": "Patient", **({"gender": GENDERS[sex]} if sex in GENDERS else {})})]
    findings = ([(token, True) for token in evidence] + [(token, False) for token in negatives]
                + [(code, None) for code in unknown])
    resources += [(_full_url(case_id, f"observation/{token}/{'unknown' if present is None else present}"),
                   _observation(token, present, labels, patient, questions)) for token, present in findings]
    resources += [(_full_url(case_id, f"condition/{row['name']}"), _condition(row, patient)) for row in conditions]
    return {"resourceType": "Bundle", "type": "collection", "timestamp": timestamp,
            "entry": [{"fullUrl": url, "resource": resource} for url, resource in resources]}
