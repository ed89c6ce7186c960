"""What model_service needs to know about a checkpoint directory before any backend loads it."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from transformers import AutoTokenizer, PreTrainedTokenizerBase

from model_service.errors import InvalidRequest

FIM_TOKENS = ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>")
END_OF_TURN = "<|end|>"


@dataclass
class Checkpoint:
    path: Path
    name: str  # the base model's id in the API
    tokenizer: PreTrainedTokenizerBase
    max_model_len: int
    stop_token_ids: tuple[int, ...]  # end of text and end of a chat turn
    architecture: str
    kind: str  # from training_state.json: "random-init" (placeholder), "pretrained", ...; else "external"
    note: str

    @classmethod
    def load(cls, path: Path, *, name: str | None = None, max_model_len: int | None = None) -> Checkpoint:
        path = path.resolve()
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path} holds no config.json: not a Hugging Face checkpoint")
        config = json.loads((path / "config.json").read_text())
        tokenizer = AutoTokenizer.from_pretrained(path)
        state_file = path / "training_state.json"
        state = json.loads(state_file.read_text()) if state_file.is_file() else {}
        stop_ids = {tokenizer.eos_token_id}
        if END_OF_TURN in tokenizer.get_vocab():
            stop_ids.add(tokenizer.convert_tokens_to_ids(END_OF_TURN))
        return cls(
            path=path,
            name=name or path.name,
            tokenizer=tokenizer,
            max_model_len=max_model_len or config.get("max_position_embeddings", 2048),
            stop_token_ids=tuple(sorted(i for i in stop_ids if i is not None)),
            architecture=(config.get("architectures") or ["unknown"])[0],
            kind=state.get("kind", "external"),
            note=state.get("note", ""),
        )

    @property
    def supports_fim(self) -> bool:
        vocab = self.tokenizer.get_vocab()
        return all(token in vocab for token in FIM_TOKENS)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]:
        """The chat template applied; a template that refuses the messages (say, roles out of the order
        it expects) is the client's error."""
        from jinja2 import TemplateError

        try:
            encoded = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                         return_dict=False)
        except TemplateError as error:
            raise InvalidRequest(f"The model's chat template refused these messages: {error}",
                                 param="messages") from None
        return list(encoded)

    def encode_fim(self, prefix: str, suffix: str) -> list[int]:
        """Prefix-suffix-middle order: the model writes the middle after <|fim_middle|>."""
        fim_prefix, fim_suffix, fim_middle = FIM_TOKENS
        return self.encode(f"{fim_prefix}{prefix}{fim_suffix}{suffix}{fim_middle}")
