"""`seq2seq evaluate` on given files, re-checkable with the sacreBLEU command line; model dirs that evaluate
from where they are; the CLI's guards (model-dir lock, bad stdin lines, checks before training).

Uses the session's synthetic translation model (tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import yaml
from conftest import write_synthetic_parallel

from seq2seq.cli import main

pytestmark = pytest.mark.reliability

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)


def _files(tmp_path):
    sources = ["a b c .", "b a .", "c c a b .", "a a ."]
    references = ["A B C .", "B A .", "C C A B .", "A A ."]
    (tmp_path / "src.txt").write_text("\n".join(sources) + "\n", encoding="utf-8")
    (tmp_path / "ref.txt").write_text("\n".join(references) + "\n", encoding="utf-8")
    return str(tmp_path / "src.txt"), str(tmp_path / "ref.txt")


def test_evaluate_given_files_matches_the_sacrebleu_command_line(synthetic_model_dir, tmp_path, capsys):
    model_dir = str(tmp_path / "model")
    shutil.copytree(synthetic_model_dir, model_dir)
    source, reference = _files(tmp_path)
    hypotheses = str(tmp_path / "hyp.txt")
    assert (
        main(
            [
                "--quiet",
                "evaluate",
                "--model-dir",
                model_dir,
                "--source",
                source,
                "--references",
                reference,
                "--hypotheses",
                hypotheses,
                "--per-sentence",
                "--wmt-language",
                "de",
            ]
        )
        == 0
    )
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["sentences"] == 4 and len(open(hypotheses, encoding="utf-8").read().splitlines()) == 4
    assert len(metrics["per_sentence"]["scores"]) == 4 and "bleu_wmt_lc_norm_tok" in metrics
    done = subprocess.run(
        [sys.executable, "-m", "sacrebleu", reference, "-i", hypotheses, "-m", "bleu", "chrf", "ter", "-f", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
    )
    assert done.returncode == 0, done.stderr
    reported = {entry["name"]: entry for entry in json.loads(done.stdout)}
    assert reported["BLEU"]["score"] == round(metrics["bleu"]["score"], 1)
    assert reported["BLEU"]["signature"] == metrics["bleu"]["signature"]
    assert reported["chrF2"]["score"] == round(metrics["chrf"]["score"], 1)
    saved = json.load(open(os.path.join(model_dir, "metrics.json"), encoding="utf-8"))
    assert saved[f"file:{source}"]["bleu"] == metrics["bleu"]
    # a reference file of another length is one error line naming it
    (tmp_path / "short.txt").write_text("A B C .\n", encoding="utf-8")
    assert (
        main(["evaluate", "--model-dir", model_dir, "--source", source, "--references", str(tmp_path / "short.txt")])
        == 2
    )
    assert "short.txt" in capsys.readouterr().err


def test_model_dir_evaluates_without_the_data_variable_and_after_a_move(tmp_path, monkeypatch, capsys, caplog):
    data = tmp_path / "data"
    data.mkdir()
    write_synthetic_parallel(str(data), pairs=80)
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data": {
                    "format": "parallel",
                    "source_file": "train.src",
                    "target_file": "train.tgt",
                    "test_fraction": 0.2,
                    "validation_fraction": 0.1,
                },
                "tokenizer": {"kind": "word", "source_vocab_size": 40, "target_vocab_size": 40},
                "model": {"embedding": {"dim": 8}, "encoder": {"units": 8}, "decoder": {"units": 8}},
                "train": {"batch_size": 8, "max_steps": 2, "eval_every": 2, "checkpoint_every": 2},
                "decode": {"beam_size": 1, "max_length": 6},
            }
        )
    )
    monkeypatch.setenv("SEQ2SEQ_DATA_DIR", str(data))
    assert main(["--quiet", "train", str(config), "--model-dir", str(tmp_path / "m")]) == 0
    monkeypatch.delenv("SEQ2SEQ_DATA_DIR")
    shutil.move(str(tmp_path / "m"), str(tmp_path / "moved"))
    capsys.readouterr()
    assert main(["--quiet", "evaluate", "--model-dir", str(tmp_path / "moved")]) == 0
    assert json.loads(capsys.readouterr().out)["sentences"] > 0
    # the data changed since training: evaluation warns, naming the file
    with open(data / "train.tgt", "a", encoding="utf-8") as handle:
        handle.write("x\n")
    with open(data / "train.src", "a", encoding="utf-8") as handle:
        handle.write("x\n")
    assert main(["evaluate", "--model-dir", str(tmp_path / "moved")]) == 0
    assert "the data changed since this model was trained" in caplog.text and "train.tgt" in caplog.text


def test_zero_test_fraction_is_refused_before_training(tmp_path, capsys):
    source, target = write_synthetic_parallel(str(tmp_path), pairs=40)
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {"data": {"format": "parallel", "source_file": source, "target_file": target, "test_fraction": 0.0}}
        )
    )
    assert main(["train", str(config), "--model-dir", str(tmp_path / "m")]) == 2
    assert "data.test_fraction: 0 leaves the test split empty" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "m")


def test_second_train_on_a_locked_model_dir_is_refused_at_once(tmp_path, capsys):
    model_dir = tmp_path / "m"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import sys, time
        from seq2seq.run_lock import ModelDirLock
        with ModelDirLock({str(model_dir)!r}, command="seq2seq train holder"):
            print("locked", flush=True)
            time.sleep(60)
    """),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        source, target = write_synthetic_parallel(str(tmp_path), pairs=40)
        config = tmp_path / "config.yaml"
        config.write_text(
            yaml.safe_dump({"data": {"format": "parallel", "source_file": source, "target_file": target}})
        )
        assert main(["train", str(config), "--model-dir", str(model_dir)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(model_dir) in err[0] and str(holder.pid) in err[0]
    finally:
        holder.kill()
        holder.wait()


def test_a_bad_stdin_line_is_named_and_the_others_translated(synthetic_model_dir):
    done = subprocess.run(
        [sys.executable, "-m", "seq2seq.cli", "--quiet", "translate", "--model-dir", synthetic_model_dir],
        input=b"a b .\n\xff\xfe bad\nb a .\n",
        capture_output=True,
        timeout=300,
        env=ENV,
    )
    assert done.returncode == 1
    assert len(done.stdout.decode().splitlines()) == 2
    errors = [line for line in done.stderr.decode().splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "stdin:2" in errors[0]
