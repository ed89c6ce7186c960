"""Byte-level BPE tokenizer with the suite's special tokens and chat template.

The chat template lives in `tokenizer_config.json`, so vLLM, transformers and model_service
format a conversation identically.
"""
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

BOS = "<|bos|>"
EOS = "<|eos|>"
PAD = "<|pad|>"
FIM_PREFIX = "<|fim_prefix|>"
FIM_SUFFIX = "<|fim_suffix|>"
FIM_MIDDLE = "<|fim_middle|>"
END_OF_TURN = "<|end|>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
SPECIAL_TOKENS = [BOS, EOS, PAD, FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE, END_OF_TURN, *ROLE_TOKENS]

# Each turn: <|role|>\n content <|end|>\n ; generation continues after "<|assistant|>\n".
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


def render_chat(messages: list[dict[str, str]], *, add_generation_prompt: bool = False) -> str:
    """CHAT_TEMPLATE's text without the leading BOS (training adds BOS to every document)."""
    text = "".join(f"<|{message['role']}|>\n{message['content']}{END_OF_TURN}\n" for message in messages)
    return text + ("<|assistant|>\n" if add_generation_prompt else "")


def tokenizer_train(texts: Iterable[str], *, vocab_size: int, out_dir: Path | None = None) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on `texts`; save it to `out_dir` when given."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=[FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE, END_OF_TURN, *ROLE_TOKENS],
        chat_template=CHAT_TEMPLATE,
        model_max_length=1_000_000,
    )
    if out_dir is not None:
        wrapped.save_pretrained(out_dir)
    return wrapped
