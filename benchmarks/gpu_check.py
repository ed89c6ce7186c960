"""GPU check: model_service's transformers backend on CUDA with tiny DeepseekV2 and DeepseekV3 checkpoints.

    python benchmarks/gpu_check.py                 (on a CUDA machine: under a minute)
    python benchmarks/gpu_check.py --allow-cpu     (a dry run of the script itself, on a machine with no GPU)

For each family (DeepSeek-Coder-V2-Lite-Instruct's and DeepSeek-V3's shapes, random weights, built by
`training.scripts.family_checkpoints`) it loads the checkpoint in model_service's TransformersBackend (bf16 on
CUDA), then: a chat completion through the checkpoint's chat template, a fill-in-the-middle completion in its
FIM format, and the greedy next token of a few prompts compared with the same weights in float32 on the CPU
(transformers' own forward pass). Writes benchmarks/results/gpu_check.json (or --out) and prints one line
per family; exits 1 if a check fails.

It needs PyTorch with CUDA, transformers, tokenizers, jinja2 and pydantic, not vLLM (whose GPU wheel cannot be
installed on a machine without network access). Where pydantic is missing, carry its wheels
(pydantic, pydantic-core, annotated-types, typing-inspection) and put them on PYTHONPATH first.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from model_service.backends.transformers_backend import TransformersBackend  # noqa: E402
from model_service.checkpoint import Checkpoint  # noqa: E402
from model_service.protocol import GenerationRequest, SamplingOptions  # noqa: E402
from training.scripts.family_checkpoints import family_checkpoint_build  # noqa: E402

FAMILIES = ("deepseek-coder-v2-lite-instruct", "deepseek-v3")
PROMPTS = ["def fibonacci(n):", "import os\n", "class Order:", "for key, value in"]
# bf16 on the GPU against float32 on the CPU: the greedy token may differ only where the CPU's top two are
# this close (random weights give nearly uniform distributions, so near-ties happen).
NEAR_TIE_LOGPROB = 0.05
RESULTS = REPO / "benchmarks" / "results" / "gpu_check.json"


async def _generate(backend: TransformersBackend, prompt_ids: list[int], max_tokens: int, logprobs: int | None = None):
    request = GenerationRequest(f"gpu-check-{time.monotonic_ns()}", prompt_ids,
                                SamplingOptions(max_tokens=max_tokens, temperature=0.0,
                                                stop_token_ids=backend.checkpoint.stop_token_ids, logprobs=logprobs))
    token_ids, text, top = [], "", []
    async for deltas in backend.generate(request):
        for delta in deltas:
            token_ids += delta.token_ids
            text += delta.text
            top += delta.logprobs
    return token_ids, text, top


def _cpu_next_token_logprobs(model, prompt_ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        logits = model(torch.tensor([prompt_ids])).logits[0, -1]
    return torch.log_softmax(logits.float(), dim=-1)


async def check_family(family: str, work_dir: Path) -> dict:
    path = family_checkpoint_build(family, work_dir / family)
    checkpoint = Checkpoint.load(path)
    backend = TransformersBackend(checkpoint)
    started = time.monotonic()
    await backend.start()
    load_seconds = time.monotonic() - started
    info = backend.info()
    result = {"family": family, "architecture": checkpoint.architecture, "device": info.device, "dtype": info.dtype,
              "fim_format": checkpoint.fim_format_name, "load_seconds": round(load_seconds, 2), "checks": {}}
    try:
        chat_ids = checkpoint.encode_chat([{"role": "user", "content": "Write a function that adds two numbers."}])
        tokens, _, _ = await _generate(backend, chat_ids, 8)
        result["checks"]["chat"] = {"ok": 0 < len(tokens) <= 8, "prompt_tokens": len(chat_ids),
                                    "completion_tokens": len(tokens)}
        if checkpoint.supports_fim:
            fim_ids = checkpoint.encode_fim("def add(a, b):\n    return ", "\n\nprint(add(1, 2))\n")
            tokens, _, _ = await _generate(backend, fim_ids, 8)
            result["checks"]["fim"] = {"ok": 0 < len(tokens) <= 8, "prompt_tokens": len(fim_ids),
                                       "completion_tokens": len(tokens)}
        result["checks"]["next_token_vs_cpu"] = await _compare_with_cpu(backend, checkpoint)
        if torch.cuda.is_available():
            result["cuda_max_memory_allocated_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    finally:
        await backend.stop()
    result["ok"] = all(check["ok"] for check in result["checks"].values())
    return result


async def _compare_with_cpu(backend: TransformersBackend, checkpoint: Checkpoint) -> dict:
    from transformers import AutoModelForCausalLM

    cpu_model = AutoModelForCausalLM.from_pretrained(checkpoint.path, dtype=torch.float32).eval()
    agreements, near_ties, deviations = 0, 0, []
    for prompt in PROMPTS:
        prompt_ids = [checkpoint.tokenizer.bos_token_id, *checkpoint.encode(prompt)]
        tokens, _, top = await _generate(backend, prompt_ids, 1, logprobs=1)
        device_token, device_logprob = tokens[0], top[0].chosen.logprob
        cpu = _cpu_next_token_logprobs(cpu_model, prompt_ids)
        cpu_token = int(cpu.argmax())
        deviations.append(abs(device_logprob - float(cpu[device_token])))
        if device_token == cpu_token:
            agreements += 1
        elif float(cpu[cpu_token] - cpu[device_token]) <= NEAR_TIE_LOGPROB:
            near_ties += 1
    return {"ok": agreements + near_ties == len(PROMPTS) and max(deviations) <= NEAR_TIE_LOGPROB,
            "prompts": len(PROMPTS), "same_greedy_token": agreements, "near_ties": near_ties,
            "max_logprob_deviation": round(max(deviations), 4)}


def environment() -> dict:
    import transformers

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "cuda": torch.version.cuda, "gpu": gpu}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--allow-cpu", action="store_true", help="run even without a GPU (checks the script only)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available() and not args.allow_cpu:
        print("no CUDA device: this check needs a GPU (--allow-cpu runs it on the CPU as a dry run)")
        return 2
    with tempfile.TemporaryDirectory() as work_dir:
        families = [asyncio.run(check_family(family, Path(work_dir))) for family in FAMILIES]
    report = {"environment": environment(), "families": families, "ok": all(f["ok"] for f in families)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for family in families:
        print(f"{family['family']}: {family['architecture']} on {family['device']} ({family['dtype']}), "
              f"{'ok' if family['ok'] else 'FAILED'}: " + json.dumps(family["checks"]))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
