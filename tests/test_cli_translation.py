"""The translation CLI end to end on a few hundred real Tatoeba pairs (skipped without ../shared/data)."""

import json
import os

import pytest
from conftest import shared_data_dir

from seq2seq.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "configs", "translation", "spa_en_demo.yaml")
TINY = [
    "data.limit=400",
    "train.max_steps=12",
    "train.eval_every=6",
    "train.checkpoint_every=6",
    "tokenizer.source_vocab_size=400",
    "tokenizer.target_vocab_size=400",
    "model.embedding.dim=16",
    "model.encoder.units=16",
    "model.decoder.units=16",
    "train.batch_size=32",
    "decode.beam_size=2",
    "train.max_minutes=null",
    "train.mixed_precision=null",
    "data.validation_fraction=0.1",
    "data.test_fraction=0.1",
]


def data_dir_or_skip():
    data_dir = shared_data_dir()
    if data_dir is None:
        pytest.skip("real data not found: set SEQ2SEQ_DATA_DIR or place ../shared/data next to the repo")
    return data_dir


def overrides(values):
    return [arg for value in values for arg in ("--set", value)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    data_dir = data_dir_or_skip()
    model_dir = str(tmp_path_factory.mktemp("cli") / "model")
    code = main(
        ["--quiet", "train", CONFIG, "--model-dir", model_dir, *overrides(TINY + [f"data.data_dir={data_dir}"])]
    )
    assert code == 0
    return model_dir, data_dir


def test_train_writes_a_self_contained_model_dir(trained):
    model_dir, _ = trained
    for name in (
        "config.yaml",
        "tokenizers/source.model",
        "tokenizers/target.model",
        "best.weights.h5",
        "model.keras",
        "metrics.json",
        "train_log.csv",
        "checkpoints/ckpt-12.weights.h5",
    ):
        assert os.path.exists(os.path.join(model_dir, name)), name
    metrics = json.load(open(os.path.join(model_dir, "metrics.json")))["test"]
    assert metrics["steps"] == 12 and metrics["sentences"] > 0
    assert "nrefs:1|case:mixed" in metrics["sacrebleu_signature"] and 0.0 <= metrics["sacrebleu"] <= 100.0
    assert metrics["bleu"]["score"] == metrics["sacrebleu"] and "case:lc" in metrics["bleu_lc"]["signature"]
    assert "nc:6|nw:0" in metrics["chrf"]["signature"] and "ter" in metrics and "bleu_wmt_lc_norm_tok" not in metrics
    assert 0.0 <= metrics["nltk_bleu"] <= 100.0


def test_translate_prints_one_line_per_input(trained, capsys, monkeypatch):
    model_dir, _ = trained
    capsys.readouterr()
    assert main(["--quiet", "translate", "--model-dir", model_dir, "Hola.", "", "¿Dónde está el gato?"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("Buenos días.\nGracias.\n"))
    assert main(["--quiet", "translate", "--model-dir", model_dir]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_evaluate_prints_metrics_json(trained, capsys):
    model_dir, _ = trained
    capsys.readouterr()
    assert main(["--quiet", "evaluate", "--model-dir", model_dir, "--split", "validation", "--beam-size", "1"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["split"] == "validation" and metrics["decode"]["beam_size"] == 1
    assert set(json.load(open(os.path.join(model_dir, "metrics.json")))) == {"test", "validation"}


def test_train_again_resumes_from_last_step(trained, capsys):
    model_dir, data_dir = trained
    capsys.readouterr()
    code = main(
        [
            "--quiet",
            "train",
            CONFIG,
            "--model-dir",
            model_dir,
            *overrides(TINY + [f"data.data_dir={data_dir}", "train.max_steps=18"]),
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out.split('\n{"source"')[0])
    assert report["steps"] == 18


def test_incompatible_config_change_is_refused(trained, capsys):
    model_dir, data_dir = trained
    code = main(
        [
            "--quiet",
            "train",
            CONFIG,
            "--model-dir",
            model_dir,
            *overrides(TINY + [f"data.data_dir={data_dir}", "model.decoder.units=32"]),
        ]
    )
    assert code == 2
    assert "model.decoder.units: saved 16, now 32" in capsys.readouterr().err
    # data.limit made the splits and the tokenizers' training text: changing it is refused too
    code = main(
        [
            "--quiet",
            "train",
            CONFIG,
            "--model-dir",
            model_dir,
            *overrides(TINY + [f"data.data_dir={data_dir}", "data.limit=500"]),
        ]
    )
    assert code == 2
    assert "data.limit: saved 400, now 500" in capsys.readouterr().err


def test_translate_on_a_folder_that_is_not_a_model_dir(tmp_path, capsys):
    assert main(["translate", "--model-dir", str(tmp_path), "Hola."]) == 2
    assert "is not a seq2seq model directory" in capsys.readouterr().err


def test_missing_data_file_names_the_path_and_the_variable(tmp_path, capsys):
    code = main(["train", CONFIG, "--model-dir", str(tmp_path / "m"), "--set", f"data.data_dir={tmp_path}"])
    assert code == 2
    err = capsys.readouterr().err
    assert "spa-eng.txt" in err and "SEQ2SEQ_DATA_DIR" in err
