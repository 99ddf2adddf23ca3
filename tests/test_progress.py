"""seq2seq.progress: plain progress lines in redirected logs, the Keras bar on a terminal (issue 17, item 6)."""

import io
import os
import pty
import subprocess
import sys

import numpy as np
import pytest

from seq2seq.training.progress import PlainProgressLogger, fit_progress, fit_verbosity

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_FIT = """
import numpy as np, keras
from seq2seq.training.progress import fit_progress
keras.utils.set_random_seed(0)
x = np.random.rand(64, 4).astype("float32"); y = x.sum(axis=1, keepdims=True)
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
model.compile("sgd", "mse")
verbose, callbacks = fit_progress(total_steps=60, every_steps=10, every_seconds=None)
data = __import__("tensorflow").data.Dataset.from_tensor_slices((x, y)).batch(8).repeat()
model.fit(data, epochs=3, shuffle=False, steps_per_epoch=20, validation_data=(x, y), callbacks=callbacks,
          verbose=verbose)
print("verbose", verbose)
"""


def test_redirected_fit_writes_plain_lines_without_control_characters(tmp_path):
    log = tmp_path / "train.log"
    with open(log, "wb") as out:
        subprocess.run(
            [sys.executable, "-c", TINY_FIT],
            stdout=out,
            stderr=subprocess.STDOUT,
            check=True,
            env=dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3"),
            timeout=240,
        )
    text = log.read_text()
    assert not any(c in text for c in "\b\r\x1b"), text
    lines = [line for line in text.splitlines() if line.startswith("step ")]
    assert [line.split(" loss ")[0] for line in lines if "val_loss" not in line] == [
        f"step {step}/60" for step in range(10, 61, 10)
    ]
    assert [line.split(" val_loss ")[0] for line in lines if "val_loss" in line] == ["step 20", "step 40", "step 60"]
    assert len(lines) == 9
    assert all(" steps/s ETA 0:00:" in line for line in lines if "val_loss" not in line)
    assert "verbose 0" in text
    assert max(len(line) for line in lines) < 80


def test_fit_verbosity_is_1_on_a_terminal_and_0_for_files_and_pipes(tmp_path):
    leader, follower = pty.openpty()
    try:
        with os.fdopen(follower, "w", closefd=False) as terminal:
            assert fit_verbosity(terminal) == 1
            assert fit_progress(100, bar_stream=terminal) == (1, [])
    finally:
        os.close(leader)
        os.close(follower)
    with open(tmp_path / "log", "w") as f:
        assert fit_verbosity(f) == 0
        verbose, callbacks = fit_progress(100, bar_stream=f)
        assert verbose == 0 and [type(c) for c in callbacks] == [PlainProgressLogger]
    assert fit_verbosity(io.StringIO()) == 0


class FakeIterations:
    def __init__(self):
        self.value = 0

    def numpy(self):
        return np.int64(self.value)


class FakeModel:
    def __init__(self):
        self.optimizer = type("Optimizer", (), {})()
        self.optimizer.iterations = FakeIterations()


def test_lines_every_n_seconds_with_rates_tokens_and_eta():
    now = [0.0]
    out = io.StringIO()
    logger = PlainProgressLogger(
        every_steps=None, every_seconds=10.0, total_steps=1000, stream=out, clock=lambda: now[0]
    )
    model = FakeModel()
    model.optimizer.iterations.value = 200  # resumed at step 200
    logger.set_model(model)
    logger.on_train_begin()
    for batch in range(1, 41):  # 1 step per batch, 0.5 s per step, 100 tokens per batch
        now[0] += 0.5
        model.optimizer.iterations.value += 1
        logger.on_train_batch_end(batch, {"loss": 2.0 / batch, "tokens": 100.0})
    logger.on_epoch_end(0, {"loss": 0.5, "val_loss": 1.25, "val_accuracy": 0.5})
    assert out.getvalue().splitlines() == [
        "step 220/1000 loss 0.1000 2.0 steps/s 200 tokens/s ETA 0:06:30",
        "step 240/1000 loss 0.0500 2.0 steps/s 200 tokens/s ETA 0:06:20",
        "step 240 val_loss 1.2500 val_accuracy 0.5000",
    ]


def test_intervals_must_be_given_and_positive():
    with pytest.raises(ValueError, match="needs every_steps or every_seconds"):
        PlainProgressLogger(None, None)
    with pytest.raises(ValueError, match="intervals must be positive"):
        PlainProgressLogger(0, None)
