"""What every corpus source yields (a Document) and what reading the corpus left out (a CorpusReport)."""
from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Document:
    source: str
    name: str  # where it came from, for the manifest and debugging
    text: str
    is_code: bool  # code gets the fill-in-the-middle transformation

    @property
    def digest(self) -> str:
        return hashlib.sha256(" ".join(self.text.split()).encode()).hexdigest()


@dataclass
class CorpusReport:
    """Filled while the corpus is read, for the data manifest."""

    duplicates: Counter = field(default_factory=Counter)  # source -> documents dropped as exact duplicates
    packages: dict[str, dict] = field(default_factory=dict)  # distribution -> version, licence, files, bytes
    packages_left_out: dict[str, str] = field(default_factory=dict)  # distribution -> why it is not in the corpus
    package_files_left_out: Counter = field(default_factory=Counter)  # reason -> files of kept packages left out
    package_byte_cap: int = 0  # bytes any one package could give, after sharing the total budget


def looks_generated(text: str) -> bool:
    """A file that says in its first lines that a tool wrote it (tables, protobuf modules, ...)."""
    return "generated" in text[:300].lower()
