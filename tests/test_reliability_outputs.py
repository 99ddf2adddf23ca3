"""Failed writes never lose results and never end in a traceback; a failed run leaves no folder it created.

Real files: a directory where metrics.json should be, a file where the export's folder should be, data that
makes training fail before its first step. (As root, permission bits do not stop writes, so the failures are
made with file-type conflicts, which fail for every user.)
"""

from __future__ import annotations

import json
import os
import shutil

import pytest
import yaml
from conftest import write_synthetic_parallel

from seq2seq.cli import main

pytestmark = pytest.mark.reliability


def test_evaluate_prints_its_metrics_before_a_failed_save(synthetic_model_dir, tmp_path, capsys):
    model_dir = str(tmp_path / "model")
    shutil.copytree(synthetic_model_dir, model_dir)
    os.remove(os.path.join(model_dir, "metrics.json"))
    os.mkdir(os.path.join(model_dir, "metrics.json"))  # a directory where the file goes: the save fails
    assert main(["--quiet", "evaluate", "--model-dir", model_dir]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["sentences"] > 0  # the results were printed first
    errors = captured.err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: ") and "metrics.json" in errors[0]
    assert "Traceback" not in captured.err


def test_export_into_an_impossible_folder_is_one_error_line(synthetic_model_dir, tmp_path, capsys):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the export's parent folder should be")
    assert main(["--quiet", "export", "--model-dir", synthetic_model_dir, "--output", str(blocker / "export")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not_a_folder" in err and "Traceback" not in err
    assert blocker.read_text().startswith("a file")  # untouched


def test_a_run_that_fails_before_its_first_step_leaves_no_folder_it_created(tmp_path, capsys):
    source, target = write_synthetic_parallel(str(tmp_path), pairs=40)
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data": {"format": "parallel", "source_file": source, "target_file": target},
                "tokenizer": {"kind": "sentencepiece", "source_vocab_size": 5000, "target_vocab_size": 5000},
            }
        )
    )
    assert main(["train", str(config), "--model-dir", str(tmp_path / "new")]) == 2
    assert "tokenizer.source_vocab_size" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "new")
    # a folder that existed before keeps what it had, and gets nothing more than what a fixed run reuses
    (tmp_path / "old").mkdir()
    assert main(["train", str(config), "--model-dir", str(tmp_path / "old")]) == 2
    assert os.path.isdir(tmp_path / "old") and not os.path.exists(tmp_path / "old" / "checkpoints")
