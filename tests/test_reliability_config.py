"""Reliability: bad configs and bad model directories give one clear error before any work starts.

tests/test_config.py covers the key-by-key validation messages; these tests check the CLI end of it (one
`error:` line, exit status 2, nothing created), the vocabulary-size case that can only be seen once the
data is read, and `translate` / `evaluate` / `export` on folders that are not (complete) model directories.
"""

from __future__ import annotations

import os

import pytest
import yaml
from conftest import write_synthetic_parallel

from seq2seq import model_dir as md
from seq2seq.cli import main
from seq2seq.config import config_from_dict
from seq2seq.tasks import translation

pytestmark = pytest.mark.reliability


@pytest.fixture
def data(tmp_path):
    return write_synthetic_parallel(str(tmp_path), pairs=120)


def values(data, **tokenizer):
    source, target = data
    return {
        "data": {"format": "parallel", "source_file": source, "target_file": target},
        "tokenizer": {"kind": "sentencepiece", "source_vocab_size": 286, "target_vocab_size": 286, **tokenizer},
        "model": {"embedding": {"dim": 8}, "encoder": {"units": 8}, "decoder": {"units": 8}},
        "train": {"max_steps": 2},
    }


def run_train(tmp_path, config_values, capsys, *extra):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config_values) if isinstance(config_values, dict) else config_values)
    code = main(["--quiet", "train", str(path), "--model-dir", str(tmp_path / "model"), *extra])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--set", "train.batchsize=8"], "unknown config key 'train.batchsize'"),
        (["--set", "decode.beam_size=0"], "decode.beam_size: got 0; must be a positive integer (>= 1)"),
        (["--set", "tokenizer.source_vocab_size=-5"], "tokenizer.source_vocab_size: got -5; must be a positive"),
        (["--set", "model.encoder.units=[8, 8]"], "model.encoder.units: got [8, 8]; expected an integer"),
        (["--set", "model.encoder.cell=rnn"], "allowed values: 'simple', 'gru', 'lstm', 'peephole_lstm'"),
        (["--set", "train.learning_rate=fast"], "train.learning_rate: got 'fast'; expected a number"),
        (["--set", "train=5"], "train: expected a mapping of keys, got 5"),
    ],
)
def test_bad_config_is_one_error_line_naming_the_key_and_nothing_is_created(tmp_path, capsys, data, extra, fragment):
    code, err = run_train(tmp_path, values(data), capsys, *extra)
    assert code == 2
    assert err.startswith("error: ") and fragment in err and len(err.strip().splitlines()) == 1
    assert not os.path.exists(tmp_path / "model")


def test_unknown_key_in_file_lists_the_known_keys(tmp_path, capsys, data):
    config = values(data)
    config["decode"] = {"beamsize": 4}
    code, err = run_train(tmp_path, config, capsys)
    assert (
        code == 2
        and (
            "unknown config key 'decode.beamsize'; did you mean 'decode.beam_size'? "
            "(known keys here: batch_size, beam_size"
        )
        in err
    )
    assert not os.path.exists(tmp_path / "model")


def test_yaml_syntax_error_names_file_and_line(tmp_path, capsys):
    code, err = run_train(tmp_path, "data:\n  format: parallel\n  source_file: [unclosed\n", capsys)
    assert code == 2 and "config.yaml: invalid YAML" in err and "line 4" in err
    assert not os.path.exists(tmp_path / "model")


def test_vocabulary_larger_than_the_data_allows_names_the_key_before_training(tmp_path, capsys, data):
    code, err = run_train(tmp_path, values(data, source_vocab_size=5000), capsys)
    assert code == 2
    assert err.startswith("error: tokenizer.source_vocab_size: vocab_size=5000 is too large")
    assert "the maximum possible size is" in err
    model_dir = tmp_path / "model"
    # Reported before any training: no checkpoint, weights or model file exists.
    assert not os.path.exists(model_dir / "checkpoints") and not os.path.exists(model_dir / "best.weights.h5")
    # The folder holds no trained weights, so a corrected config starts afresh in it (not "config changed").
    fixed = config_from_dict(values(data))
    assert md.prepare(str(model_dir), fixed) is False
    assert md.read_config(str(model_dir)).tokenizer.source_vocab_size == 286
    source_tok, _ = translation.train_tokenizers(fixed, str(model_dir / md.TOKENIZER_DIR))
    assert source_tok.vocab_size == 286


