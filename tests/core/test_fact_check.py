import time

from apps.core.fact_check import facts, introduces_facts

SOURCE = "Computed differential: Influenza (62%), Common cold (viral URTI) (20%). Urgency: routine."
CONDITIONS = ["Influenza", "Common cold (viral URTI)", "Community-acquired pneumonia", "Sepsis"]


def test_facts_are_numbers_links_and_addresses_without_trailing_punctuation():
    assert facts("Write to help.desk+uk@shop.example.com within 30 days or 2.5 weeks: https://shop.example/r.") == {
        "help.desk+uk@shop.example.com", "30", "2.5", "https://shop.example/r"}


def test_a_rewording_that_keeps_the_facts_passes():
    assert not introduces_facts("Most likely influenza (62%), less likely a common cold (20%); routine.", SOURCE,
                                terms=CONDITIONS)


def test_a_new_number_is_caught_with_or_without_terms():
    assert introduces_facts("Influenza (75%).", SOURCE)
    assert introduces_facts("Influenza (75%).", SOURCE, terms=CONDITIONS)


def test_a_condition_the_source_does_not_name_is_caught_in_any_case():
    assert introduces_facts("Influenza, or possibly SEPSIS (62%).", SOURCE, terms=CONDITIONS)
    assert introduces_facts("Consider community-acquired pneumonia.", SOURCE, terms=CONDITIONS)
    assert not introduces_facts("Consider community-acquired pneumonia.", SOURCE)  # no terms: numbers only


def test_a_term_matches_whole_words_only():
    assert not introduces_facts("Influenza; the patient is septic-looking.", SOURCE, terms=["Sepsis", "Septic shock"])
    assert not introduces_facts("Influenza.", SOURCE, terms=["", "  "])


def test_the_guard_takes_linear_time_on_hostile_text():
    started = time.monotonic()
    for text in ("a" * 1_000_000, "x@" + "a" * 1_000_000, "9" * 1_000_000):
        introduces_facts(text, SOURCE, terms=CONDITIONS)
    assert time.monotonic() - started < 5
