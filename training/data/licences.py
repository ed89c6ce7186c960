"""Whether a distribution's licence metadata lets its source be trained on: permissive, copyleft,
proprietary or unknown.

Read in the order packaging defines: `License-Expression` (an SPDX expression, PEP 639) when present
decides alone; otherwise the `License` field, where it names a licence, and the `License ::`
classifiers vote, and the most restrictive vote wins (a package that also lists a GPL classifier is
left out). Text that names no licence ("Dual License", a copyright line) does not vote; a package with
no vote at all is unknown. Only "permissive" goes into the corpus.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

PERMISSIVE, UNKNOWN, COPYLEFT, PROPRIETARY = "permissive", "unknown", "copyleft", "proprietary"
SEVERITY = {PERMISSIVE: 0, UNKNOWN: 1, COPYLEFT: 2, PROPRIETARY: 3}  # AND takes the highest, OR the lowest

PERMISSIVE_SPDX = {
    "MIT", "MIT-0", "MIT-CMU", "BSD-2-Clause", "BSD-3-Clause", "0BSD", "Apache-2.0", "PSF-2.0", "Python-2.0",
    "CNRI-Python", "ISC", "Unlicense", "CC0-1.0", "Zlib", "BSL-1.0", "HPND", "AFL-3.0",
}
COPYLEFT_SPDX_PREFIXES = ("GPL-", "LGPL-", "AGPL-", "MPL-", "EPL-", "EUPL-", "CDDL-", "OSL-", "CC-BY-SA-")
PERMISSIVE_NAMES = {  # the License field's free text, normalised by _name_key
    "mit", "mit-0", "bsd", "new bsd", "modified bsd", "simplified bsd", "bsd 3-clause", "3-clause bsd",
    "bsd (3-clause)", "bsd 2-clause", "2-clause bsd", "apache", "apache 2.0", "apache-2.0", "psf", "isc",
    "unlicense", "public domain", "zlib", "0bsd", "cc0",
}
PERMISSIVE_CLASSIFIERS = (
    "MIT License", "MIT No Attribution License", "BSD License", "Zero-Clause BSD", "Apache Software License",
    "Python Software Foundation License", "ISC License", "The Unlicense", "zlib/libpng License",
    "Boost Software License", "Historical Permission Notice and Disclaimer", "Academic Free License",
    "Public Domain", "CC0 1.0 Universal",
)
COPYLEFT_CLASSIFIER_WORDS = ("GNU", "GPL", "Mozilla Public License", "Eclipse Public License",
                             "Common Development and Distribution", "European Union Public Licence",
                             "Open Software License")


@dataclass(frozen=True)
class Licence:
    kind: str  # PERMISSIVE, COPYLEFT, PROPRIETARY or UNKNOWN
    evidence: str  # what the kind was read from, for the manifest


def licence_of(metadata: Message) -> Licence:
    """The licence kind of a distribution's metadata (importlib.metadata's `Distribution.metadata`)."""
    expression = (metadata.get("License-Expression") or "").strip()
    if expression:
        return Licence(spdx_kind(expression), f"License-Expression: {expression}")
    votes = []
    text = (metadata.get("License") or "").strip()
    if text and (kind := license_field_kind(text)):
        votes.append((kind, f"License: {text.splitlines()[0][:80]}"))
    for classifier in metadata.get_all("Classifier") or []:
        if classifier.startswith("License ::") and (kind := classifier_kind(classifier)):
            votes.append((kind, classifier.removeprefix("License :: ")))
    if not votes:
        return Licence(UNKNOWN, "no licence metadata that names a licence")
    kind = max((kind for kind, _ in votes), key=SEVERITY.__getitem__)
    return Licence(kind, "; ".join(evidence for _, evidence in votes))


def spdx_kind(expression: str) -> str:
    """The kind of an SPDX licence expression: AND is as restrictive as its most restrictive side,
    OR as its least; `WITH` an exception keeps the licence's kind; an unknown id is unknown."""
    tokens = re.findall(r"[()]|[^\s()]+", expression)
    kind, rest = _or_expression(tokens)
    return kind if not rest else UNKNOWN


def _or_expression(tokens: list[str]) -> tuple[str, list[str]]:
    kind, tokens = _and_expression(tokens)
    while tokens[:1] and tokens[0].upper() == "OR":
        other, tokens = _and_expression(tokens[1:])
        kind = min(kind, other, key=SEVERITY.__getitem__)
    return kind, tokens


def _and_expression(tokens: list[str]) -> tuple[str, list[str]]:
    kind, tokens = _licence_term(tokens)
    while tokens[:1] and tokens[0].upper() == "AND":
        other, tokens = _licence_term(tokens[1:])
        kind = max(kind, other, key=SEVERITY.__getitem__)
    return kind, tokens


def _licence_term(tokens: list[str]) -> tuple[str, list[str]]:
    if not tokens:
        return UNKNOWN, []
    if tokens[0] == "(":
        kind, tokens = _or_expression(tokens[1:])
        return (kind, tokens[1:]) if tokens[:1] == [")"] else (UNKNOWN, [])
    kind, tokens = spdx_id_kind(tokens[0]), tokens[1:]
    if tokens[:1] and tokens[0].upper() == "WITH":
        tokens = tokens[2:]  # an exception only adds permissions
    return kind, tokens


def spdx_id_kind(licence_id: str) -> str:
    licence_id = licence_id.removesuffix("+")
    if licence_id in PERMISSIVE_SPDX:
        return PERMISSIVE
    if licence_id.upper().startswith(COPYLEFT_SPDX_PREFIXES):
        return COPYLEFT
    return UNKNOWN


def license_field_kind(text: str) -> str | None:
    """The kind the License field names, or None where its text names no licence we know.

    It is an SPDX expression in newer packages ("BSD-3-Clause", "CC0-1.0 OR Apache-2.0"), a name in
    older ones ("MIT License", "Apache 2.0", "MIT, BSD"), sometimes the whole licence text."""
    first_line = text.splitlines()[0]
    if all(token in ("(", ")") or token.upper() in ("AND", "OR", "WITH") or spdx_id_kind(token) != UNKNOWN
           for token in re.findall(r"[()]|[^\s()]+", first_line)):
        return spdx_kind(first_line)
    parts = [_name_key(part) for part in re.split(r",|;|/|\bor\b|\band\b", first_line, flags=re.IGNORECASE)]
    if all(part in PERMISSIVE_NAMES for part in parts):
        return PERMISSIVE
    if any(re.search(r"\b(a?gpl|lgpl|mpl)\b|general public|mozilla", part) for part in parts):
        return COPYLEFT
    return None


def _name_key(name: str) -> str:
    """'The MIT License' -> 'mit', 'Apache Software License 2.0' -> 'apache 2.0'."""
    words = name.lower().replace("licence", "license").split()
    return " ".join(word for word in words if word not in ("the", "license", "software", "version"))


def classifier_kind(classifier: str) -> str | None:
    """The kind a `License ::` classifier names; None for ones that name none ('OSI Approved' alone)."""
    name = classifier.removeprefix("License :: ").removeprefix("OSI Approved :: ")
    if name.startswith(PERMISSIVE_CLASSIFIERS):
        return PERMISSIVE
    if any(word in name for word in COPYLEFT_CLASSIFIER_WORDS):
        return COPYLEFT
    if name == "Other/Proprietary License":
        return PROPRIETARY
    return None
