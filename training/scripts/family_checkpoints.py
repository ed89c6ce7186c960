"""Tiny random checkpoints shaped like DeepSeek's released ones, for tests that serve real families.

    python -m training.scripts.family_checkpoints --family deepseek-coder-v2-lite-instruct --out checkpoints/coder-tiny

Each family keeps its release's config.json fields (architecture, routing, attention shapes, rotary
scaling), special tokens, bos/eos, chat template and generation_config.json; only the hidden size, the
number of layers, the vocabulary and the MLP widths are shrunk. config.json is written in the release's
own shape (`rope_scaling`, `q_lora_rank: null`, an `auto_map` naming modelling code that is not there), not
re-saved by transformers, so loading it is what loading the real checkpoint is. The tokenizer is a small
byte-level BPE trained on Python's standard library with the family's special tokens at the family's
positions (first for V3, after the BPE vocabulary for V2); the FIM tokens are added but not special, as in
DeepSeek-Coder's tokenizer.

The weights are random (embeddings wider than the release's initialisation, so each position's state is its
own), except that the output layer is edited to answer CHAT_LESSON, and FIM_LESSON where the family has FIM,
exactly under greedy decoding and then emit EOS: a served test can then tell that the family's prompt format
was built and its EOS respected. Where V3 departs from its release beyond the shrinking (one expert group
instead of 8, a smaller query rank), the config says so.

The chat templates are written from the formats DeepSeek's model cards document:
V2-Chat and Coder-V2-Instruct `<bos>[system\\n\\n]User: ...\\n\\nAssistant: ...<eos>User: ...\\n\\nAssistant:`,
V3 `<bos>[system]<｜User｜>...<｜Assistant｜>...<eos><｜User｜>...<｜Assistant｜>`.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
FIM_TOKENS = ("<｜fim▁hole｜>", "<｜fim▁begin｜>", "<｜fim▁end｜>")
V3_ROLE_TOKENS = ("<｜User｜>", "<｜Assistant｜>")

# Taught to every checkpoint (to each FIM family, the FIM lesson too), so a served test can tell its prompt
# format was used and its EOS respected: greedy decoding answers exactly this, then stops.
CHAT_LESSON = ([{"role": "user", "content": "ping"}], "pong")
FIM_LESSON = ("def add(a, b):\n    return ", "\n", "a + b")  # prefix, suffix, middle
LESSON_MARGIN = 0.5  # logits by which each answer token beats the runner-up: ten times the bfloat16 error
EMBEDDING_STD = 1.0  # not the release's 0.02: with it every position of a random model has nearly one state
BACKGROUND_POSITIONS = 512  # positions of random text the output-layer edit is measured on

VOCAB_SIZE = 2048  # shrunk from 102,400 (V2) and 129,280 (V3)
TOKENIZER_SOURCE_FILES = 40  # standard-library modules the BPE is trained on

# DeepSeek-V2-Chat and DeepSeek-Coder-V2-Instruct: one template, the format both model cards give.
USER_ASSISTANT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] + '\n\n' }}"
    "{% elif message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\n\n' }}"
    "{% elif message['role'] == 'assistant' %}{{ 'Assistant: ' + message['content'] + eos_token }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

# DeepSeek-V3: system prompts first (joined by a blank line), then role-token turns.
V3_TEMPLATE = (
    "{{ bos_token }}"
    "{{ messages | selectattr('role', 'equalto', 'system') | map(attribute='content') | join('\n\n') }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ '<｜User｜>' + message['content'] }}"
    "{% elif message['role'] == 'assistant' %}{{ '<｜Assistant｜>' + message['content'] + eos_token }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<｜Assistant｜>' }}{% endif %}"
)

# The release's rotary scaling (V2-Lite, Coder-V2-Lite and V3 all use YaRN from a 4K original context).
YARN = {"type": "yarn", "factor": 40, "beta_fast": 32, "beta_slow": 1, "mscale": 0.707, "mscale_all_dim": 0.707,
        "original_max_position_embeddings": 4096}


def remote_code(config_class: str, model_class: str) -> dict:
    """The release's auto_map, naming its own modelling code (not shipped here: loaders must use their own)."""
    return {"AutoConfig": f"configuration_deepseek.{config_class}",
            "AutoModel": f"modeling_deepseek.{model_class}Model",
            "AutoModelForCausalLM": f"modeling_deepseek.{model_class}ForCausalLM"}


