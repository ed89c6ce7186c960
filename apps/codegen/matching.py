"""Repository matches: where else the text before the cursor occurs, and what followed it there.

A `MatchIndex` holds a repository's files as one stream of code tokens (words, single punctuation
characters and line ends) and a suffix array over that stream read backwards, sorted by its first
MAX_MATCH tokens. The longest suffix of the cursor's prefix found in the stream is then a run of
binary searches, one per token of the match; each occurrence's continuation is the rest of its line
(after a line end: the next line, without its indentation). Measured on Django (1.2M tokens), against a
hashed n-gram table per order: the suffix array costs 8 bytes a token whatever the match length, where
the table grows with each order kept; building it is MAX_MATCH.bit_length() numpy sorts.

A repository's index is a `LayeredMatchIndex`: a base over every file and a delta over the files changed or
added since, the base's copies of those and of deleted files masked; a reindex rebuilds only the delta
(the base's files are linked into the new index folder) until the delta outgrows MERGE_SHARE of the base.

Bounded: at most MAX_TOKENS tokens of a repository (files past that are left out of the matches) and
MAX_MATCH tokens of a match; a lookup reads at most MAX_OCCURRENCES occurrences.
"""
from __future__ import annotations

import bisect
import hashlib
import json
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TOKEN = re.compile(r"\w+|[^\w\s]|\n")
MAX_TOKENS = 4_000_000  # per repository (Django's own source is 1.2M)
MAX_SOURCE_CHARS = 40_000_000  # the indexing job hands the match index at most this much text
MAX_MATCH = 32  # tokens compared; a longer match counts as this long
MAX_OCCURRENCES = 64  # occurrences of the longest match read per lookup
QUERY_CHARS = 2_000  # the end of the prefix that is looked up
NEWLINE = "\n"
TEXT_FILE, ARRAYS_FILE, META_FILE = "match_text.txt", "match_arrays.npz", "match_meta.json"  # a saved MatchIndex


@dataclass(frozen=True)
class Continuation:
    text: str  # what completes the cursor's line
    match_tokens: int  # tokens before the cursor that match where it was found
    count: int  # occurrences with this continuation, among those read
    filepath: str  # one file it was found in ("" for earlier in the same file)


@dataclass
class MatchIndex:
    text: str  # every file's text, concatenated
    token_ids: np.ndarray  # (tokens,) int32, the stream's token ids
    token_ends: np.ndarray  # (tokens,) int64, the character offset in `text` where each token ends
    suffixes: np.ndarray  # (tokens,) int32, reversed-stream positions sorted by their first MAX_MATCH tokens
    file_starts: np.ndarray  # (files,) int64, the first token of each file
    filepaths: list[str]
    vocabulary: dict[str, int]

    @classmethod
    def build(cls, sources: list[tuple[str, str]]) -> MatchIndex:
        """The index of `sources` ((path, text) pairs), within MAX_TOKENS."""
        vocabulary: dict[str, int] = {}
        ids: list[int] = []
        ends: list[int] = []
        starts: list[int] = []
        paths: list[str] = []
        parts: list[str] = []
        offset = 0
        for path, source in sources:
            tokens = list(TOKEN.finditer(source))
            if len(ids) + len(tokens) > MAX_TOKENS:
                break
            starts.append(len(ids))
            paths.append(path)
            ids += [vocabulary.setdefault(token.group(), len(vocabulary)) for token in tokens]
            ends += [offset + token.end() for token in tokens]
            parts.append(source + NEWLINE)
            offset += len(source) + 1
        token_ids = np.asarray(ids, dtype=np.int32)
        return cls("".join(parts), token_ids, np.asarray(ends, dtype=np.int64), _suffix_array(token_ids[::-1]),
                   np.asarray(starts, dtype=np.int64), paths, vocabulary)

    def save(self, directory: Path) -> None:
        (directory / TEXT_FILE).write_text(self.text)
        np.savez(directory / ARRAYS_FILE, token_ids=self.token_ids, token_ends=self.token_ends,
                 suffixes=self.suffixes, file_starts=self.file_starts)
        (directory / META_FILE).write_text(json.dumps({"filepaths": self.filepaths,
                                                       "vocabulary": list(self.vocabulary)}))

    @classmethod
    def load(cls, directory: Path) -> MatchIndex:
        arrays = np.load(directory / ARRAYS_FILE)
        meta = json.loads((directory / META_FILE).read_text())
        return cls((directory / TEXT_FILE).read_text(), arrays["token_ids"], arrays["token_ends"],
                   arrays["suffixes"], arrays["file_starts"], meta["filepaths"],
                   {token: index for index, token in enumerate(meta["vocabulary"])})

    def continuations(self, prefix: str, *, exclude_filepath: str = "",
                      masked: frozenset[str] = frozenset()) -> list[Continuation]:
        """The continuations of the longest suffix of `prefix` found outside `exclude_filepath` (the file
        being edited: its copy in the index may differ from the editor's) and the `masked` files (changed
        or deleted since this index was built), most frequent first."""
        query = _Query.of(prefix)
        if query is None:
            return []
        reversed_query = [self.vocabulary.get(token, -1) for token in reversed(query.tokens[-MAX_MATCH:])]
        ranges = self._ranges(reversed_query)
        left_out = masked | {exclude_filepath} if exclude_filepath else masked
        excluded = {index for index, path in enumerate(self.filepaths) if path in left_out}
        for length, (low, high) in reversed(list(enumerate(ranges, start=1))):
            found = self._read(low, high, length, query, excluded)
            if found:
                return found
        return []

    def _ranges(self, reversed_query: list[int]) -> list[tuple[int, int]]:
        """For each match length l, the suffix-array range whose first l tokens equal the query's."""
        stream = self.token_ids[::-1]
        size = len(stream)
        ranges: list[tuple[int, int]] = []
        low, high = 0, len(self.suffixes)
        for depth, token in enumerate(reversed_query):
            if token < 0:
                break

            def key(index: int, depth: int = depth) -> int:
                position = int(self.suffixes[index]) + depth
                return int(stream[position]) if position < size else -1

            low = bisect.bisect_left(range(len(self.suffixes)), token, low, high, key=key)
            high = bisect.bisect_right(range(len(self.suffixes)), token, low, high, key=key)
            if low == high:
                break
            ranges.append((low, high))
        return ranges

    def _read(self, low: int, high: int, length: int, query: _Query, excluded: set[int]) -> list[Continuation]:
        found = []
        size = len(self.token_ids)
        for index in range(low, min(high, low + MAX_OCCURRENCES)):
            last = size - 1 - int(self.suffixes[index])  # the forward position of the match's last token
            file = int(np.searchsorted(self.file_starts, last, side="right")) - 1
            if file in excluded:
                continue
            text = query.complete(_rest_of_line(self.text, int(self.token_ends[last])))
            if text:
                found.append((text, 1, self.filepaths[file]))
        return _tallied(found, length)


