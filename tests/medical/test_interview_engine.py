"""The interview engine on a small synthetic knowledge base: unknown answers, absent findings, question
types, severity weighting and the stop rule, with exact expectations (no database, no DDXPlus files)."""
import numpy as np
import pytest

from apps.medical import diagnosis
from apps.medical.diagnosis import ConditionInfo, DiagnosisEngine, Patient
from apps.medical.features import EvidenceSpec

SPECS = [
    EvidenceSpec("COMMON", "B", (), "COMMON", False),
    EvidenceSpec("SEVERE_SIGN", "B", (), "SEVERE_SIGN", False),
    EvidenceSpec("MILD_SIGN", "B", (), "MILD_SIGN", False),
    EvidenceSpec("OTHER_SIGN", "B", (), "OTHER_SIGN", False),
    EvidenceSpec("PAIN", "B", (), "PAIN", False),
    EvidenceSpec("PAIN_WHERE", "M", ("V_A", "V_B"), "PAIN", False),
    EvidenceSpec("PAIN_HOW_BAD", "C", tuple(range(11)), "PAIN", False),
]
CONDITIONS = {
    "Severe": ConditionInfo("Severe", "I21", 1, ("COMMON", "SEVERE_SIGN")),
    "Mild": ConditionInfo("Mild", "J00", 5, ("COMMON", "MILD_SIGN")),
    "Other": ConditionInfo("Other", "R05", 3, ("COMMON", "OTHER_SIGN")),
    "Pain A": ConditionInfo("Pain A", "R10", 3, ("PAIN", "PAIN_WHERE")),
    "Pain B": ConditionInfo("Pain B", "R51", 3, ("PAIN", "PAIN_WHERE")),
}
TYPICAL = {
    "Severe": ["COMMON", "SEVERE_SIGN"],
    "Mild": ["COMMON", "MILD_SIGN"],
    "Other": ["COMMON", "OTHER_SIGN"],
    "Pain A": ["PAIN", "PAIN_WHERE_@_V_A", "PAIN_HOW_BAD_@_5"],
    "Pain B": ["PAIN", "PAIN_WHERE_@_V_B", "PAIN_HOW_BAD_@_5"],
}


@pytest.fixture(scope="module")
def engine():
    """Severe and Mild mirror each other (COMMON in both and in Other, one sign each), so a question
    about either sign is equally informative; only severity tells them apart."""
    patients = [Patient(40, "F", TYPICAL[name], name, [(name, 1.0)]) for name in TYPICAL for _ in range(25)]
    seed = next(seed for seed in range(100) if balanced(patients, seed))
    trained, _ = DiagnosisEngine.train(patients, SPECS, CONDITIONS, seed=seed)
    return trained


def balanced(patients, seed):
    """Whether training's fit split (seeded) holds as many Severe as Mild patients: the mirror stays exact."""
    order = np.random.default_rng(seed).permutation(len(patients))[:int(len(patients) * (1 - diagnosis.HELD_OUT))]
    names = [patients[i].pathology for i in order]
    return names.count("Severe") == names.count("Mild")


def by_code(questions):
    return {question["evidence"]: question for question in questions}


def test_an_unknown_answer_is_not_asked_again_and_leaves_the_posterior_as_it_was(engine):
    asked = by_code(engine.next_questions(40, "F", ["COMMON"], top=10))
    assert "SEVERE_SIGN" in asked

    again = by_code(engine.next_questions(40, "F", ["COMMON"], unknown=("SEVERE_SIGN",), top=10))

    assert "SEVERE_SIGN" not in again and "MILD_SIGN" in again
    assert np.array_equal(engine.posterior(40, "F", ["COMMON"], unknown=("SEVERE_SIGN",)),
                          engine.posterior(40, "F", ["COMMON"]))
    assert engine.differential(40, "F", ["COMMON"], unknown=("SEVERE_SIGN",)) == engine.differential(40, "F", ["COMMON"])


def test_an_absent_finding_lowers_the_condition_that_needs_it(engine):
    severe = engine.classes.index("Severe")
    before = engine.posterior(40, "F", ["COMMON"])

    after = engine.posterior(40, "F", ["COMMON"], negatives=("SEVERE_SIGN",))

    assert after[severe] < before[severe] / 5
    assert engine.differential(40, "F", ["COMMON"], negatives=("SEVERE_SIGN",))[0]["name"] == "Mild"


def test_a_multi_choice_finding_is_one_question_with_its_choices_after_its_parent(engine):
    assert "PAIN_WHERE" not in by_code(engine.next_questions(40, "F", [], top=10))  # waits for "pain: yes"

    questions = by_code(engine.next_questions(40, "F", ["PAIN"], top=10))

    assert {key: questions["PAIN_WHERE"][key] for key in ("type", "choices")} == {"type": "multi",
                                                                                    "choices": ["V_A", "V_B"]}
    assert questions["PAIN_HOW_BAD"]["type"] == "scale"
    assert questions["PAIN_HOW_BAD"]["choices"] == [str(v) for v in range(11)]
    assert questions["PAIN_WHERE"]["information_gain"] > 0.5  # it tells Pain A from Pain B
    assert not any("_@_" in code for code in questions)
    assert all(q["type"] == "yes_no" and q["choices"] == [] for q in engine.next_questions(40, "F", [], top=10))


