"""Print sample completions of a checkpoint: code, fill-in-the-middle and chat (greedy, transformers).

    python -m training.scripts.samples --checkpoint checkpoints/demo-moe
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from training.tokenizer import FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX

CODE_PROMPTS = ["def is_palindrome(text):\n", "import os\n\n\ndef list_python_files(directory):\n",
                "class Stack:\n    def __init__(self):\n"]
FIM_PROMPTS = [("def area(radius):\n    return ", " * radius ** 2\n"),
               ("for index, item in enumerate(items):\n    ", "\n    print(index)\n")]
CHAT_PROMPTS = ["How long do I have to return an item?", "Do you ship to the UK?"]
SYSTEM = "You are a support assistant. Answer only from the shop's FAQ."


def complete(model, tokenizer, ids: list[int], max_new_tokens: int) -> str:
    stop = [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|end|>")]
    output = model.generate(torch.tensor([ids]), max_new_tokens=max_new_tokens, do_sample=False,
                            eos_token_id=stop, pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(output[0, len(ids):], skip_special_tokens=True)


def samples(checkpoint: Path, max_new_tokens: int = 48) -> list[dict[str, str]]:
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
    bos = [tokenizer.bos_token_id]
    results = []
    for prompt in CODE_PROMPTS:
        ids = bos + tokenizer.encode(prompt, add_special_tokens=False)
        results.append({"kind": "code", "prompt": prompt, "completion": complete(model, tokenizer, ids, max_new_tokens)})
    for prefix, suffix in FIM_PROMPTS:
        ids = bos + tokenizer.encode(f"{FIM_PREFIX}{prefix}{FIM_SUFFIX}{suffix}{FIM_MIDDLE}", add_special_tokens=False)
        results.append({"kind": "fill-in-the-middle", "prompt": f"{prefix}<CURSOR>{suffix}",
                        "completion": complete(model, tokenizer, ids, max_new_tokens // 2)})
    for question in CHAT_PROMPTS:
        ids = tokenizer.apply_chat_template([{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}],
                                            add_generation_prompt=True, tokenize=True, return_dict=False)
        results.append({"kind": "chat", "prompt": question, "completion": complete(model, tokenizer, list(ids),
                                                                                     max_new_tokens)})
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=Path("checkpoints/demo-moe"))
    parser.add_argument("--max-new-tokens", type=int, default=48)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    for sample in samples(args.checkpoint, args.max_new_tokens):
        print(f"--- {sample['kind']}: {sample['prompt']!r}\n{sample['completion']}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
