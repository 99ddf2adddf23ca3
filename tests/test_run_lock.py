"""seq2seq.run_lock: one writer per model directory, refused at once, taken over after kill -9 (issue 17, item 1)."""

import os
import signal
import subprocess
import sys
import time

import pytest

from seq2seq.run_lock import LOCK_NAME, ModelDirLock, ModelDirLockedError

pytestmark = pytest.mark.reliability

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOLDER = """
import sys, time
from seq2seq.run_lock import ModelDirLock
with ModelDirLock(sys.argv[1], command="seq2seq train --model-dir demo"):
    print("locked", flush=True)
    time.sleep(120)
"""


def start_holder(model_dir):
    env = dict(os.environ, PYTHONPATH=ROOT)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(model_dir)], stdout=subprocess.PIPE, env=env, text=True
    )
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_second_writer_is_refused_at_once_naming_dir_and_holder_then_takes_over_after_kill_9(tmp_path):
    model_dir = tmp_path / "run"
    holder = start_holder(model_dir)
    try:
        started = time.monotonic()
        with pytest.raises(ModelDirLockedError) as caught:
            with ModelDirLock(model_dir):
                pass
        assert time.monotonic() - started < 1.0
        message = str(caught.value)
        assert "\n" not in message
        assert message.startswith(f"{model_dir} is in use by PID {holder.pid} on ")
        assert message.endswith("(seq2seq train --model-dir demo); wait for it to finish or stop it")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert holder.returncode == -signal.SIGKILL
    assert (model_dir / LOCK_NAME).exists()  # the dead holder's file stays; the kernel released its flock
    with ModelDirLock(model_dir, command="second") as lock:
        assert lock.path == os.path.join(str(model_dir), LOCK_NAME)
        assert f'"pid": {os.getpid()}' in (model_dir / LOCK_NAME).read_text()


def test_lock_is_released_on_exit_and_on_error(tmp_path):
    with pytest.raises(RuntimeError):
        with ModelDirLock(tmp_path):
            raise RuntimeError("training failed")
    with ModelDirLock(tmp_path):
        with pytest.raises(ModelDirLockedError):
            ModelDirLock(tmp_path).__enter__()  # same process, second descriptor: flock still refuses
    with ModelDirLock(tmp_path):
        pass


def test_locked_error_is_a_value_error():
    assert issubclass(ModelDirLockedError, ValueError)


def test_a_run_that_writes_nothing_leaves_nothing_and_a_real_run_keeps_its_files(tmp_path):
    new_dir = tmp_path / "new"
    with pytest.raises(ValueError):
        with ModelDirLock(new_dir):
            raise ValueError("test split empty")
    assert not new_dir.exists()  # created by the lock, held only the lock: removed
    with ModelDirLock(tmp_path / "run"):
        (tmp_path / "run" / "config.yaml").write_text("task: translation\n")
    assert sorted(os.listdir(tmp_path / "run")) == [LOCK_NAME, "config.yaml"]


def test_prepare_ignores_the_lock_file_of_a_fresh_directory(tmp_path):
    from seq2seq.config import config_from_dict
    from seq2seq.model_dir import ModelDirError, prepare

    config = config_from_dict({"data": {"path": "pairs.txt"}})
    with ModelDirLock(tmp_path / "run"):
        assert prepare(str(tmp_path / "run"), config) is False
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with ModelDirLock(tmp_path / "other"), pytest.raises(ModelDirError, match="is not empty and holds no config"):
        prepare(str(tmp_path / "other"), config)
