"""Unknown config keys name the closest valid key (issue 17, item 8b), in YAML files and --set overrides."""

import pytest

from seq2seq.config import ConfigError, closest_key, config_from_dict, config_keys, load_config

BASE = {"data": {"path": "pairs.txt"}}


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "train.max_step=5",
            "unknown config key 'train.max_step'; did you mean 'train.max_steps'? (in override 'train.max_step=5')",
        ),
        (
            "trian.max_steps=5",
            "unknown config key 'trian.max_steps'; did you mean 'train.max_steps'? (in override 'trian.max_steps=5')",
        ),
        (
            "model.decoder.atention=luong",
            "unknown config key 'model.decoder.atention'; did you mean "
            "'model.decoder.attention'? (in override 'model.decoder.atention=luong')",
        ),
        ("turbo=1", "unknown config key 'turbo' (in override 'turbo=1')"),
    ],
)
def test_override_suggests_the_closest_key(override, message):
    with pytest.raises(ConfigError) as caught:
        config_from_dict(BASE, [override])
    assert str(caught.value) == message


def test_yaml_key_suggests_the_closest_key_and_lists_the_section(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("data:\n  path: pairs.txt\ntrain:\n  max_step: 5\n")
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    assert str(caught.value).startswith(
        f"{path}: unknown config key 'train.max_step'; did you mean 'train.max_steps'? (known keys here: batch_size, "
    )
    path.write_text("data:\n  path: pairs.txt\ntrain:\n  turbo: true\n")
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    assert str(caught.value).startswith(f"{path}: unknown config key 'train.turbo' (known keys here: batch_size, ")


def test_closest_key_matches_whole_keys_then_the_last_part():
    assert closest_key("decode.beamsize") == "decode.beam_size"
    assert closest_key("max_steps") == "train.max_steps"
    assert closest_key("learning_rat") == "train.learning_rate"
    assert closest_key("xyz") is None
    keys = config_keys()
    assert keys[:3] == ["task", "data", "data.format"] and "model.encoder.units" in keys and len(keys) == len(set(keys))
