"""Plain PyTorch fallback: transformers' model, one request at a time, on a worker thread.

Slower than vLLM (no batching across requests, no paged KV cache) and reported as degraded in
/health, but it runs wherever PyTorch does.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

import torch

from model_service.backends.base import Backend, BackendInfo
from model_service.checkpoint import Checkpoint
from model_service.protocol import Candidate, ChoiceDelta, GenerationRequest, SamplingOptions, TokenLogprob

logger = logging.getLogger(__name__)

_DONE = object()


@dataclass
class _Job:
    request: GenerationRequest
    loop: asyncio.AbstractEventLoop
    outputs: asyncio.Queue
    cancelled: threading.Event = field(default_factory=threading.Event)

    def emit(self, item) -> None:
        self.loop.call_soon_threadsafe(self.outputs.put_nowait, item)


class _ChoiceState:
    """Turns one choice's sampled tokens into text deltas, applying stop tokens and strings."""

    def __init__(self, index: int, checkpoint: Checkpoint, options: SamplingOptions):
        self.index = index
        self.tokenizer = checkpoint.tokenizer
        self.options = options
        self.token_ids: list[int] = []
        self.text = ""
        self.emitted = 0
        self.finish_reason: str | None = None
        # Text that might be the start of a stop string is held back until it is decided.
        self.holdback = max((len(stop) for stop in options.stop), default=1) - 1

    def add(self, token_id: int, logprob: TokenLogprob | None, *, last_step: bool) -> ChoiceDelta:
        new_ids = []
        if token_id in self.options.stop_token_ids:
            self.finish_reason = "stop"
        else:
            new_ids = [token_id]
            self.token_ids.append(token_id)
            self.text = self.tokenizer.decode(self.token_ids, skip_special_tokens=True)
            stop_at = min((pos for pos in (self.text.find(s) for s in self.options.stop) if pos >= 0), default=-1)
            if stop_at >= 0:
                self.text = self.text[:stop_at]
                self.finish_reason = "stop"
            elif last_step:
                self.finish_reason = "length"
        end = len(self.text)
        if self.finish_reason is None:
            end = max(self.emitted, end - self.holdback)
            while end > self.emitted and self.text[end - 1] == "\ufffd":  # an incomplete UTF-8 sequence
                end -= 1
        delta = ChoiceDelta(self.index, self.text[self.emitted:end], new_ids,
                            [logprob] if logprob is not None else [], self.finish_reason)
        self.emitted = max(self.emitted, end)
        return delta


