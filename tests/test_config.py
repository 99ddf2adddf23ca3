"""Config loading: unknown keys, wrong types and impossible values are reported by key before any work."""

import pytest

from seq2seq.config import ConfigError, config_from_dict, load_config, resolve_path

BASE = {"data": {"path": "anki/spa-eng.txt"}}


def test_defaults_validate():
    config = config_from_dict(BASE)
    assert config.model.decoder.attention == "bahdanau"
    assert config.decode.beam_size == 5


@pytest.mark.parametrize(
    "override,key",
    [
        ("model.decoder.celll=gru", "model.decoder.celll"),
        ("trian.max_steps=3", "trian"),
        ("train.max_steps", "train.max_steps"),
    ],
)
def test_unknown_or_malformed_override_names_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config_from_dict(BASE, [override])


def test_unknown_key_in_file_names_file_and_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  path: x.tsv\nmodel:\n  decoder:\n    atention: luong\n")
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert str(path) in str(err.value) and "model.decoder.atention" in str(err.value)


@pytest.mark.parametrize(
    "override,fragment",
    [
        ("decode.beam_size=0", "decode.beam_size: got 0"),
        ("train.batch_size=-4", "train.batch_size: got -4"),
        ("model.decoder.cell=transformer", "allowed values: 'simple', 'gru', 'lstm', 'peephole_lstm'"),
        ("model.decoder.attention=dot", "allowed values: 'bahdanau', 'luong', 'none'"),
        ("train.max_steps=ten", "train.max_steps: got 'ten'; expected an integer"),
        ("train.max_steps=true", "expected an integer"),
        ("decode.n_best=9", "decode.n_best: got 9; must be <= decode.beam_size"),
        ("data.test_fraction=0.99", "data.test_fraction"),
        ("model.encoder.trainable=-1", "model.encoder.trainable"),
    ],
)
def test_impossible_values_name_key_and_allowed_values(override, fragment):
    with pytest.raises(ConfigError) as err:
        config_from_dict(BASE, [override])
    assert fragment in str(err.value)


def test_override_values_are_parsed_as_yaml():
    config = config_from_dict(
        BASE, ["train.max_steps=7", "train.clipnorm=null", "data.lowercase=true", "train.learning_rate=1e-4"]
    )
    assert config.train.max_steps == 7 and config.train.clipnorm is None and config.data.lowercase is True
    assert config.train.learning_rate == pytest.approx(1e-4)


def test_relative_paths_resolve_against_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQ2SEQ_DATA_DIR", str(tmp_path))
    config = config_from_dict(BASE)
    assert resolve_path(config, "anki/spa-eng.txt") == str(tmp_path / "anki/spa-eng.txt")
    assert resolve_path(config, "/abs/file") == "/abs/file"
    config = config_from_dict(BASE, ["data.data_dir=/elsewhere"])
    assert resolve_path(config, "a.txt") == "/elsewhere/a.txt"


def test_shipped_configs_load():
    import glob
    import os

    root = os.path.join(os.path.dirname(__file__), "..", "configs")
    paths = glob.glob(os.path.join(root, "**", "*.yaml"), recursive=True)
    assert paths
    for path in paths:
        load_config(path)
