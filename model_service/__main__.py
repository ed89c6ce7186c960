"""Command line of model_service.

    python -m model_service serve --checkpoint checkpoints/tiny-random --host 127.0.0.1 --port 8100

API keys come from --api-key (repeatable) or MODEL_SERVICE_API_KEYS (comma-separated); the adapters
folder from --adapters-dir or MODEL_SERVICE_ADAPTERS_DIR; the tuned embedders' folder from --embedders-dir
or MODEL_SERVICE_EMBEDDERS_DIR.
"""
import argparse
import logging
import os
import sys
from pathlib import Path

from model_service.backends import BACKEND_CHOICES
from model_service.config import ServiceConfig
from model_service.fim_formats import FORMATS, NONE

# vLLM's names for the quantization methods that apply to DeepSeek-V2/V3 checkpoints: fp8 and experts_int8
# quantize bf16 weights while loading; the others name how a quantized checkpoint was made (vLLM reads
# that from its config.json when --quantization is not given).
QUANTIZATION_CHOICES = ("fp8", "experts_int8", "awq", "awq_marlin", "gptq", "gptq_marlin", "moe_wna16",
                        "compressed-tensors")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m model_service", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve a checkpoint over the OpenAI HTTP API")
    serve.add_argument("--checkpoint", type=Path, required=True, help="Hugging Face checkpoint directory")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8100)
    serve.add_argument("--backend", choices=BACKEND_CHOICES, default="auto")
    serve.add_argument("--served-model-name", default=None, help="model id in the API (default: directory name)")
    serve.add_argument("--max-model-len", type=int, default=None)
    serve.add_argument("--max-running", type=int, default=16, help="requests generated at once")
    serve.add_argument("--max-waiting", type=int, default=64, help="requests that may wait; more get 429")
    serve.add_argument("--api-key", action="append", default=[], help="accepted Bearer key (repeatable)")
    serve.add_argument("--max-request-bytes", type=int, default=ServiceConfig.max_request_bytes,
                       help="larger request bodies get 413 (default: 4 MiB)")
    serve.add_argument("--adapters-dir", type=Path, default=None,
                       help="folder LoRA adapters may be loaded from (default: none, adapters refused)")
    serve.add_argument("--embedders-dir", type=Path, default=None,
                       help="folder of tuned SentenceTransformers, one folder each, served by /v1/embeddings "
                            "under the folder's name (default: none, only all-MiniLM-L6-v2)")
    serve.add_argument("--max-tuned-embedders", type=_positive_int, default=ServiceConfig.max_tuned_embedders,
                       help="tuned embedders kept loaded; the least recently used one is unloaded (default: 4)")
    serve.add_argument("--fim-format", choices=[*FORMATS, NONE], default=None,
                       help="fill-in-the-middle format (default: fim_format.json, else detected from the tokenizer)")
    serve.add_argument("--tensor-parallel-size", type=_positive_int, default=1,
                       help="vLLM: GPUs the model is split across (default: 1)")
    serve.add_argument("--quantization", choices=QUANTIZATION_CHOICES, default=None,
                       help="vLLM: fp8 quantizes bf16 weights on load; AWQ/GPTQ checkpoints are detected from "
                            "their config (default: as the checkpoint says)")
    serve.add_argument("--gpu-memory-utilization", type=float, default=ServiceConfig.gpu_memory_utilization,
                       help="vLLM on GPUs: share of each GPU's memory it may take (default: 0.85)")
    serve.add_argument("--compile", action="store_true", help="vLLM: torch.compile the model (slower start)")
    serve.add_argument("--no-embeddings", action="store_true", help="do not serve /v1/embeddings")
    serve.add_argument("--log-level", default="info")
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> ServiceConfig:
    keys = list(args.api_key) + [k.strip() for k in os.environ.get("MODEL_SERVICE_API_KEYS", "").split(",")]
    return ServiceConfig(
        checkpoint=args.checkpoint,
        backend=args.backend,
        served_model_name=args.served_model_name,
        max_model_len=args.max_model_len,
        max_running=args.max_running,
        max_waiting=args.max_waiting,
        api_keys=tuple(key for key in keys if key),
        enforce_eager=not args.compile,
        embeddings=not args.no_embeddings,
        max_request_bytes=args.max_request_bytes,
        adapters_dir=args.adapters_dir or _env_path("MODEL_SERVICE_ADAPTERS_DIR"),
        embedders_dir=args.embedders_dir or _env_path("MODEL_SERVICE_EMBEDDERS_DIR"),
        max_tuned_embedders=args.max_tuned_embedders,
        fim_format=args.fim_format,
        tensor_parallel_size=args.tensor_parallel_size,
        quantization=args.quantization,
        gpu_memory_utilization=args.gpu_memory_utilization,
    )


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value) if value else None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import uvicorn

    from model_service.api.app import create_app

    app = create_app(config_from_args(args))
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