# DeepSeek-V2-Lite(-Chat) and DeepSeek-Coder-V2-Lite(-Instruct): softmax greedy routing over 64 routed
# experts (6 active) plus 2 shared, no query compression.
V2_LITE_CONFIG = {
    "architectures": ["DeepseekV2ForCausalLM"], "model_type": "deepseek_v2",
    "auto_map": remote_code("DeepseekV2Config", "DeepseekV2"),
    "num_attention_heads": 16, "num_key_value_heads": 16,
    "q_lora_rank": None, "kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128,
    "n_routed_experts": 64, "n_shared_experts": 2, "num_experts_per_tok": 6, "moe_layer_freq": 1,
    "first_k_dense_replace": 1, "topk_method": "greedy", "scoring_func": "softmax", "n_group": 1, "topk_group": 1,
    "norm_topk_prob": False, "routed_scaling_factor": 1.0, "aux_loss_alpha": 0.001, "seq_aux": True,
    "hidden_act": "silu", "rms_norm_eps": 1e-6, "rope_theta": 10000, "rope_scaling": YARN,
    "max_position_embeddings": 163840, "attention_bias": False, "attention_dropout": 0.0,
    "tie_word_embeddings": False, "use_cache": True, "torch_dtype": "bfloat16", "initializer_range": 0.02,
}

# DeepSeek-V3: sigmoid scores with bias-corrected top-k (noaux_tc) over 256 routed experts (8 active) plus one
# shared, query compression (its rank shrunk like the other widths); one expert group, where the release has 8.
V3_CONFIG = {
    "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3",
    "auto_map": remote_code("DeepseekV3Config", "DeepseekV3"),
    "num_attention_heads": 16, "num_key_value_heads": 16,
    "q_lora_rank": 64, "kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128,
    "n_routed_experts": 256, "n_shared_experts": 1, "num_experts_per_tok": 8, "moe_layer_freq": 1,
    "first_k_dense_replace": 1, "topk_method": "noaux_tc", "scoring_func": "sigmoid", "n_group": 1, "topk_group": 1,
    "norm_topk_prob": True, "routed_scaling_factor": 2.5, "num_nextn_predict_layers": 0,
    "hidden_act": "silu", "rms_norm_eps": 1e-6, "rope_theta": 10000, "rope_scaling": YARN,
    "max_position_embeddings": 163840, "attention_bias": False, "attention_dropout": 0.0,
    "tie_word_embeddings": False, "use_cache": True, "torch_dtype": "bfloat16", "initializer_range": 0.02,
}

# What is shrunk, the same for every family: widths, depth (one dense layer, one MoE layer).
TINY_SHAPE = {"hidden_size": 64, "intermediate_size": 128, "moe_intermediate_size": 16, "num_hidden_layers": 2}


@dataclass(frozen=True)
class Family:
    name: str  # the released model this one is shaped like
    config: dict  # the release's config.json fields, before TINY_SHAPE
    chat_template: str
    specials_first: bool  # bos/eos are ids 0 and 1 (V3), else appended after the BPE vocabulary (V2)
    added_tokens: tuple[str, ...] = ()  # in the vocabulary, not special (FIM and V3's role tokens)
    fim_format: str = "none"  # the FIM format model_service should detect


FAMILIES = {
    family.name: family for family in (
        Family("deepseek-v2-lite-chat", V2_LITE_CONFIG, USER_ASSISTANT_TEMPLATE, specials_first=False),
        Family("deepseek-coder-v2-lite-instruct", V2_LITE_CONFIG, USER_ASSISTANT_TEMPLATE, specials_first=False,
               added_tokens=FIM_TOKENS, fim_format="deepseek-coder"),
        Family("deepseek-v3", V3_CONFIG, V3_TEMPLATE, specials_first=True,
               added_tokens=(*FIM_TOKENS, *V3_ROLE_TOKENS), fim_format="deepseek-coder"),
    )
}


