import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from training.distributed import ProcessContext
from training.trainer import Trainer
from tests.model_service_process import REPO
from tests.training.conftest import TINY, tiny_config

SINGLE = ProcessContext(rank=0, world=1, local_rank=0, device=torch.device("cpu"))
LOSS_TOLERANCE = 1e-4  # distributed vs single process: float32 reductions in another order


def test_training_lowers_the_loss_and_exports_a_hugging_face_checkpoint(tiny):
    trainer = Trainer(tiny, SINGLE)

    history = trainer.fit()
    out = trainer.export(Path(tiny.train.out_dir))

    losses = [record["loss"] for record in history]
    assert len(losses) == tiny.train.max_steps
    assert statistics.mean(losses[-5:]) < losses[0] - 0.3
    assert set(history[-1]["validation"]) == {"stdlib", "domain"}
    assert all(load >= 1.0 for load in history[-1]["expert_load"]["max_over_mean"])
    model = AutoModelForCausalLM.from_pretrained(out)
    assert type(model).__name__ == "DeepseekV3ForCausalLM"
    assert next(model.parameters()).dtype == torch.bfloat16
    state = json.loads((out / "training_state.json").read_text())
    assert (state["kind"], state["steps"]) == ("pretrained", tiny.train.max_steps)
    assert state["trained_tokens"] == tiny.train.max_steps * 4 * 64


def test_resume_continues_the_loss_curve_exactly(tiny_data_dir, tmp_path):
    def config(name):
        return tiny_config(tmp_path / name, f"data.dir={tiny_data_dir}", "train.max_steps=12",
                           "train.save_interval=6", "train.eval_interval=100")

    straight = Trainer(config("straight"), SINGLE).fit()
    Trainer(config("interrupted"), SINGLE).fit(stop_at=6)
    resumed = Trainer(config("interrupted"), SINGLE).fit()  # a new process would do the same

    assert [r["step"] for r in resumed] == list(range(7, 13))
    assert [r["loss"] for r in resumed] == [r["loss"] for r in straight[6:]]


def run_launcher(launcher: str, tmp_path: Path, data_dir: Path) -> list[float]:
    common = ["--config", TINY, "--set", f"data.dir={data_dir}", "--set", "train.max_steps=4",
              "--set", "train.eval_interval=100", "--set", "train.save_interval=100",
              "--set", f"train.work_dir={tmp_path / launcher / 'work'}",
              "--set", f"train.out_dir={tmp_path / launcher / 'export'}"]
    bin_dir = Path(sys.executable).parent
    commands = {
        "single": [sys.executable, "-m", "training.pretrain", *common, "--set", "train.micro_batch_size=4"],
        "torchrun-ddp": [str(bin_dir / "torchrun"), "--nproc_per_node", "2", "-m", "training.pretrain", *common,
                         "--set", "train.micro_batch_size=2"],
        "deepspeed-zero3": [str(bin_dir / "deepspeed"), "--num_gpus", "2", "--master_port", "29533", "--module",
                            "training.pretrain", *common, "--deepspeed", "training/deepspeed/zero3_cpu.json",
                            "--set", "train.micro_batch_size=2"],
    }
    env = dict(os.environ, DS_ACCELERATOR="cpu", PYTHONPATH=str(REPO))
    result = subprocess.run(commands[launcher], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    metrics = (tmp_path / launcher / "work" / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in metrics]


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["deepspeed-zero3", "torchrun-ddp"])
def test_two_processes_match_the_single_process_loss(launcher, tiny_data_dir, tmp_path):
    single = run_launcher("single", tmp_path, tiny_data_dir)

    distributed = run_launcher(launcher, tmp_path, tiny_data_dir)

    assert len(distributed) == len(single) == 4
    assert max(abs(a - b) for a, b in zip(distributed, single)) <= LOSS_TOLERANCE
    assert (tmp_path / launcher / "export" / "model.safetensors").exists()
