"""LoRA adapters for the MoE model with PEFT, targets named explicitly.

The targets are a regular expression over full module names: the attention projections, the dense
layers' MLP and the shared experts' MLP; the routed experts (3-D parameters, not modules) are added
through `target_parameters` when asked for.

peft 0.21 rewrites DeepseekV3 targets named gate_proj/up_proj/down_proj into the fused routed-expert
parameters (a transformers v4 → v5 compatibility step), which silently drops the dense and shared
MLPs. `_exact_targets` switches that rewrite off while an adapter is created or loaded, so the
adapter holds exactly the modules named here (a test checks each one).
"""
from __future__ import annotations

import json
import math
import shutil
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from training.adapter_config import (MERGE_RECORD, MERGED_DIR, AdapterConfig, adapter_fingerprint,  # noqa: F401
                                     merged_is_current)

ATTENTION = r"self_attn\.(q_a_proj|q_b_proj|kv_a_proj_with_mqa|kv_b_proj|o_proj)"
DENSE_MLP = r"mlp\.(gate_proj|up_proj|down_proj)"
SHARED_EXPERTS = r"mlp\.shared_experts\.(gate_proj|up_proj|down_proj)"
TARGET_MODULES = rf".*\.({ATTENTION}|{DENSE_MLP}|{SHARED_EXPERTS})$"
ROUTED_EXPERT_PARAMETERS = ["experts.gate_up_proj", "experts.down_proj"]


def lora_config(config: AdapterConfig) -> LoraConfig:
    return LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
                      target_modules=TARGET_MODULES,
                      target_parameters=ROUTED_EXPERT_PARAMETERS if config.routed_experts else None,
                      bias="none", task_type="CAUSAL_LM")


@contextmanager
def _exact_targets(model: torch.nn.Module):
    """peft only rewrites targets for the model types it knows; hide the type while it looks."""
    model.config.model_type = "deepseek_v3_exact_lora_targets"
    try:
        yield
    finally:
        del model.config.model_type  # the class attribute ("deepseek_v3") shows through again


def adapter_model(base: torch.nn.Module, config: AdapterConfig) -> PeftModel:
    with _exact_targets(base):
        return get_peft_model(base, lora_config(config))


def load_adapter(base: torch.nn.Module, path: Path, name: str) -> PeftModel:
    """The base model with the saved adapter `name` (a PeftModel), or `base` extended when it is one."""
    with _exact_targets(base if not isinstance(base, PeftModel) else base.base_model.model):
        if isinstance(base, PeftModel):
            base.load_adapter(str(path), adapter_name=name)
            return base
        return PeftModel.from_pretrained(base, str(path), adapter_name=name)


def lora_modules(model: PeftModel) -> set[str]:
    """Names of the modules that carry LoRA weights (of any adapter)."""
    return {name.rsplit(".lora_A.", 1)[0] for name, _ in model.named_modules() if ".lora_A." in name}


def prompt_and_answer(tokenizer, example: dict) -> tuple[list[int], str]:
    """The prompt's token ids and the answer text of one JSONL example (chat `messages`,
    `prompt`/`completion`, or plain `text`, which is all answer)."""
    if "messages" in example:
        prompt_ids = tokenizer.apply_chat_template(example["messages"][:-1], add_generation_prompt=True, tokenize=True,
                                                   return_dict=False)
        return list(prompt_ids), example["messages"][-1]["content"] + "<|end|>"
    if "prompt" in example:
        return [tokenizer.bos_token_id, *tokenizer.encode(example["prompt"], add_special_tokens=False)], \
            example["completion"] + tokenizer.eos_token
    return [tokenizer.bos_token_id], example["text"] + tokenizer.eos_token


def encode_example(tokenizer, example: dict, max_length: int) -> tuple[list[int], list[int]]:
    """(input ids, labels); only the answer is learned: labels are -100 over the prompt."""
    prompt_ids, answer = prompt_and_answer(tokenizer, example)
    answer_ids = tokenizer.encode(answer, add_special_tokens=False)
    ids = (prompt_ids + answer_ids)[:max_length]
    labels = ([-100] * len(prompt_ids) + answer_ids)[:max_length]
    return ids, labels


def _batches(encoded: list[tuple[list[int], list[int]]], size: int, pad: int):
    for start in range(0, len(encoded), size):
        chunk = encoded[start:start + size]
        width = max(len(ids) for ids, _ in chunk)
        ids = torch.tensor([i + [pad] * (width - len(i)) for i, _ in chunk])
        labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in chunk])
        mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in chunk])
        yield ids, labels, mask


RESUME_DIR = "resume"  # inside the adapter's output directory, removed once the adapter is saved


def _save_resume_state(out_dir: Path, model: PeftModel, optimizer, step: int, tokens: int) -> None:
    """Trainable weights, optimizer, position and RNG, written atomically (a kill mid-write keeps the old one)."""
    state = {"step": step, "tokens": tokens, "optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state(),
             "lora": {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}}
    directory = out_dir / RESUME_DIR
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(state, directory / "state.pt.tmp")
    (directory / "state.pt.tmp").replace(directory / "state.pt")


def _load_resume_state(out_dir: Path, model: PeftModel, optimizer) -> tuple[int, int]:
    """(step, tokens) of the saved state, restored into model and optimizer; (0, 0) when there is none."""
    path = out_dir / RESUME_DIR / "state.pt"
    if not path.exists():
        return 0, 0
    state = torch.load(path, weights_only=False)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.requires_grad:
                parameter.copy_(state["lora"][name])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    return state["step"], state["tokens"]


