"""seq2seq.run_lock: one writer per model directory, refused at once, taken over after kill -9 (issue 17, item 1)."""

import os
import signal
import subprocess
import sys
import time

import pytest

from seq2seq.run_lock import LOCK_NAME, ModelDirLock, ModelDirLockedError

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
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(model_dir)], stdout=subprocess.PIPE, env=env,
                              text=True)
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
