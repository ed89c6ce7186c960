from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServiceConfig:
    checkpoint: Path  # Hugging Face checkpoint directory to serve
    backend: str = "auto"  # "auto", "vllm" or "transformers"
    served_model_name: str | None = None  # the base model's id in the API; default: the directory name
    max_model_len: int | None = None  # context length; default: the checkpoint's max_position_embeddings
    max_running: int = 16  # requests generated concurrently (the transformers backend runs 1)
    max_waiting: int = 64  # requests allowed to wait for a slot; more get 429
    api_keys: tuple[str, ...] = ()  # when set, every route but /health needs one as a Bearer token
    enforce_eager: bool = True  # vLLM: skip torch.compile for a fast start
    embeddings: bool = True  # serve /v1/embeddings with all-MiniLM-L6-v2
    retry_after: int = 1  # seconds a 429 asks the client to wait
    max_request_bytes: int = 4 * 1024 * 1024  # larger request bodies get 413, refused while they arrive
    adapters_dir: Path | None = None  # LoRA adapters load only from inside this folder; None: no adapters
    embedders_dir: Path | None = None  # tuned embedders, one folder each, served by name; None: base model only
    max_tuned_embedders: int = 4  # tuned embedders kept loaded; the least recently used one is unloaded
    fim_format: str | None = None  # FIM format name or "none"; default: fim_format.json, else the tokenizer's
    # vLLM only (the transformers fallback runs on one device, unquantized):
    tensor_parallel_size: int = 1  # GPUs one model is split across
    quantization: str | None = None  # e.g. "fp8" (online, bf16 weights); None: what the checkpoint says (AWQ/GPTQ)
    gpu_memory_utilization: float = 0.85  # share of each GPU's memory vLLM may take