def clear_resume_state(out_dir: Path) -> None:
    shutil.rmtree(out_dir / RESUME_DIR, ignore_errors=True)


def train_adapter(base_checkpoint: Path, examples: list[dict], out_dir: Path, config: AdapterConfig = AdapterConfig(),
                  *, progress=None, should_stop=None) -> dict:
    """Train a LoRA adapter and save it (adapter_config.json + adapter_model.safetensors).

    Every `config.checkpoint_every_steps` steps the training state is saved under `out_dir/resume`;
    a call that finds it continues from there exactly (same data order, weights, optimizer), which is
    how a job killed with its worker resumes. The learning rate follows `config.lr_at` (warmup, then
    cosine decay, by default). `progress(step, total, loss, tokens_per_s)` is called after every
    optimizer step; `should_stop()` is polled between steps (cancellation). Returns the
    training summary, with `resumed_from_step`."""
    import time

    torch.manual_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(base_checkpoint)
    base = AutoModelForCausalLM.from_pretrained(base_checkpoint, dtype=torch.float32)
    model = adapter_model(base, config)
    encoded = [encode_example(tokenizer, example, config.max_length) for example in examples]
    accumulation = max(1, math.ceil(config.batch_sequences / config.micro_batch))
    steps_per_epoch = max(1, math.ceil(len(encoded) / (config.micro_batch * accumulation)))
    total = steps_per_epoch * config.epochs
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    resumed_from, tokens = _load_resume_state(out_dir, model, optimizer)
    step, started, loss_value, new_tokens = 0, time.perf_counter(), float("nan"), 0
    model.train()
    for _ in range(config.epochs):
        order = torch.randperm(len(encoded), generator=generator).tolist()  # drawn every epoch, resumed or not
        batches = list(_batches([encoded[i] for i in order], config.micro_batch, tokenizer.pad_token_id))
        for start in range(0, len(batches), accumulation):
            if step < resumed_from:
                step += 1
                continue
            if should_stop is not None and should_stop():
                return {"status": "cancelled", "steps": step, "total_steps": total}
            group = batches[start:start + accumulation]
            for param_group in optimizer.param_groups:  # stateless: a resumed run sets the same rate
                param_group["lr"] = config.lr_at(step, total)
            losses = []
            for ids, labels, mask in group:
                loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss / len(group)
                loss.backward()
                losses.append(loss.item() * len(group))
                new_tokens += int(mask.sum())
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            loss_value = sum(losses) / len(losses)
            if step % config.checkpoint_every_steps == 0 and step < total:
                _save_resume_state(out_dir, model, optimizer, step, tokens + new_tokens)
            if progress is not None:
                progress(step, total, loss_value, new_tokens / (time.perf_counter() - started))
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    clear_resume_state(out_dir)
    summary = {"status": "trained", "steps": step, "total_steps": total, "resumed_from_step": resumed_from,
               "final_loss": loss_value, "tokens": tokens + new_tokens,
               "seconds": round(time.perf_counter() - started, 2), "config": asdict(config)}
    (out_dir / "training_summary.json").write_text(json.dumps(summary, indent=2))
    return summary


# --- merging: a promoted adapter served at the base model's speed -----------------------------------
WEIGHT_FILES = (".safetensors", ".bin", ".pt", ".pth")  # of the base, never copied beside the merged weights
NOT_COPIED = {"training_state.json", "evaluation.json", "MODEL_CARD.md"}  # the base's own records


def merge_adapter(base_checkpoint: Path, adapter_dir: Path) -> Path:
    """Write `adapter_dir/merged`: the base checkpoint with the adapter's LoRA weights merged in (PEFT's
    `merge_and_unload`), in the base's Hugging Face format and dtype (config.json, model.safetensors with
    the base's tensor names, tokenizer files, generation_config.json), so vLLM serves it as it serves the
    base. Merged in float32, stored in the base's dtype (bfloat16 for vLLM's DeepSeek path).

    Written to a temporary folder and renamed, so a reader never sees half a checkpoint; `merge.json`
    records the adapter's fingerprint, so a stale merge is never served for a changed adapter."""
    base_checkpoint, adapter_dir = Path(base_checkpoint), Path(adapter_dir)
    config = json.loads((base_checkpoint / "config.json").read_text())
    stored_dtype = getattr(torch, config.get("dtype") or config.get("torch_dtype") or "float32")
    model = load_adapter(AutoModelForCausalLM.from_pretrained(base_checkpoint, dtype=torch.float32), adapter_dir,
                         "merge")
    merged = model.merge_and_unload().to(stored_dtype).eval()
    final = adapter_dir / MERGED_DIR
    staging = adapter_dir / f".{MERGED_DIR}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    merged.save_pretrained(staging)
    for entry in base_checkpoint.iterdir():  # config, tokenizer, chat template, generation and FIM settings
        if entry.is_file() and ".safetensors" not in entry.name and not entry.name.endswith(WEIGHT_FILES) \
                and entry.name not in NOT_COPIED:
            shutil.copy2(entry, staging / entry.name)  # the base's own, as vLLM and model_service read them
    (staging / MERGE_RECORD).write_text(json.dumps({
        "adapter_fingerprint": adapter_fingerprint(adapter_dir), "base_checkpoint": base_checkpoint.name,
        "dtype": str(stored_dtype).removeprefix("torch.")}, indent=2))
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    return final
