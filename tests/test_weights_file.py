"""seq2seq.weights_file: a full disk while saving weights is an ordinary OSError, no segfault (issue 17, item 3)."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from seq2seq.compat import weights_h5_bytes
from seq2seq.weights_file import save_weights_atomically

pytestmark = pytest.mark.reliability

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_model(seed):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(2)])
    model.compile(keras.optimizers.Adam(), "mse")
    model.train_on_batch(np.ones((2, 3), "float32"), np.zeros((2, 2), "float32"))  # builds the optimizer state
    return model


def test_in_memory_weights_file_loads_back_like_save_weights(tmp_path):
    model = tiny_model(0)
    path = str(tmp_path / "best.weights.h5")
    save_weights_atomically(model, path)
    assert os.listdir(tmp_path) == ["best.weights.h5"]
    for reference_path, loaded in ((path, tiny_model(1)), (str(tmp_path / "ref.weights.h5"), tiny_model(2))):
        if reference_path != path:
            model.save_weights(reference_path)
        loaded.load_weights(reference_path)
        for a, b in zip(model.weights + model.optimizer.variables, loaded.weights + loaded.optimizer.variables):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert weights_h5_bytes(model)[:8] == b"\x89HDF\r\n\x1a\n"
    with pytest.raises(ValueError, match="must end with .weights.h5"):
        save_weights_atomically(model, str(tmp_path / "best.h5"))


FILL_DISK = """
import os, sys
from seq2seq.os_errors import describe_os_error
from seq2seq.weights_file import save_weights_atomically
import keras
model = keras.Sequential([keras.Input((100,)), keras.layers.Dense(2000), keras.layers.Dense(10)])  # 0.9 MB a file
try:
    for step in range(10):
        save_weights_atomically(model, os.path.join(sys.argv[1], f"ckpt-{step}.weights.h5"))
except OSError as err:
    print("error:", describe_os_error(err, path=sys.argv[1]))
"""


@pytest.fixture
def full_disk(tmp_path):
    """A 2 MiB tmpfs (needs root and permission to mount; skipped otherwise)."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def test_full_disk_gives_one_error_line_exit_0_and_intact_checkpoints(full_disk):
    done = subprocess.run(
        [sys.executable, "-c", FILL_DISK, str(full_disk)],
        capture_output=True,
        text=True,
        timeout=240,
        env=dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert done.returncode == 0, done.stderr[-2000:]  # model.save_weights here: h5py traceback, then exit -11
    assert "Exception ignored" not in done.stderr and "Traceback" not in done.stderr
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("error:")]
    assert line == (
        f"error: no space left on device at {full_disk / 'ckpt-2.weights.h5'}: free some space or use "
        "a folder on another disk, then run the command again (files written before are intact)"
    )
    assert sorted(os.listdir(full_disk)) == ["ckpt-0.weights.h5", "ckpt-1.weights.h5"]  # no temporary left
    model = keras.Sequential([keras.Input((100,)), keras.layers.Dense(2000), keras.layers.Dense(10)])
    model.load_weights(str(full_disk / "ckpt-1.weights.h5"))