def test_vocabulary_too_small_names_the_key_and_the_minimum(tmp_path, capsys, data):
    code, err = run_train(tmp_path, values(data, target_vocab_size=40), capsys)
    assert code == 2 and err.startswith("error: tokenizer.target_vocab_size: vocab_size=40 is too small")
    assert "the minimum possible size is" in err


def test_incompatible_change_of_a_trained_directory_is_still_refused(tmp_path, data):
    model_dir = str(tmp_path / "model")
    config = config_from_dict(values(data))
    md.prepare(model_dir, config)
    os.makedirs(os.path.join(model_dir, "checkpoints"))
    open(os.path.join(model_dir, "checkpoints", "ckpt-2.weights.h5"), "wb").close()
    with pytest.raises(md.ModelDirError, match=r"tokenizer\.target_vocab_size: saved 286, now 300"):
        md.prepare(model_dir, config_from_dict(values(data, target_vocab_size=300)))
    assert md.read_config(model_dir).tokenizer.target_vocab_size == 286  # untouched


# --------------------------------------------------------------------------------------------------
# translate / evaluate / export on folders that are not (complete) model directories


@pytest.mark.parametrize("command", [["translate", "Hola."], ["evaluate"], ["export"]])
@pytest.mark.parametrize(
    "folder, fragment",
    [
        ("missing", "does not exist; train one with"),
        ("empty", "is not a seq2seq model directory (no config.yaml)"),
        ("unrelated", "is not a seq2seq model directory (no config.yaml)"),
        ("untrained", "has no tokenizers yet"),
        ("broken_config", "config.yaml: unknown config key 'train.turbo'"),
    ],
)
def test_commands_on_a_folder_that_is_not_a_trained_model_dir(tmp_path, capsys, data, command, folder, fragment):
    path = tmp_path / folder
    if folder != "missing":
        path.mkdir()
    if folder == "unrelated":
        (path / "notes.txt").write_text("holiday photos")
        (path / "saved_model.pb").write_bytes(b"\0")
    if folder == "untrained":  # training stopped before the tokenizers were written
        md.prepare(str(path), config_from_dict(values(data)))
    if folder == "broken_config":
        (path / "config.yaml").write_text("train:\n  turbo: true\n")
    args = [command[0], "--model-dir", str(path), *command[1:]]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and fragment in err and "Traceback" not in err
    assert not os.path.exists(path / "export")


def test_export_of_a_directory_without_weights_names_what_is_missing(tmp_path, capsys, data):
    path = tmp_path / "model"
    config = config_from_dict(values(data))
    md.prepare(str(path), config)
    translation.train_tokenizers(config, str(path / md.TOKENIZER_DIR))
    assert main(["export", "--model-dir", str(path)]) == 2
    assert "has no trained weights yet (no best.weights.h5, no checkpoints)" in capsys.readouterr().err
    assert not os.path.exists(path / "export")


def test_translate_with_a_saved_model_path_that_is_not_an_export(tmp_path, capsys):
    assert main(["translate", "--saved-model", str(tmp_path), "Hola."]) == 2
    assert "is not a SavedModel directory (no saved_model.pb)" in capsys.readouterr().err


def test_training_into_an_unrelated_non_empty_folder_is_refused(tmp_path, capsys, data):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "thesis.tex").write_text("do not delete")
    code, err = run_train(tmp_path, values(data), capsys)
    assert code == 2 and "is not empty and holds no config.yaml" in err
    assert os.listdir(tmp_path / "model") == ["thesis.tex"]