def _tallied(found: list[tuple[str, int, str]], match_tokens: int) -> list[Continuation]:
    """One continuation per text of `found` ((text, count, filepath) triples): its counts summed, the first
    file it was found in, most frequent first (ties in the order found)."""
    counts: Counter[str] = Counter()
    where: dict[str, str] = {}
    for text, count, filepath in found:
        counts[text] += count
        where.setdefault(text, filepath)
    return [Continuation(text, match_tokens, count, where[text]) for text, count in counts.most_common()]


def same_file_continuations(prefix: str) -> list[Continuation]:
    """Continuations found earlier in the text before the cursor itself."""
    window = prefix[-QUERY_CHARS * 4:]
    return [Continuation(c.text, c.match_tokens, c.count, "")
            for c in MatchIndex.build([("", window)]).continuations(window)]


@dataclass(frozen=True)
class _Query:
    tokens: list[str]  # complete tokens before the cursor (a word the cursor is in is left out)
    trailing: str  # the text after the last of them: whitespace, then the start of the cursor's word

    @classmethod
    def of(cls, prefix: str) -> _Query | None:
        matches = list(TOKEN.finditer(prefix[-QUERY_CHARS:]))
        tail = prefix[-QUERY_CHARS:]
        if matches and matches[-1].end() == len(tail) and re.fullmatch(r"\w+", matches[-1].group()):
            matches.pop()  # the cursor is in (or just after) a word: what follows must complete it
        if not matches:
            return None
        return cls([m.group() for m in matches], tail[matches[-1].end():])

    def complete(self, rest: str) -> str:
        """The part of `rest` (what followed an occurrence) that continues the cursor's line, or ""."""
        word = self.trailing.lstrip()
        leading = self.trailing[:len(self.trailing) - len(word)]
        body = rest.lstrip()
        if not body.startswith(word):
            return ""
        completion = body[len(word):]
        if not leading and not word:
            completion = rest[:len(rest) - len(body)] + completion  # keep the occurrence's spacing
        return completion.rstrip()


def _rest_of_line(text: str, start: int) -> str:
    """From `start` to the end of its line (after a line end token: the whole next line)."""
    end = text.find(NEWLINE, start)
    return text[start:end if end >= 0 else len(text)]