def test_the_question_that_can_rule_out_a_severe_condition_comes_first(engine, monkeypatch):
    monkeypatch.setattr(diagnosis, "SEVERITY_WEIGHT", {})  # every condition weighs the same
    unweighted = by_code(engine.next_questions(40, "F", ["COMMON"], top=10))
    assert unweighted["SEVERE_SIGN"]["information_gain"] == pytest.approx(
        unweighted["MILD_SIGN"]["information_gain"], abs=1e-3)
    monkeypatch.undo()

    questions = engine.next_questions(40, "F", ["COMMON"], top=10)

    assert questions[0]["evidence"] == "SEVERE_SIGN"
    assert questions[0]["information_gain"] > by_code(questions)["MILD_SIGN"]["information_gain"]


@pytest.mark.parametrize("top,gain,expected", [
    (0.95, 0.5, True),  # settled: the leading condition is at least STOP_CONFIDENCE
    (0.6, 0.5, False),  # open, and the next question is worth asking
    (0.6, 0.001, True),  # open, but no question would move it
])
def test_the_interview_stops_when_the_differential_is_settled(engine, top, gain, expected):
    differential = [{"name": "Severe", "probability": top}, {"name": "Mild", "probability": 1 - top}]
    questions = [{"evidence": "MILD_SIGN", "information_gain": gain}]

    assert engine.should_stop(differential, questions) is expected


def test_the_interview_stops_when_nothing_is_left_to_ask(engine):
    everything = ["COMMON", "SEVERE_SIGN", "MILD_SIGN", "OTHER_SIGN", "PAIN", "PAIN_WHERE_@_V_A", "PAIN_HOW_BAD_@_5"]

    assert engine.next_questions(40, "F", everything) == []
    assert engine.should_stop(engine.differential(40, "F", everything), []) is True


def test_the_differential_head_keeps_conditions_open_and_marks_them(engine):
    rows = engine.differential(40, "F", ["COMMON"], top=4)

    assert {row["name"] for row in rows if row["in_differential"]} == {"Severe", "Mild", "Other"}
    assert {"differential_probability", "in_differential"} <= set(rows[0])


def test_the_answer_model_tells_no_from_not_asked_and_keeps_to_each_conditions_findings():
    from apps.medical.features import FeatureSpace

    space = FeatureSpace([EvidenceSpec("SIGN", "B", (), "SIGN", False),
                          EvidenceSpec("WHERE", "M", ("V_A", "V_B"), "WHERE", False)])
    counts = {"SIGN": (("SIGN",), np.array([[3.0, 0.0], [1.0, 4.0]])),  # (yes, none) x (First, Second)
              "WHERE": (("WHERE_@_V_A", "WHERE_@_V_B"), np.array([[2.0, 0.0], [0.0, 4.0], [2.0, 0.0]]))}
    model = diagnosis.AnswerModel.build(space, counts, np.array([4.0, 4.0]), [("SIGN", "WHERE"), ("WHERE",)])
    a = diagnosis.ANSWER_SMOOTHING

    def loglik(*args, **kwargs):
        return model.indicators(*args, **kwargs) @ model.log_rates.T

    assert list(model.indicators([])) == [0, 0, 0, 0, 0, 0]  # nothing asked: no evidence either way
    assert list(model.indicators([], negatives=("SIGN",))) == [0, 1, 0, 0, 0, 0]
    assert list(model.indicators([], complete=True)) == [0, 1, 0, 0, 1, 1]
    assert list(model.indicators(["WHERE_@_V_B"])) == [0, 0, 0, 1, 1, 0]
    assert list(model.indicators(["SIGN"], unknown=("WHERE",), complete=True)) == [1, 0, 0, 0, 0, 0]
    assert np.allclose(loglik([], negatives=("SIGN",)), np.log([(1 + a) / (4 + 2 * a), (4 + a) / (4 + 2 * a)]))
    # Second's knowledge base does not list SIGN: a present SIGN is OUTSIDE_KNOWLEDGE as likely on top
    assert np.allclose(loglik(["SIGN"]), np.log([(3 + a) / (4 + 2 * a),
                                                 a / (4 + 2 * a) * diagnosis.OUTSIDE_KNOWLEDGE]))
    assert np.allclose(loglik(["WHERE_@_V_A"]), np.log([(2 + a) / (4 + 2 * a) * (1 - (0 + a) / (4 + 2 * a)),
                                                        (0 + a) / (4 + 2 * a) * (1 - (4 + a) / (4 + 2 * a))]))
