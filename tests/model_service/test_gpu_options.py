"""The GPU-facing options (--tensor-parallel-size, --quantization, --gpu-memory-utilization) reach vLLM's
engine arguments unchanged; the transformers fallback, which has neither, says so."""
import asyncio
import dataclasses
from concurrent.futures import ThreadPoolExecutor

import pytest

from model_service.__main__ import QUANTIZATION_CHOICES, config_from_args, parse_args
from model_service.backends import backend_start
from model_service.backends.vllm_backend import VllmBackend, VllmOptions
from model_service.checkpoint import Checkpoint


def serve_args(*extra: str):
    return parse_args(["serve", "--checkpoint", "ckpt", *extra])


def test_the_command_line_carries_the_gpu_options_into_the_config():
    config = config_from_args(serve_args("--tensor-parallel-size", "2", "--quantization", "fp8",
                                         "--gpu-memory-utilization", "0.9"))

    assert (config.tensor_parallel_size, config.quantization, config.gpu_memory_utilization) == (2, "fp8", 0.9)


def test_by_default_one_device_and_the_checkpoint_decides_quantization():
    config = config_from_args(serve_args())

    assert (config.tensor_parallel_size, config.quantization, config.gpu_memory_utilization) == (1, None, 0.85)


@pytest.mark.parametrize("size", ["0", "-1", "two"])
def test_a_tensor_parallel_size_below_one_is_refused(size, capsys):
    with pytest.raises(SystemExit):
        serve_args("--tensor-parallel-size", size)
    assert "--tensor-parallel-size" in capsys.readouterr().err


def test_an_unknown_quantization_is_refused(capsys):
    with pytest.raises(SystemExit):
        serve_args("--quantization", "int3")
    assert "--quantization" in capsys.readouterr().err


def test_every_quantization_offered_is_one_vllm_knows():
    from vllm.model_executor.layers.quantization import QUANTIZATION_METHODS

    assert set(QUANTIZATION_CHOICES) <= set(QUANTIZATION_METHODS)


def test_vllm_gets_the_options_as_its_engine_arguments(tiny_checkpoint):
    backend = VllmBackend(Checkpoint.load(tiny_checkpoint),
                          VllmOptions(tensor_parallel_size=4, quantization="fp8", gpu_memory_utilization=0.7))

    args = dataclasses.asdict(backend.engine_args())

    assert (args["tensor_parallel_size"], args["quantization"], args["gpu_memory_utilization"]) == (4, "fp8", 0.7)
    assert (args["dtype"], args["model"]) == ("bfloat16", str(tiny_checkpoint.resolve()))


def test_the_transformers_backend_says_it_runs_unquantized_on_one_device(tiny_checkpoint):
    config = config_from_args(parse_args(["serve", "--checkpoint", str(tiny_checkpoint), "--backend", "transformers",
                                          "--tensor-parallel-size", "2", "--quantization", "fp8"]))

    async def start_and_stop():
        started = await backend_start(Checkpoint.load(tiny_checkpoint), config)
        await started.backend.stop()
        return started.degraded_reason

    with ThreadPoolExecutor(max_workers=1) as pool:  # its own event loop, whatever runs in this thread
        reason = pool.submit(asyncio.run, start_and_stop()).result()

    assert reason == ("transformers backend chosen in the configuration: no batching across requests"
                      " (on one device, unquantized: tensor parallelism and quantization are vLLM's)")