class TransformersBackend(Backend):
    def __init__(self, checkpoint: Checkpoint, *, dtype: str | None = None):
        super().__init__(checkpoint)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        # float32 on CPU: bfloat16 matmuls there are slow and less exact.
        self.dtype = dtype or ("bfloat16" if self.device == "cuda" else "float32")
        self.model = None
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._unfinished = 0  # jobs queued or running on the worker thread
        self._unfinished_lock = threading.Lock()
        self._adapters: dict[str, str] = {}  # name -> path, loaded into the model with PEFT
        self._model_lock = threading.Lock()  # adapters are not loaded while a generation runs

    async def start(self) -> None:
        self.model = await asyncio.to_thread(self._load)
        self._worker = threading.Thread(target=self._serve_jobs, name="transformers-backend", daemon=True)
        self._worker.start()

    def _load(self):
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(self.checkpoint.path, dtype=getattr(torch, self.dtype))
        return model.to(self.device).eval()

    async def stop(self) -> None:
        if self._worker is not None:
            self._jobs.put(None)
            await asyncio.to_thread(self._worker.join, 10)
            self._worker = None
        self.model = None

    def info(self) -> BackendInfo:
        return BackendInfo("transformers", self.device, self.dtype, max_running=1)

    def unfinished_requests(self) -> int:
        return self._unfinished

    def adapters(self) -> list[str]:
        return sorted(self._adapters)

    @property
    def serves_adapters(self) -> bool:
        return True

    async def load_adapter(self, name: str, path: str) -> None:
        await asyncio.to_thread(self._load_adapter, name, path)

    def _load_adapter(self, name: str, path: str) -> None:
        from training.adapters import load_adapter

        with self._model_lock:
            if name in self._adapters:
                self._remove_adapter(name)
            self.model = load_adapter(self.model, path, name)
            self._adapters[name] = path

    async def unload_adapter(self, name: str) -> None:
        def unload():
            with self._model_lock:
                self._remove_adapter(name)

        await asyncio.to_thread(unload)

    def _remove_adapter(self, name: str) -> None:
        del self._adapters[name]
        if self._adapters:
            self.model.delete_adapter(name)
        else:  # PEFT cannot run without an active adapter: back to the plain base model
            self.model = self.model.unload()

    async def generate(self, request: GenerationRequest) -> AsyncIterator[list[ChoiceDelta]]:
        job = _Job(request, asyncio.get_running_loop(), asyncio.Queue())
        with self._unfinished_lock:
            self._unfinished += 1
        self._jobs.put(job)
        try:
            while True:
                item = await job.outputs.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            job.cancelled.set()  # the worker stops at its next step

    # --- worker thread ---------------------------------------------------------------------
    def _serve_jobs(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                if not job.cancelled.is_set():
                    with self._model_lock, torch.inference_mode(), self._adapter_for(job.request.adapter):
                        self._run(job)
                    job.emit(_DONE)
            except Exception as error:  # reported to the waiting request, the worker lives on
                logger.exception("generation %s failed", job.request.request_id)
                job.emit(error)
            finally:
                with self._unfinished_lock:
                    self._unfinished -= 1

    def _adapter_for(self, name: str | None):
        """Run the base model (adapters disabled) or switch to the named adapter."""
        if not self._adapters:
            return contextlib.nullcontext()
        if name is None:
            return self.model.disable_adapter()
        self.model.set_adapter(name)
        return contextlib.nullcontext()

    def _run(self, job: _Job) -> None:
        options = job.request.sampling
        choices = [_ChoiceState(i, self.checkpoint, options) for i in range(options.n)]
        generator = torch.Generator(self.device)
        generator.manual_seed(options.seed if options.seed is not None else torch.seed())
        # (n, prompt_len): every choice continues the same prompt, so no padding is needed.
        input_ids = torch.tensor([job.request.prompt_token_ids] * options.n, device=self.device)
        past = None
        history = None
        for step in range(options.max_tokens):
            if job.cancelled.is_set():
                return
            output = self.model(input_ids=input_ids, past_key_values=past, use_cache=True)
            past = output.past_key_values
            logits = output.logits[:, -1, :].float()  # (n, vocab)
            prompt_logprobs = []
            if history is None:
                history = _History(job.request.prompt_token_ids, logits.shape)
                prompt_logprobs = self._prompt_logprobs(output.logits[0], job.request.prompt_token_ids,
                                                        options.prompt_logprobs)
            logprobs = torch.log_softmax(logits, dim=-1)  # of the model's own logits, as vLLM reports them
            next_ids = _sample(_shaped(logits, options, history), options, generator)  # (n,)
            history.add(next_ids)
            deltas = []
            for choice in choices:
                if choice.finish_reason is not None:
                    continue
                token_id = int(next_ids[choice.index])
                logprob = self._logprob(logprobs[choice.index], token_id, options.logprobs)
                delta = choice.add(token_id, logprob, last_step=step == options.max_tokens - 1)
                delta.logprobs[:0] = prompt_logprobs  # echo with logprobs: the prompt's tokens come first
                deltas.append(delta)
            job.emit(deltas)
            if all(choice.finish_reason is not None for choice in choices):
                return
            input_ids = next_ids[:, None]

    def _prompt_logprobs(self, logits: torch.Tensor, prompt_ids: list[int], top_k: int | None) -> list[TokenLogprob]:
        """Each prompt token's logprob after the tokens before it (`logits`: (prompt_len, vocab), the prompt's
        forward pass); the first token's is None, as vLLM gives it. Special tokens read as "" so the tokens'
        texts add up to the echoed prompt."""
        if top_k is None:
            return []
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        first = TokenLogprob(Candidate(prompt_ids[0], self._prompt_token_text(prompt_ids[0]), None), ())
        return [first, *(replace(self._logprob(logprobs[position - 1], token_id, top_k),
                                 chosen=Candidate(token_id, self._prompt_token_text(token_id),
                                                  float(logprobs[position - 1, token_id])))
                         for position, token_id in enumerate(prompt_ids) if position > 0)]

    def _prompt_token_text(self, token_id: int) -> str:
        return self.checkpoint.tokenizer.decode([token_id], skip_special_tokens=True)

    def _logprob(self, logprobs: torch.Tensor, token_id: int, top_k: int | None) -> TokenLogprob | None:
        if top_k is None:
            return None
        decode = self.checkpoint.tokenizer.decode
        top = ()
        if top_k > 0:
            values, indices = logprobs.topk(top_k)
            top = tuple(Candidate(int(i), decode([int(i)]), float(v)) for v, i in zip(values, indices))
        return TokenLogprob(Candidate(token_id, decode([token_id]), float(logprobs[token_id])), top)


class _History:
    """Which tokens the prompt holds and how often each choice has generated each token: what the
    penalties read."""

    def __init__(self, prompt_ids: list[int], shape: torch.Size):
        n, vocab = shape
        self.in_prompt = torch.zeros(vocab, dtype=torch.bool)
        self.in_prompt[torch.tensor(prompt_ids)] = True
        self.counts = torch.zeros(n, vocab)  # (n, vocab)

    def add(self, token_ids: torch.Tensor) -> None:
        self.counts[torch.arange(len(token_ids)), token_ids.cpu()] += 1


def _shaped(logits: torch.Tensor, options: SamplingOptions, history: _History) -> torch.Tensor:
    """The logits after logit_bias and the penalties, in vLLM's order and with its definitions:
    repetition divides positive (multiplies negative) logits of tokens in the prompt or the output;
    frequency subtracts per occurrence in the output, presence once."""
    logits = logits.clone()
    if options.logit_bias:
        ids, biases = zip(*options.logit_bias)
        logits[:, list(ids)] += torch.tensor(biases, device=logits.device)
    counts = history.counts.to(logits.device)
    generated = counts > 0
    if options.repetition_penalty != 1.0:
        seen = generated | history.in_prompt.to(logits.device)
        penalized = torch.where(logits > 0, logits / options.repetition_penalty, logits * options.repetition_penalty)
        logits = torch.where(seen, penalized, logits)
    return logits - options.frequency_penalty * counts - options.presence_penalty * generated


MIN_TEMPERATURE = 0.01  # vLLM raises lower temperatures to this: below it, logits overflow to inf


def _sample(logits: torch.Tensor, options: SamplingOptions, generator: torch.Generator) -> torch.Tensor:
    """Greedy, or temperature → min_p → top_k → top_p → a draw (vLLM's order)."""
    if options.temperature == 0.0:
        return logits.argmax(dim=-1)
    logits = logits / max(options.temperature, MIN_TEMPERATURE)
    if options.min_p > 0.0:
        probs = torch.softmax(logits, dim=-1)
        logits = logits.masked_fill(probs < options.min_p * probs.max(dim=-1, keepdim=True).values, float("-inf"))
    if 0 < options.top_k < logits.shape[-1]:
        kth = logits.topk(options.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if options.top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        outside = sorted_probs.cumsum(dim=-1) - sorted_probs > options.top_p  # keep the smallest set reaching p
        sorted_probs[outside] = 0.0
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