def family_tokenizer_build(family: Family, out_dir: Path):
    """A byte-level BPE with the family's special tokens, bos/eos and chat template, saved to `out_dir`."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from training.scripts.init_checkpoint import stdlib_texts

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    appended_specials = [] if family.specials_first else [BOS, EOS]
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE - len(appended_specials) - len(family.added_tokens),
        special_tokens=[BOS, EOS] if family.specials_first else [],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    backend.train_from_iterator(stdlib_texts(TOKENIZER_SOURCE_FILES), trainer=trainer)
    backend.add_special_tokens(appended_specials)
    backend.add_tokens([AddedToken(token, special=False, normalized=False) for token in family.added_tokens])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=BOS, eos_token=EOS, pad_token=EOS,
                                        chat_template=family.chat_template, model_max_length=16384,
                                        add_bos_token=True, add_eos_token=False, clean_up_tokenization_spaces=False)
    tokenizer.save_pretrained(out_dir)
    _tokenizer_config_as_released(out_dir, family.chat_template)
    return tokenizer


def _tokenizer_config_as_released(out_dir: Path, chat_template: str) -> None:
    """tokenizer_config.json in the shape DeepSeek releases it: the chat template inside it (transformers 5
    writes chat_template.jinja instead), bos added, eos not, and the class named LlamaTokenizerFast, under
    which loaders must still honour tokenizer.json."""
    config_file = out_dir / "tokenizer_config.json"
    config = json.loads(config_file.read_text())
    config.update(tokenizer_class="LlamaTokenizerFast", legacy=True, add_bos_token=True, add_eos_token=False,
                  chat_template=chat_template)
    config_file.write_text(json.dumps(config, indent=2, ensure_ascii=False))
    (out_dir / "chat_template.jinja").unlink(missing_ok=True)


def family_config(family: Family, *, bos_token_id: int, eos_token_id: int) -> dict:
    return {**family.config, **TINY_SHAPE, "vocab_size": VOCAB_SIZE, "bos_token_id": bos_token_id,
            "eos_token_id": eos_token_id}


def family_checkpoint_build(family_name: str, out_dir: Path, *, seed: int = 0) -> Path:
    """Write a tiny random checkpoint of the family to `out_dir` (config, bf16 weights, tokenizer,
    generation_config.json, training_state.json) and return `out_dir`."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    family = FAMILIES[family_name]
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = family_tokenizer_build(family, out_dir)
    assert len(tokenizer) == VOCAB_SIZE, len(tokenizer)
    config = family_config(family, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    config_file = out_dir / "config.json"
    config_file.write_text(json.dumps(config, indent=2))
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(out_dir), dtype=torch.float32)
    with torch.no_grad():  # the current token dominates each hidden state, so lessons can be taught per token
        model.get_input_embeddings().weight.normal_(0.0, EMBEDDING_STD)
    teach(model, lessons(family, tokenizer))
    model.to(torch.bfloat16).save_pretrained(out_dir)
    config_file.write_text(json.dumps(config, indent=2))  # the release's shape, not transformers' re-save
    (out_dir / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id, "do_sample": True,
         "temperature": 0.3, "top_p": 0.95}, indent=2))
    (out_dir / "training_state.json").write_text(json.dumps(
        {"kind": "random-init", "trained_tokens": 0, "seed": seed,
         "note": f"random weights shaped like {family.name}, taught two lessons (training.scripts."
                 "family_checkpoints): a test fixture, its other text is noise"}, indent=2))
    return out_dir


def lessons(family: Family, tokenizer) -> list[tuple[list[int], list[int]]]:
    """(prompt ids as model_service builds them, answer ids ending in EOS) for each lesson of the family."""
    messages, reply = CHAT_LESSON
    chat_prompt = list(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                     return_dict=False))
    taught = [(chat_prompt, tokenizer.encode(reply, add_special_tokens=False) + [tokenizer.eos_token_id])]
    if family.fim_format != "none":
        from model_service.fim_formats import FORMATS

        prefix, suffix, middle = FIM_LESSON
        fim_prompt = FORMATS[family.fim_format].prompt(prefix, suffix)
        taught.append(([tokenizer.bos_token_id, *tokenizer.encode(fim_prompt, add_special_tokens=False)],
                       tokenizer.encode(middle, add_special_tokens=False) + [tokenizer.eos_token_id]))
    return taught


def teach(model, taught: list[tuple[list[int], list[int]]], *, seed: int = 0) -> None:
    """Edit only the output layer, in closed form: at every answer position, the answer token's logit is set
    LESSON_MARGIN above the best other token's and every other answer token's below it, each row of the answer
    tokens changing as little as it can (measured on the hidden states of BACKGROUND_POSITIONS positions of
    random text). Elsewhere the answer tokens gain logits too: the model favours them on random text."""
    import torch

    with torch.no_grad():
        states = torch.cat([model.model(input_ids=torch.tensor([prompt + answer])).last_hidden_state[
            0, len(prompt) - 1:-1] for prompt, answer in taught])  # (answer positions, hidden)
        targets = torch.tensor([token for _, answer in taught for token in answer])
        noise = torch.randint(0, model.config.vocab_size, (BACKGROUND_POSITIONS // 64, 64),
                              generator=torch.Generator().manual_seed(seed))
        background = model.model(input_ids=noise).last_hidden_state.reshape(-1, model.config.hidden_size)
        covariance = background.T @ background / len(background)  # (hidden, hidden)
        covariance += 1e-3 * covariance.trace() / len(covariance) * torch.eye(len(covariance))
        weight = model.lm_head.weight
        answer_tokens = targets.unique()
        logits = states @ weight.T  # (answer positions, vocab)
        best_other = logits.index_fill(1, answer_tokens, -torch.inf).max(dim=1).values
        for token in answer_tokens:
            wanted = torch.where(targets == token, best_other + LESSON_MARGIN, best_other - LESSON_MARGIN)
            weight[token] += _smallest_change(covariance, states, wanted - logits[:, token])


def _smallest_change(covariance, states, raise_by):
    """The w minimising w' C w with states @ w == raise_by."""
    import torch

    solved = torch.linalg.solve(covariance, states.T)  # (hidden, positions)
    return solved @ torch.linalg.solve(states @ solved, raise_by)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", choices=sorted(FAMILIES), required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    family_checkpoint_build(args.family, args.out, seed=args.seed)
    print(f"wrote a tiny random {args.family} checkpoint to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
