import json

from training.evaluate import parameter_counts, validation_perplexity
from training.scripts.samples import samples


def test_parameter_counts_split_total_and_active(exported_tiny):
    import torch
    from transformers import AutoModelForCausalLM

    config = json.loads((exported_tiny / "config.json").read_text())
    model = AutoModelForCausalLM.from_pretrained(exported_tiny)
    expert = 3 * config["hidden_size"] * config["moe_intermediate_size"]
    moe_layers = config["num_hidden_layers"] - config["first_k_dense_replace"]

    counts = parameter_counts(config)

    assert counts["total"] == sum(p.numel() for p in model.parameters())
    assert counts["total"] - counts["active"] == (8 - 2) * expert * moe_layers
    assert isinstance(torch.tensor(counts["active"]).item(), int)


def test_validation_perplexity_is_measured_per_corpus_part(exported_tiny):
    results = validation_perplexity(exported_tiny, sources=("stdlib", "domain"), fraction=0.1, sequence_length=64,
                                    max_tokens_per_source=2000)

    assert set(results) == {"stdlib", "domain"}
    for row in results.values():
        assert row["tokens"] > 0
        assert 1 < row["perplexity"] < 512 * 1.5  # near the vocabulary size for an untrained model, not beyond


def test_samples_cover_code_fim_and_chat(exported_tiny):
    kinds = [sample["kind"] for sample in samples(exported_tiny, max_new_tokens=4)]

    assert kinds == ["code", "code", "code", "fill-in-the-middle", "fill-in-the-middle", "chat", "chat"]
