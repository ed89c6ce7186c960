"""The fact guard: whether a model's wording of a text brings in a fact that text does not hold.

Every text the model rewords has a deterministic source the suite computed (a knowledge-base
answer, a diagnosis summary); the wording is used only when this guard finds nothing new in it.
Customer service checks numbers, links and addresses; medical adds the names of the conditions its
knowledge base knows, so a narrative cannot name a diagnosis the computed differential does not.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

# Linear time on any text: an address starts only where a run of address characters starts, and the
# possessive `++` never gives characters back, so no run is scanned twice.
FACT = re.compile(r"(?<![\w.+-])[\w.+-]++@[\w-]++\.[\w.]+|https?://\S+|\d+(?:[.,]\d+)?")
WORD = re.compile(r"\w+")


def facts(text: str) -> set[str]:
    """The numbers, links and e-mail addresses in `text`, without trailing punctuation."""
    return {fact.rstrip(".,;:!?)") for fact in FACT.findall(text)}


def _words(text: str) -> str:
    """`text` as lower-case words between single spaces, padded, so a term matches whole words only."""
    return f" {' '.join(WORD.findall(text.casefold()))} "


def introduces_facts(text: str, source: str, *, terms: Iterable[str] = ()) -> bool:
    """Whether `text` holds a number, link or address that `source` does not, or names one of
    `terms` (whole words, any case) that `source` does not name."""
    if facts(text) - facts(source):
        return True
    text_words, source_words = _words(text), _words(source)
    return any(term in text_words and term not in source_words
               for term in map(_words, terms) if term.strip())
