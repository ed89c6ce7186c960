"""The summary a clinician reads beside a computed result, and the prompt the model rewords it from.

Pure Python (no Django): `narrative` restates the computed result deterministically; the model
only ever rewords that text (see `services.diagnosis_narrative`), and adapter datasets of cases
learn from the very same prompt.
"""
from __future__ import annotations


def narrative(result: dict) -> str:
    """A plain restatement of the computed result; the model only ever rewords this (when enabled)."""
    top = ", ".join(f"{row['name']} ({row['probability']:.0%})" for row in result["conditions"][:3])
    urgency = result["urgency"]
    text = f"Computed differential: {top}. Urgency: {urgency['level']}"
    text += f" ({'; '.join(urgency['reasons'])})." if urgency["reasons"] else "."
    if result["next_questions"]:
        question = result["labels"].get(result["next_questions"][0]["evidence"], result["next_questions"][0]["evidence"])
        text += f" Most useful next question: {question}"
    return text + " This summary restates the model's computed result; it is not a diagnosis."


def narrative_messages(computed: str) -> list[dict[str, str]]:
    """The prompt the model rewords a computed summary from (adapter datasets of cases use it too)."""
    return [{"role": "system", "content": "Reword this summary for a clinician. Do not add anything."},
            {"role": "user", "content": computed}]
