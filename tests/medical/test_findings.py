"""Finding search in clinicians' words and note proposals, on the DDXPlus knowledge base (no database)."""
import json

import pytest

from apps.medical.findings import finding_index, note_findings
from tests.medical.conftest import DDXPLUS


class KnowledgeBaseEvidence:
    """An evidence of release_evidences.json in the shape the Evidence model has."""

    def __init__(self, code: str, row: dict):
        self.code, self.question_en, self.data_type = code, row["question_en"], row["data_type"]
        self.possible_values, self.meanings = row["possible-values"], row["value_meaning"]

    def value_label(self, value) -> str:
        return (self.meanings.get(str(value)) or {}).get("en") or str(value)


@pytest.fixture(scope="module")
def evidences():
    rows = json.loads((DDXPLUS / "release_evidences.json").read_text())
    return [KnowledgeBaseEvidence(code, row) for code, row in rows.items()]


# A clinician's phrasing → the tokens (or codes) that are the intended finding.
PHRASINGS = [
    ("chest pain", {"E_55_@_V_101", "E_55_@_V_29", "E_14"}),
    ("coughing blood", {"E_45"}), ("cough with blood", {"E_45"}), ("hemoptysis", {"E_45"}),
    ("can't catch breath", {"E_66"}), ("short of breath", {"E_66"}), ("dyspnea", {"E_66"}), ("SOB", {"E_66"}),
    ("breathless on minimal exertion", {"E_64"}), ("fever", {"E_91"}), ("febrile", {"E_91"}),
    ("chills", {"E_94"}), ("night sweats", {"E_50"}), ("diaphoresis", {"E_50"}), ("palpitations", {"E_155"}),
    ("fainted", {"E_159"}), ("lightheaded", {"E_76", "E_82"}), ("nausea", {"E_148"}), ("vomiting", {"E_211"}),
    ("vomiting blood", {"E_210"}), ("black stools", {"E_140"}), ("blood in stool", {"E_179"}),
    ("diarrhea", {"E_51"}), ("heartburn", {"E_173"}), ("weight loss", {"E_162", "E_174"}),
    ("sore throat", {"E_97"}), ("trouble swallowing", {"E_65"}), ("hoarse voice", {"E_212"}),
    ("runny nose", {"E_181"}), ("loss of smell", {"E_103"}), ("wheezing", {"E_214", "E_112"}),
    ("pleuritic chest pain", {"E_220"}), ("swollen glands", {"E_9"}), ("skin rash", {"E_129"}),
    ("slurred speech", {"E_63"}), ("double vision", {"E_52"}), ("pain in the epigastric region", {"E_55_@_V_197"}),
    ("pain radiating to the left shoulder", {"E_57_@_V_195"}), ("smoker", {"E_79"}), ("recent surgery", {"E_196"}),
]


def _hit(result: dict, intended: set[str]) -> bool:
    return result["token"] in intended or result["code"] in intended


def test_forty_clinical_phrasings_find_the_intended_finding_in_the_top_three_for_at_least_90_percent(evidences):
    index = finding_index(evidences)
    hits = [any(_hit(r, intended) for r in index.search(phrase, limit=3)) for phrase, intended in PHRASINGS]

    assert len(PHRASINGS) == 40
    assert sum(hits) / len(hits) >= 0.9, [p for (p, _), hit in zip(PHRASINGS, hits) if not hit]


def test_chest_pain_finds_the_pain_location_value_and_says_which_value_matched(evidences):
    results = finding_index(evidences).search("chest pain", limit=5)

    chest = [r for r in results if r["code"] == "E_55"]
    assert chest and chest[0]["matched_value"]["label"] in {"upper chest", "lower chest"}
    assert chest[0]["token"] == f"E_55_@_{chest[0]['matched_value']['value']}"


def test_a_side_picks_the_sided_value(evidences):
    results = finding_index(evidences).search("left arm pain", limit=1)

    assert results[0]["token"] == "E_55_@_V_31" and results[0]["matched_value"]["label"] == "biceps(L)"


def _statuses(evidences, note: str) -> dict[str, str]:
    return {p["token"]: p["status"] for p in note_findings(evidences, note)}


@pytest.mark.parametrize("note,expected", [
    ("Denies fever.", {"E_91": "absent"}),
    ("No chest pain.", {"E_53": "absent", "E_55_@_V_101": "absent"}),
    ("Patient denies fever, chills or vomiting.", {"E_91": "absent", "E_94": "absent", "E_211": "absent"}),
    ("Cough, no fever.", {"E_201": "present", "E_91": "absent"}),
    ("No fever but reports cough.", {"E_91": "absent", "E_201": "present"}),
    ("Fever denied.", {"E_91": "absent"}),
    ("Afebrile, coughing.", {"E_91": "absent", "E_201": "present"}),
    ("Possible fever.", {"E_91": "uncertain"}),
    ("?PE", {}),
    ("possible pneumonia", {}),
    ("Possible fever, cough with blood.", {"E_91": "uncertain", "E_45": "present"}),
    ("Short of breath and sweating. Pain radiating to the left arm.",
     {"E_66": "present", "E_50": "present", "E_53": "present", "E_57_@_V_31": "present"}),
])
def test_note_findings_with_negation_and_uncertainty(evidences, note, expected):
    assert _statuses(evidences, note) == expected


def test_each_proposal_carries_its_span_of_the_note(evidences):
    note = "58M, denies fever; coughing up blood since Monday."
    proposals = note_findings(evidences, note)

    assert [(p["token"], p["status"], p["text"]) for p in proposals] == [
        ("E_91", "absent", "fever"), ("E_45", "present", "coughing up blood")]
    assert all(note[p["start"]:p["end"]] == p["text"] for p in proposals)
