"""The evaluation gate: validation loss and a domain metric for the base model, the currently
promoted adapter and the new one, side by side. The domain metric is the token F1 between the
answer the model writes (greedy) and the reference answer of held-out examples: for customer
service, overlap with the knowledge base's answers on questions it did not train on."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from training.adapters import encode_example, load_adapter, prompt_and_answer

MAX_EXAMPLES = 64
ANSWER_TOKENS = 48


def token_f1(prediction: str, reference: str) -> float:
    guess, truth = prediction.lower().split(), reference.lower().split()
    common = sum((Counter(guess) & Counter(truth)).values())
    if not common:
        return 0.0
    precision, recall = common / len(guess), common / len(truth)
    return 2 * precision * recall / (precision + recall)


def _reference(example: dict) -> dict:
    """Plain text is split in half: the model continues the first half, the second is the reference."""
    if "text" not in example:
        return example
    words = example["text"].split()
    half = max(1, len(words) // 2)
    return {"prompt": " ".join(words[:half]), "completion": " ".join(words[half:])}


@torch.no_grad()
def measure(model, tokenizer, examples: list[dict]) -> dict:
    losses, f1 = [], []
    stop = [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|end|>")]
    for example in examples[:MAX_EXAMPLES]:
        ids, labels = encode_example(tokenizer, example, 256)
        if any(label != -100 for label in labels):
            losses.append(float(model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels])).loss))
        prompt_ids, reference = prompt_and_answer(tokenizer, _reference(example))
        output = model.generate(torch.tensor([prompt_ids]), max_new_tokens=ANSWER_TOKENS, do_sample=False,
                                eos_token_id=stop, pad_token_id=tokenizer.pad_token_id)
        answer = tokenizer.decode(output[0, len(prompt_ids):], skip_special_tokens=True)
        f1.append(token_f1(answer, tokenizer.decode(tokenizer.encode(reference, add_special_tokens=False),
                                                    skip_special_tokens=True)))
    return {"validation_loss": round(sum(losses) / len(losses), 4) if losses else None,
            "answer_f1": round(sum(f1) / len(f1), 4) if f1 else None, "examples": len(f1)}


def evaluation_gate(*, checkpoint: Path, examples: list[dict], new_adapter: Path,
                    current_adapter: Path | None) -> dict:
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
    results = {"base": measure(model, tokenizer, examples)}
    if current_adapter is not None:
        model = load_adapter(model, current_adapter, "current")
        model.set_adapter("current")
        results["current"] = measure(model, tokenizer, examples)
    model = load_adapter(model, new_adapter, "new")
    model.set_adapter("new")
    results["new"] = measure(model, tokenizer, examples)
    reference = results.get("current", results["base"])
    worse = []
    if None not in (results["new"]["validation_loss"], reference["validation_loss"]) and \
            results["new"]["validation_loss"] > reference["validation_loss"]:
        worse.append(f"validation loss {results['new']['validation_loss']} > {reference['validation_loss']}")
    if None not in (results["new"]["answer_f1"], reference["answer_f1"]) and \
            results["new"]["answer_f1"] < reference["answer_f1"]:
        worse.append(f"answer F1 {results['new']['answer_f1']} < {reference['answer_f1']}")
    compared_with = "the promoted adapter" if "current" in results else "the base model"
    results["gate"] = {"passed": not worse, "compared_with": compared_with,
                       "reason": f"worse than {compared_with}: " + "; ".join(worse) if worse else ""}
    return results