def _suffix_array(stream: np.ndarray) -> np.ndarray:
    """Positions of `stream` sorted by their first MAX_MATCH tokens (prefix doubling; -1 past the end)."""
    size = len(stream)
    if size == 0:
        return np.zeros(0, dtype=np.int32)
    rank = stream.astype(np.int64)
    step = 1
    while step < MAX_MATCH:
        following = np.full(size, -1, dtype=np.int64)
        if step < size:
            following[:size - step] = rank[step:]
        order = np.lexsort((following, rank))
        keys = np.stack([rank[order], following[order]])
        changed = np.concatenate([[True], np.any(keys[:, 1:] != keys[:, :-1], axis=0)])
        new_rank = np.empty(size, dtype=np.int64)
        new_rank[order] = np.cumsum(changed) - 1
        rank = new_rank
        step *= 2
    return np.lexsort((np.arange(size), rank)).astype(np.int32)


MERGE_SHARE = 0.25  # a delta holding more tokens than this share of the base's is merged into a new base
BASE, DELTA, LAYERS = "match_base", "match_delta", "match_layers.json"  # in a repository's index folder


@dataclass
class LayeredMatchIndex:
    """A repository's match index as a reindex leaves it: a base built from every file once, and a delta
    index of the files changed or added since, the base's copies of those (and of deleted files) masked.
    A reindex rebuilds only the delta (Django's whole index takes 2.4 s), and builds a new base once the
    delta outgrows MERGE_SHARE of it."""

    base: MatchIndex
    delta: MatchIndex
    masked: frozenset[str]  # base files changed or deleted since the base was built

    @classmethod
    def load(cls, directory: Path) -> LayeredMatchIndex:
        """The index in `directory`; one written before the layers (a single MatchIndex, no LAYERS file) is
        served as the base alone until the next reindex builds the layers."""
        if not (directory / LAYERS).exists():
            return cls(MatchIndex.load(directory), MatchIndex.build([]), frozenset())
        layers = json.loads((directory / LAYERS).read_text())
        return cls(MatchIndex.load(directory / BASE), MatchIndex.load(directory / DELTA), frozenset(layers["masked"]))

    def continuations(self, prefix: str, *, exclude_filepath: str = "") -> list[Continuation]:
        """As `MatchIndex.continuations`, over the base's unmasked files and the delta's together."""
        found = (self.base.continuations(prefix, exclude_filepath=exclude_filepath, masked=self.masked)
                 + self.delta.continuations(prefix, exclude_filepath=exclude_filepath))
        longest = max((c.match_tokens for c in found), default=0)
        return _tallied([(c.text, c.count, c.filepath) for c in found if c.match_tokens == longest], longest)


def match_index_exists(directory: Path) -> bool:
    """Whether `directory` holds a match index, layered or written before the layers."""
    return (directory / LAYERS).exists() or (directory / META_FILE).exists()


def layered_index_write(directory: Path, sources: list[tuple[str, str]], previous: Path) -> str:
    """Write the match index of `sources` ((path, text) pairs) into the empty `directory`, keeping the base
    of the index in `previous` (its files linked, not rebuilt) and rebuilding only the delta of the files
    whose text differs from what that index read. Returns "delta", or "base" where the base was rebuilt
    (no earlier index, or the delta outgrew MERGE_SHARE of the base)."""
    digests = {path: hashlib.sha256(text.encode()).hexdigest() for path, text in sources}
    try:
        layers = json.loads((previous / LAYERS).read_text())
    except (OSError, ValueError):
        layers = None
    if layers is not None:
        changed = {path for path, digest in digests.items() if layers["digests"].get(path) != digest}
        gone = set(layers["digests"]) - set(digests)
        delta_paths = (set(layers["delta_paths"]) - gone) | changed
        delta = MatchIndex.build([(path, text) for path, text in sources if path in delta_paths])
        if len(delta.token_ids) <= MERGE_SHARE * layers["base_tokens"]:
            masked = set(layers["masked"]) | ((changed | gone) & set(layers["base_paths"]))
            (directory / BASE).mkdir()
            for name in (TEXT_FILE, ARRAYS_FILE, META_FILE):
                _link_or_copy(previous / BASE / name, directory / BASE / name)
            _write_layers(directory, delta, digests, masked, layers["base_paths"], layers["base_tokens"])
            return "delta"
    base = MatchIndex.build(sources)
    (directory / BASE).mkdir()
    base.save(directory / BASE)
    _write_layers(directory, MatchIndex.build([]), digests, set(), base.filepaths, len(base.token_ids))
    return "base"


def _write_layers(directory: Path, delta: MatchIndex, digests: dict[str, str], masked: set[str],
                  base_paths: list[str], base_tokens: int) -> None:
    (directory / DELTA).mkdir()
    delta.save(directory / DELTA)
    (directory / LAYERS).write_text(json.dumps({
        "digests": digests, "masked": sorted(masked), "delta_paths": delta.filepaths, "base_paths": base_paths,
        "base_tokens": base_tokens}))


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link where the file system allows one (the base's files are never written again), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
