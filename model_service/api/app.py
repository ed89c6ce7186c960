"""The HTTP layer: OpenAI-compatible routes plus /health and /metrics. It sees only the Backend interface."""
from __future__ import annotations

import asyncio
import base64
import time
from contextlib import asynccontextmanager

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from model_service.api.errors import install_error_handlers
from model_service.api.generation import respond
from model_service.api.middleware import ApiKeyMiddleware, BodySizeLimitMiddleware, RequestMetricsMiddleware
from model_service.api.state import ServiceState
from model_service.config import ServiceConfig
from model_service.errors import InvalidRequest
from model_service.protocol import AdapterRequest, ChatCompletionRequest, CompletionRequest, EmbeddingRequest

MAX_EMBEDDING_INPUTS = 2048
OWNER = "moe-suite"


def create_app(config: ServiceConfig) -> FastAPI:
    state = ServiceState(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Start in the background: /health answers "starting" while the weights load.
        starting = asyncio.create_task(state.start())
        yield
        await starting
        await state.stop()

    app = FastAPI(title="model_service", lifespan=lifespan)
    app.state.service = state
    install_error_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=config.max_request_bytes)
    app.add_middleware(ApiKeyMiddleware, api_keys=config.api_keys)
    app.add_middleware(RequestMetricsMiddleware, metrics=state.metrics)

    @app.get("/health")
    async def health():
        return JSONResponse(_health(state), status_code=200 if state.status == "ok" else 503)

    @app.get("/metrics")
    async def metrics():
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def models():
        backend = state.backend
        created = int(time.time())
        base = backend.checkpoint.name
        data = [{"id": base, "object": "model", "created": created, "owned_by": OWNER, "root": base, "parent": None,
                 "fim_format": backend.checkpoint.fim_format_name}]
        data += [{"id": name, "object": "model", "created": created, "owned_by": OWNER, "root": name,
                  "parent": base} for name in state.adapters()]
        if state.embedder is not None:
            embedding_model = state.embedder.model_id
            data.append({"id": embedding_model, "object": "model", "created": created, "owned_by": OWNER,
                         "root": embedding_model, "parent": None})
        return {"object": "list", "data": data}

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request):
        return await respond(state, request, body, chat=False)

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest, request: Request):
        return await respond(state, request, body, chat=True)

    @app.post("/v1/load_lora_adapter")
    async def load_lora_adapter(body: AdapterRequest):
        serving = await state.adapter_load(body.lora_name, body.lora_path or "")
        return {"loaded": body.lora_name, "strategy": serving.detail, "serving": serving.strategy}

    @app.post("/v1/unload_lora_adapter")
    async def unload_lora_adapter(body: AdapterRequest):
        await state.adapter_unload(body.lora_name)
        return {"unloaded": body.lora_name}

    @app.post("/v1/embeddings")
    async def embeddings(body: EmbeddingRequest):
        embedder = await state.embedding_model(body.model)
        texts = [body.input] if isinstance(body.input, str) else body.input
        if not texts or len(texts) > MAX_EMBEDDING_INPUTS or any(not text.strip() for text in texts):
            raise InvalidRequest(f"input must be 1 to {MAX_EMBEDDING_INPUTS} non-empty strings", param="input")
        vectors, tokens = await embedder.embed(texts)
        if body.dimensions is not None and body.dimensions != len(vectors[0]):
            raise InvalidRequest(f"{embedder.model_id} makes {len(vectors[0])}-dimensional embeddings only; "
                                 f"dimensions {body.dimensions} is not supported", param="dimensions")
        if body.encoding_format == "base64":
            vectors = [base64.b64encode(np.asarray(v, dtype="<f4").tobytes()).decode() for v in vectors]
        return {"object": "list", "model": embedder.model_id,
                "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    return app


def _health(state: ServiceState) -> dict:
    body = {"status": state.status, "error": state.error, "degraded": bool(state.degraded_reason),
            "degraded_reason": state.degraded_reason}
    checkpoint = state.checkpoint
    if checkpoint is not None:
        body["checkpoint"] = {"name": checkpoint.name, "path": str(checkpoint.path),
                              "architecture": checkpoint.architecture, "kind": checkpoint.kind,
                              "note": checkpoint.note, "max_model_len": checkpoint.max_model_len,
                              "fim_format": checkpoint.fim_format_name}
    if state.status == "ok":
        backend = state.backend
        info = backend.info()
        body.update(backend=info.name, device=info.device, dtype=info.dtype, features=list(info.features),
                    adapters=state.adapters(), adapter_strategy=state.adapter_strategy,
                    adapter_serving=state.adapter_serving(),
                    engine={"unfinished_requests": backend.unfinished_requests()})
    admission = state.admission
    body["queue"] = {"running": admission.running, "waiting": admission.waiting,
                     "max_running": admission.max_running, "max_waiting": admission.max_waiting}
    if state.embedder is not None:
        body["embeddings"] = {"model": state.embedder.model_id, "loaded": state.embedder.loaded,
                              "tuned_dir_configured": state.tuned_embedders.embedders_dir is not None,
                              "tuned_loaded": state.tuned_embedders.names()}
    return body
