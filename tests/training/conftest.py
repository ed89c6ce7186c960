import dataclasses

import pytest

from training.config import load_config
from training.data.prepare import prepare_data

TINY = "training/configs/tiny.yaml"


def tiny_config(tmp_path, *overrides: str):
    """The tiny test config with its output folders moved under tmp_path."""
    return load_config(TINY, [f"train.out_dir={tmp_path / 'export'}", f"train.work_dir={tmp_path / 'work'}",
                              *overrides])


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory):
    """The tiny corpus, tokenizer and token files, built once per test session."""
    directory = tmp_path_factory.mktemp("tiny-data")
    config = load_config(TINY, [f"data.dir={directory}"])
    prepare_data(config.data)
    return directory


@pytest.fixture
def tiny(tmp_path, tiny_data_dir):
    config = tiny_config(tmp_path, f"data.dir={tiny_data_dir}")
    return dataclasses.replace(config)


@pytest.fixture(scope="session")
def exported_tiny(tmp_path_factory, tiny_data_dir):
    """A tiny checkpoint trained for a few steps and exported."""
    import torch

    from training.distributed import ProcessContext
    from training.trainer import Trainer

    out = tmp_path_factory.mktemp("tiny-export")
    config = tiny_config(out, f"data.dir={tiny_data_dir}", "train.max_steps=5", "train.eval_interval=100")
    trainer = Trainer(config, ProcessContext(rank=0, world=1, local_rank=0, device=torch.device("cpu")))
    trainer.fit()
    return trainer.export(out / "export")
