import re

import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, DeepseekV3ForCausalLM

from training.adapter_config import AdapterConfig
from training.adapters import adapter_model, load_adapter, lora_modules, train_adapter
from training.model_config import MoEModelConfig

INTENDED = re.compile(r"model\.layers\.\d+\.(self_attn\.(q_a_proj|q_b_proj|kv_a_proj_with_mqa|kv_b_proj|o_proj)"
                      r"|mlp\.(gate_proj|up_proj|down_proj)|mlp\.shared_experts\.(gate_proj|up_proj|down_proj))$")


def tiny_model() -> DeepseekV3ForCausalLM:
    torch.manual_seed(0)
    return DeepseekV3ForCausalLM(MoEModelConfig(vocab_size=64, hidden_size=32, intermediate_size=64,
                                                moe_intermediate_size=16, num_hidden_layers=3,
                                                max_position_embeddings=64).to_hf(bos_token_id=0, eos_token_id=1,
                                                                                  pad_token_id=2))


def test_every_intended_module_gets_lora_weights():
    base = tiny_model()
    intended = {name for name, _ in base.named_modules() if INTENDED.search(name)}

    model = adapter_model(base, AdapterConfig())
    adapted = {name.removeprefix("base_model.model.") for name in lora_modules(model)}

    assert any(".mlp.shared_experts." in name for name in intended)  # the parts peft would skip
    assert any(re.search(r"layers\.0\.mlp\.gate_proj$", name) for name in intended)
    assert adapted == intended


def test_routed_experts_are_adapted_only_when_asked():
    without = adapter_model(tiny_model(), AdapterConfig())
    with_experts = adapter_model(tiny_model(), AdapterConfig(routed_experts=True))

    def expert_lora(model):
        return [n for n, _ in model.named_parameters() if "lora" in n and ".mlp.experts." in n]

    assert expert_lora(without) == []
    assert expert_lora(with_experts)


def test_a_trained_adapter_saves_loads_and_changes_the_output(exported_tiny, tmp_path):
    examples = [{"prompt": f"Question {i}?", "completion": f"Answer {i}."} for i in range(16)]
    config = AdapterConfig(lr=5e-3, epochs=2, batch_sequences=8, micro_batch=4, max_length=32)
    steps = []

    summary = train_adapter(exported_tiny, examples, tmp_path / "adapter", config,
                            progress=lambda step, total, loss, tps: steps.append((step, total)))

    assert summary["status"] == "trained"
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert {p.name for p in (tmp_path / "adapter").iterdir()} >= {"adapter_config.json", "adapter_model.safetensors"}
    base = AutoModelForCausalLM.from_pretrained(exported_tiny, dtype=torch.float32)
    ids = torch.tensor([[1, 20, 30, 40]])
    with torch.no_grad():
        plain = base(ids).logits
        adapted = load_adapter(base, tmp_path / "adapter", "shop")(ids).logits
    assert not torch.allclose(plain, adapted)
    assert set(lora_modules(load_adapter(AutoModelForCausalLM.from_pretrained(exported_tiny), tmp_path / "adapter",
                                         "again"))) != set()


def test_training_can_be_cancelled_between_steps(exported_tiny, tmp_path):
    examples = [{"text": f"line {i}"} for i in range(32)]

    summary = train_adapter(exported_tiny, examples, tmp_path / "adapter",
                            AdapterConfig(epochs=1, batch_sequences=4, micro_batch=4, max_length=16),
                            should_stop=lambda: True)

    assert summary == {"status": "cancelled", "steps": 0, "total_steps": 8}
    assert not (tmp_path / "adapter").exists()


def test_an_interrupted_training_resumes_exactly_where_it_stopped(exported_tiny, tmp_path):
    examples = [{"prompt": f"Question {i}?", "completion": f"Answer {i}."} for i in range(24)]
    config = AdapterConfig(lr=5e-3, epochs=2, batch_sequences=4, micro_batch=2, max_length=32, dropout=0.1,
                           checkpoint_every_steps=2)
    straight = train_adapter(exported_tiny, examples, tmp_path / "straight", config)
    steps_done = []

    stopped = train_adapter(exported_tiny, examples, tmp_path / "resumed", config,
                            progress=lambda step, *_: steps_done.append(step), should_stop=lambda: len(steps_done) == 5)
    resumed = train_adapter(exported_tiny, examples, tmp_path / "resumed", config)

    assert (stopped["status"], stopped["steps"]) == ("cancelled", 5)
    assert (resumed["resumed_from_step"], resumed["steps"]) == (4, straight["steps"])
    assert not (tmp_path / "resumed" / "resume").exists()
    weights = [load_file(tmp_path / name / "adapter_model.safetensors") for name in ("straight", "resumed")]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])
