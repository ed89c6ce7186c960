"""What model_service needs to know about a checkpoint directory before any backend loads it."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from transformers import AutoTokenizer, PreTrainedTokenizerBase

from model_service import fim_formats
from model_service.errors import InvalidRequest
from model_service.fim_formats import FimFormat


@dataclass
class Checkpoint:
    path: Path
    name: str  # the base model's id in the API
    tokenizer: PreTrainedTokenizerBase
    max_model_len: int
    stop_token_ids: tuple[int, ...]  # the tokenizer's EOS and generation_config.json's eos_token_id
    architecture: str
    kind: str  # from training_state.json: "random-init" (placeholder), "pretrained", ...; else "external"
    note: str
    fim_format: FimFormat | None = None  # None: no fill-in-the-middle, a suffix is refused

    @classmethod
    def load(cls, path: Path, *, name: str | None = None, max_model_len: int | None = None,
             fim_format: str | None = None) -> Checkpoint:
        """`fim_format`: a format name (or "none") overriding fim_format.json and the tokenizer's tokens."""
        path = path.resolve()
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path} holds no config.json: not a Hugging Face checkpoint")
        config = json.loads((path / "config.json").read_text())
        tokenizer = AutoTokenizer.from_pretrained(path)
        state_file = path / "training_state.json"
        state = json.loads(state_file.read_text()) if state_file.is_file() else {}
        vocab = tokenizer.get_vocab()
        stop_ids = {tokenizer.eos_token_id, *_generation_eos_ids(path)}
        return cls(
            path=path,
            name=name or path.name,
            tokenizer=tokenizer,
            max_model_len=max_model_len or config.get("max_position_embeddings", 2048),
            stop_token_ids=tuple(sorted(i for i in stop_ids if i is not None)),
            architecture=(config.get("architectures") or ["unknown"])[0],
            kind=state.get("kind", "external"),
            note=state.get("note", ""),
            fim_format=fim_formats.resolve(path, vocab, fim_format),
        )

    @property
    def supports_fim(self) -> bool:
        return self.fim_format is not None

    @property
    def fim_format_name(self) -> str:
        return self.fim_format.name if self.fim_format else fim_formats.NONE

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
        """The checkpoint's FIM template filled in; the model writes the middle after it."""
        return self.encode(fim_formats.refuse_without(self.fim_format).prompt(prefix, suffix))


def _generation_eos_ids(path: Path) -> list[int]:
    """generation_config.json's eos_token_id: an int or a list of them."""
    config_file = path / "generation_config.json"
    eos = json.loads(config_file.read_text()).get("eos_token_id") if config_file.is_file() else None
    if eos is None:
        return []
    return [eos] if isinstance(eos, int) else [int(token) for token in eos]
