"""The small adapter the model_service adapter tests serve (taught that every order ships within 2 days), and
what PEFT writes with it."""
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from training.adapters import AdapterConfig, load_adapter, train_adapter

MAX_TOKENS = 8  # generated per prompt, by PEFT here and by model_service in the tests


def train_shop_adapter(checkpoint: Path, out: Path) -> Path:
    examples = [{"prompt": f"Where is order {i}?", "completion": " It ships within 2 days."} for i in range(16)]
    train_adapter(checkpoint, examples, out, AdapterConfig(lr=2e-2, epochs=2, batch_sequences=8, micro_batch=8,
                                                           max_length=32))
    return out


def peft_greedy(checkpoint, adapter, prompts: list[str]) -> list[str]:
    """What PEFT on the transformers backend writes greedily (float32, as model_service's fallback runs)."""
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = load_adapter(AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32), adapter, "shop").eval()
    texts = []
    for prompt in prompts:
        ids = [tokenizer.bos_token_id, *tokenizer.encode(prompt, add_special_tokens=False)]
        with torch.no_grad():
            output = model.generate(torch.tensor([ids]), max_new_tokens=MAX_TOKENS, do_sample=False,
                                    eos_token_id=[tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|end|>")],
                                    pad_token_id=tokenizer.pad_token_id)
        texts.append(tokenizer.decode(output[0, len(ids):], skip_special_tokens=True))
    return texts
