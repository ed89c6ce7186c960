import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from training.model_config import MoEModelConfig, ServingConstraintError
from training.tokenizer import SPECIAL_TOKENS


def test_placeholder_checkpoint_fits_vllm_cpu(tiny_checkpoint):
    config = json.loads((tiny_checkpoint / "config.json").read_text())

    assert config["architectures"] == ["DeepseekV3ForCausalLM"]
    assert config["dtype"] == "bfloat16"
    assert (config["kv_lora_rank"], config["qk_rope_head_dim"]) == (512, 64)
    assert (config["topk_method"], config["scoring_func"]) == ("noaux_tc", "sigmoid")
    assert (config["n_group"], config["topk_group"]) == (1, 1)
    assert json.loads((tiny_checkpoint / "training_state.json").read_text())["kind"] == "random-init"


def test_placeholder_checkpoint_loads_unchanged_in_transformers(tiny_checkpoint):
    model = AutoModelForCausalLM.from_pretrained(tiny_checkpoint)
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)

    ids = tokenizer("def f(x):", return_tensors="pt").input_ids
    logits = model(ids).logits

    assert next(model.parameters()).dtype == torch.bfloat16
    assert logits.shape == (1, ids.shape[1], 4096)
    assert all(token in tokenizer.get_vocab() for token in SPECIAL_TOKENS)


def test_chat_template_marks_turns_and_the_generation_prompt(tiny_checkpoint):
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)

    text = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], add_generation_prompt=True,
                                         tokenize=False)

    assert text == "<|bos|><|user|>\nHi<|end|>\n<|assistant|>\n"


@pytest.mark.parametrize("field,value", [("kv_lora_rank", 256), ("qk_rope_head_dim", 32)])
def test_a_config_vllm_cpu_cannot_serve_is_rejected_naming_the_field(field, value):
    with pytest.raises(ServingConstraintError, match=field):
        MoEModelConfig(**{field: value}).check_servable()
