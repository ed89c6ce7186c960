"""Which entries a search may return, by their tags.

Tags match whole and case-insensitively ("Billing" matches the tag "billing", not "billing-eu"). The
search API's `?tags=a,b` asks for entries having every listed tag; Dify's `metadata_condition`
combines its conditions with `and` or `or`.
"""
from __future__ import annotations

from dataclasses import dataclass

OPERATORS = ("contains", "not contains", "in", "not in", "empty", "not empty")  # Dify's names


@dataclass(frozen=True)
class TagCondition:
    operator: str  # one of OPERATORS
    values: tuple[str, ...] = ()  # one tag for contains / not contains, any number for in / not in

    def matches(self, tags: set[str]) -> bool:
        wanted = {value.casefold() for value in self.values}
        return {
            "contains": lambda: wanted <= tags,
            "not contains": lambda: not wanted <= tags,
            "in": lambda: bool(wanted & tags),
            "not in": lambda: not wanted & tags,
            "empty": lambda: not tags,
            "not empty": lambda: bool(tags),
        }[self.operator]()


@dataclass(frozen=True)
class TagFilter:
    conditions: tuple[TagCondition, ...]
    match_all: bool = True  # True: every condition (and); False: any of them (or)

    @classmethod
    def having_all(cls, tags: list[str]) -> TagFilter:
        return cls(tuple(TagCondition("contains", (tag,)) for tag in tags))

    def matches(self, tags: list[str]) -> bool:
        folded = {tag.casefold() for tag in tags}
        combine = all if self.match_all else any
        return combine(condition.matches(folded) for condition in self.conditions)
