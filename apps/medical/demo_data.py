"""Synthetic patients for the demo knowledge base (`demo/`), so the suite trains a model without DDXPlus."""
from __future__ import annotations

import csv
import random
from pathlib import Path

from apps.medical.features import split_token
from apps.medical.models import Condition, Evidence


def demo_patients_write(path: Path, *, count: int = 1500, seed: int = 0) -> Path:
    """Synthetic patients from the demo knowledge base, in the DDXPlus CSV format.

    Each patient has one condition; each of its typical findings is present with probability 0.75
    (0.4 for antecedents), plus the odd unrelated symptom; categorical answers are drawn from the
    evidence's values. Demo data only: the real model is trained on DDXPlus."""
    rng = random.Random(seed)
    conditions = list(Condition.objects.filter(source="demo"))
    evidences = {e.code: e for e in Evidence.objects.filter(source="demo")}
    symptoms = [code for code, e in evidences.items() if not e.is_antecedent and e.data_type == "B"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["AGE", "DIFFERENTIAL_DIAGNOSIS", "SEX", "PATHOLOGY", "EVIDENCES", "INITIAL_EVIDENCE"])
        for _ in range(count):
            condition = rng.choice(conditions)
            tokens = []
            for code in condition.symptoms + condition.antecedents:
                evidence = evidences[code]
                if rng.random() >= (0.4 if evidence.is_antecedent else 0.75):
                    continue
                if evidence.data_type == "B":
                    tokens.append(code)
                else:
                    values = [v for v in evidence.possible_values if v != evidence.default_value] or \
                        evidence.possible_values
                    tokens.append(f"{code}_@_{rng.choice(values)}")
            if rng.random() < 0.3:
                tokens.append(rng.choice(symptoms))
            tokens = list(dict.fromkeys(tokens)) or [rng.choice(condition.symptoms)]
            initial = next((t for t in tokens if evidences[split_token(t)[0]].data_type == "B"), tokens[0])
            writer.writerow([rng.randint(18, 85), repr([[condition.name, 1.0]]), rng.choice("MF"), condition.name,
                             repr(tokens), initial])
    return path
