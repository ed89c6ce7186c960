"""The evaluation gate: validation loss and a domain metric for the base model, the currently
promoted adapter and the new one, side by side, on held-out examples. The model writes each answer
greedily; the domain metric compares it with the reference answer:
- customer service (and other domains): token F1 with the knowledge base's answer;
- code: exact match of the completed line (whitespace at the ends ignored);
- medical: the share of the computed differential's conditions the narrative names."""
from __future__ import annotations

import re
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


def line_exact_match(prediction: str, reference: str) -> float:
    first = prediction.strip().splitlines()[0].strip() if prediction.strip() else ""
    return float(first == reference.strip())


DIFFERENTIAL = re.compile(r"Computed differential: (.*?)\. Urgency")
CONDITION = re.compile(r"(.+?) \(\d+%\)(?:, |$)")


def differential_agreement(prediction: str, reference: str) -> float:
    """The share of the reference summary's conditions (by name) that the prediction names."""
    found = DIFFERENTIAL.search(reference)
    names = CONDITION.findall(found.group(1)) if found else []
    return sum(name.lower() in prediction.lower() for name in names) / len(names) if names else 0.0


DOMAIN_METRICS = {  # domain: (key in the results, label, function)
    "customer_service": ("answer_f1", "answer F1", token_f1),
    "codegen": ("line_exact_match", "line exact match", line_exact_match),
    "medical": ("differential_agreement", "differential agreement", differential_agreement),
}


def domain_metric(domain: str) -> tuple:
    """The domain's metric; token F1 for domains without one of their own."""
    return DOMAIN_METRICS.get(domain, DOMAIN_METRICS["customer_service"])


def _reference(example: dict) -> dict:
    """Plain text is split in half: the model continues the first half, the second is the reference."""
    if "text" not in example:
        return example
    words = example["text"].split()
    half = max(1, len(words) // 2)
    return {"prompt": " ".join(words[:half]), "completion": " ".join(words[half:])}


@torch.no_grad()
def measure(model, tokenizer, examples: list[dict], domain: str = "customer_service") -> dict:
    metric_name, _, metric = domain_metric(domain)
    losses, scores = [], []
    stop = [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|end|>")]
    for example in examples[:MAX_EXAMPLES]:
        ids, labels = encode_example(tokenizer, example, 256)
        if any(label != -100 for label in labels):
            losses.append(float(model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels])).loss))
        prompt_ids, reference = prompt_and_answer(tokenizer, _reference(example))
        output = model.generate(torch.tensor([prompt_ids]), max_new_tokens=ANSWER_TOKENS, do_sample=False,
                                eos_token_id=stop, pad_token_id=tokenizer.pad_token_id)
        answer = tokenizer.decode(output[0, len(prompt_ids):], skip_special_tokens=True)
        scores.append(metric(answer, tokenizer.decode(tokenizer.encode(reference, add_special_tokens=False),
                                                      skip_special_tokens=True)))
    return {"validation_loss": round(sum(losses) / len(losses), 4) if losses else None,
            metric_name: round(sum(scores) / len(scores), 4) if scores else None, "examples": len(scores)}


def evaluation_gate(*, checkpoint: Path, examples: list[dict], new_adapter: Path,
                    current_adapter: Path | None, domain: str = "customer_service") -> dict:
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
    metric_name, label, _ = domain_metric(domain)
    results = {"domain_metric": {"key": metric_name, "label": label},
               "base": measure(model, tokenizer, examples, domain)}
    if current_adapter is not None:
        model = load_adapter(model, current_adapter, "current")
        model.set_adapter("current")
        results["current"] = measure(model, tokenizer, examples, domain)
    model = load_adapter(model, new_adapter, "new")
    model.set_adapter("new")
    results["new"] = measure(model, tokenizer, examples, domain)
    reference = results.get("current", results["base"])
    worse = []
    if None not in (results["new"]["validation_loss"], reference["validation_loss"]) and \
            results["new"]["validation_loss"] > reference["validation_loss"]:
        worse.append(f"validation loss {results['new']['validation_loss']} > {reference['validation_loss']}")
    if None not in (results["new"][metric_name], reference[metric_name]) and \
            results["new"][metric_name] < reference[metric_name]:
        worse.append(f"{label} {results['new'][metric_name]} < {reference[metric_name]}")
    compared_with = "the promoted adapter" if "current" in results else "the base model"
    results["gate"] = {"passed": not worse, "compared_with": compared_with,
                       "reason": f"worse than {compared_with}: " + "; ".join(worse) if worse else ""}
    return results
