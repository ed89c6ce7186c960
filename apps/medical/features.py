"""Evidence tokens (DDXPlus form) → feature vectors, with validation that names the bad token.

Tokens: "E_91" (binary), "E_54_@_V_161" (categorical or multi-choice value), "E_56_@_6" (a 0–10 scale).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from apps.core.errors import ApplicationError

SEPARATOR = "_@_"


class EvidenceError(ApplicationError, ValueError):
    """A bad evidence token (a 422); `field` names what was wrong."""

    def __init__(self, message: str, *, field: str = "evidence"):
        super().__init__(message=message, status=422, code="invalid_evidence", field=field)


@dataclass(frozen=True)
class EvidenceSpec:
    code: str
    data_type: str  # "B", "C" or "M"
    possible_values: tuple
    parent_code: str
    is_antecedent: bool

    @property
    def is_scale(self) -> bool:
        return self.data_type == "C" and bool(self.possible_values) and all(
            isinstance(value, int) for value in self.possible_values)


def split_token(token: str) -> tuple[str, str | None]:
    code, _, value = token.partition(SEPARATOR)
    return code, (value if value else None)


class FeatureSpace:
    """Age, sex, one feature per binary evidence, per categorical/multi-choice value, per scale."""

    def __init__(self, specs: list[EvidenceSpec]):
        self.specs = {spec.code: spec for spec in specs}
        names = ["age", "sex_male"]
        for spec in specs:
            if spec.data_type == "B" or spec.is_scale:
                names.append(spec.code)
            else:
                names += [f"{spec.code}{SEPARATOR}{value}" for value in spec.possible_values]
        self.names = names
        self.index = {name: i for i, name in enumerate(names)}

    def validate(self, tokens: list[str]) -> list[str]:
        """The tokens, checked and deduplicated; raises EvidenceError naming the first bad one."""
        seen = []
        for position, token in enumerate(tokens):
            code, value = split_token(str(token))
            spec = self.specs.get(code)
            if spec is None:
                raise EvidenceError(f"unknown evidence {code!r}", field=f"evidence[{position}]")
            if spec.data_type == "B":
                if value is not None:
                    raise EvidenceError(f"{code} is a yes/no evidence and takes no value", field=f"evidence[{position}]")
            else:
                allowed = {str(v) for v in spec.possible_values}
                if value is None or value not in allowed:
                    raise EvidenceError(f"{code} needs one of the values {sorted(allowed)}; got {value!r}",
                                        field=f"evidence[{position}]")
            if token not in seen:
                seen.append(str(token))
        return seen

    def vector(self, age: int, sex: str, tokens: list[str]) -> np.ndarray:
        x = np.zeros(len(self.names), dtype=np.float32)
        x[0] = age / 100.0
        x[1] = 1.0 if sex == "M" else 0.0
        for token in tokens:
            code, value = split_token(token)
            spec = self.specs.get(code)
            if spec is None:
                continue
            if spec.data_type == "B":
                x[self.index[code]] = 1.0
            elif spec.is_scale:
                x[self.index[code]] = float(value) / 10.0
            elif token in self.index:
                x[self.index[token]] = 1.0
        return x

    def present(self, tokens: list[str]) -> set[str]:
        """Evidence codes present in the tokens."""
        return {split_token(token)[0] for token in tokens}
