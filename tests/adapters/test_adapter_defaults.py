"""The training schedule and the defaults: warmup then cosine decay, the seed's table for large datasets."""
import pytest

from apps.adapters.services import job_config
from apps.core.errors import ApplicationError
from training.adapter_config import LARGE_DATASET, AdapterConfig, recommended_config


def test_the_learning_rate_warms_up_then_decays_to_its_floor():
    config = AdapterConfig(lr=1e-3, warmup_ratio=0.2, min_lr_ratio=0.1)

    rates = [config.lr_at(step, 10) for step in range(10)]

    assert rates[:2] == pytest.approx([1e-3 / 3, 2e-3 / 3])
    assert rates[2] == pytest.approx(1e-3)
    assert rates[-1] == pytest.approx(1e-4)
    assert all(earlier > later for earlier, later in zip(rates[2:], rates[3:]))
    assert AdapterConfig(lr=1e-3, schedule="constant").lr_at(7, 10) == 1e-3


def test_large_datasets_get_the_seed_s_table_and_demo_sized_ones_the_measured_defaults():
    assert recommended_config(900) == AdapterConfig()
    assert recommended_config(50_000) == LARGE_DATASET
    assert (LARGE_DATASET.lr, LARGE_DATASET.batch_sequences, LARGE_DATASET.epochs) == (2e-5, 256, 3)


def test_a_schedule_that_does_not_exist_is_refused_by_name():
    with pytest.raises(ApplicationError) as refused:
        job_config(values={"schedule": "linear"})

    assert refused.value.field == "config"
    assert "schedule must be one of cosine, constant" in str(refused.value)
