import pytest

from apps.medical.deidentify import deidentify


@pytest.mark.parametrize("text,expected", [
    ("Mr. John Smith, born 12/03/1961.", "[NAME], born [DATE]."),
    ("Patient Maria Lopez reports chest pain since March 3rd 2024.", "Patient [NAME] reports chest pain since [DATE]."),
    ("Call +44 20 7946 0958 or 020 7946 0958.", "Call [PHONE] or [PHONE]."),
    ("Lives at 221 Baker Street, NW1 6XE.", "Lives at [ADDRESS], [POSTCODE]."),
    ("MRN 12345678, SSN 123-45-6789.", "MRN [ID], SSN [ID]."),
    ("Write to maria.lopez@example.com.", "Write to [EMAIL]."),
    ("Seen by Dr Okafor; her name is Anna Berg.", "Seen by [NAME]; her name is [NAME]."),
])
def test_identifiers_are_replaced(text, expected):
    assert deidentify(text) == expected


def test_clinical_facts_stay():
    text = "Pain 7/10 for 3 days, worse on exertion, BP 150/90, temperature 38.5 C."

    assert deidentify(text) == text
