import pytest

from training.config import ConfigError, load_config

TINY = "training/configs/tiny.yaml"


def test_overrides_replace_fields_with_typed_values():
    config = load_config(TINY, ["train.max_steps=7", "train.lr=1e-3", "data.sources=[stdlib]"])

    assert config.train.max_steps == 7
    assert config.train.lr == 0.001
    assert config.data.sources == ("stdlib",)


@pytest.mark.parametrize("override,field", [
    ("model.kv_lora_rank=256", "model.kv_lora_rank"),
    ("model.qk_rope_head_dim=32", "model.qk_rope_head_dim"),
    ("train.no_such_field=1", "train.no_such_field"),
    ("train.max_steps=ten", "train.max_steps"),
    ("model.vocab_size=1024", "model.vocab_size"),
])
def test_bad_configs_are_rejected_naming_the_field(override, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_config(TINY, [override])


def test_a_config_not_meant_for_serving_may_use_other_latent_widths():
    config = load_config(TINY, ["serve=false", "model.kv_lora_rank=256"])

    assert config.model.kv_lora_rank == 256


def test_every_shipped_config_loads():
    from pathlib import Path

    for path in sorted(Path("training/configs").glob("*.yaml")):
        load_config(path)
