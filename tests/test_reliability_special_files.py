"""Special files as data, from the command line: refused at once with the path and its kind, never a hang."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

pytestmark = pytest.mark.reliability

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "directory"])
def test_train_on_a_special_file_is_one_error_line(tmp_path, kind):
    if kind == "fifo":
        path = str(tmp_path / "pairs.tsv")
        os.mkfifo(path)  # nobody writes to it: reading it would block forever
    elif kind == "dev_zero":
        path = "/dev/zero"  # endless: reading it would fill the memory
    else:
        path = str(tmp_path / "a_folder")
        os.mkdir(path)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"data": {"format": "anki", "path": path}}))
    done = subprocess.run(
        [sys.executable, "-m", "seq2seq.cli", "train", str(config), "--model-dir", str(tmp_path / "model")],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT),
    )
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and path in errors[0] and "not a regular file" in errors[0], done.stderr[-600:]
    assert "Traceback" not in done.stderr
    assert not os.path.exists(tmp_path / "model")
