"""Training progress that reads well in a log file: one plain line every N steps or seconds.

Keras draws its progress bar (``verbose=1``) on ``sys.stdout`` with backspaces, carriage returns and ANSI
colours (``keras/src/utils/progbar.py``), which is right for a terminal and wrong for a file: a redirected
100-step run held 7,556 backspaces and an 11,377-character line. :func:`fit_progress` keeps the bar on a
terminal and otherwise turns it off (``verbose=0``) and adds :class:`PlainProgressLogger`, which writes
lines such as::

    step 200/3200 loss 3.4121 8.1 steps/s 5210 tokens/s ETA 0:06:10
    step 1000/3200 val_loss 2.9870
"""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

import keras


def fit_verbosity(stream: TextIO | None = None) -> int:
    """The ``verbose`` value for ``model.fit``: 1 (the interactive bar) when ``stream`` is a terminal, else 0.

    Args:
      stream: the stream Keras draws its bar on; default ``sys.stdout`` (read at call time), which is
        where ``keras.utils.io_utils.print_msg`` writes.
    """
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return 1 if isatty is not None and isatty() else 0


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class PlainProgressLogger(keras.callbacks.Callback):
    """Writes one plain line (no control characters) every ``every_steps`` optimizer steps or ``every_seconds``.

    The step is the optimizer's total step (``model.optimizer.iterations``, so it continues across
    resumes). A line holds the step (``/total_steps`` when known), the loss Keras reports (the mean over
    the current round), steps per second, tokens per second when the logs carry ``tokens_key`` (mean
    tokens per batch), and the ETA when ``total_steps`` is known. Rates are measured from the first
    finished batch of this run, so graph tracing is not counted. At the end of each round with validation,
    a ``val_...`` line is written.

    Args:
      every_steps: int >= 1 or None: write when the step reaches a multiple of it (default 100).
      every_seconds: float > 0 or None: write when this many seconds passed since the last line (default 60).
      total_steps: int or None: the step training stops at (``train.max_steps``), for ``/total`` and the ETA.
      stream: text stream; default ``sys.stderr`` (read when training begins).
      tokens_key: log key holding the mean number of target tokens per batch (default ``"tokens"``).
      clock: seconds as a float (default ``time.monotonic``; tests pass a fake one).

    Raises:
      ValueError: both intervals None, or an interval not positive.
    """

    def __init__(
        self,
        every_steps: int | None = 100,
        every_seconds: float | None = 60.0,
        total_steps: int | None = None,
        stream: TextIO | None = None,
        tokens_key: str = "tokens",
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__()
        if every_steps is None and every_seconds is None:
            raise ValueError("PlainProgressLogger needs every_steps or every_seconds")
        if (every_steps is not None and every_steps < 1) or (every_seconds is not None and every_seconds <= 0):
            raise ValueError(
                f"intervals must be positive, got every_steps={every_steps}, every_seconds={every_seconds}"
            )
        self.every_steps, self.every_seconds, self.total_steps = every_steps, every_seconds, total_steps
        self.stream, self.tokens_key, self.clock = stream, tokens_key, clock

    def _step(self) -> int:
        return int(self.model.optimizer.iterations.numpy())

    def _write(self, text: str) -> None:
        stream = self.stream if self.stream is not None else sys.stderr
        stream.write(text + "\n")
        stream.flush()

    def on_train_begin(self, logs=None):
        self._origin = None  # (time, step, batches) at the first finished batch
        self._batches = 0
        self._last_time = self.clock()
        self._last_step = self._step()

    def on_train_batch_end(self, batch, logs=None):
        now, step = self.clock(), self._step()
        self._batches += 1
        if self._origin is None:
            self._origin = (now, step, self._batches)
        due_steps = self.every_steps is not None and step // self.every_steps > self._last_step // self.every_steps
        due_time = self.every_seconds is not None and now - self._last_time >= self.every_seconds
        if due_steps or due_time:
            self._write(self._line(step, now, logs or {}))
            self._last_time, self._last_step = now, step

    def _line(self, step: int, now: float, logs: dict) -> str:
        parts = [f"step {step}" + (f"/{self.total_steps}" if self.total_steps else "")]
        if "loss" in logs:
            parts.append(f"loss {float(logs['loss']):.4f}")
        start_time, start_step, start_batches = self._origin
        elapsed = now - start_time
        if elapsed > 0 and step > start_step:
            steps_per_second = (step - start_step) / elapsed
            parts.append(f"{steps_per_second:.1f} steps/s")
            if self.tokens_key in logs:
                batches_per_second = (self._batches - start_batches) / elapsed
                parts.append(f"{float(logs[self.tokens_key]) * batches_per_second:.0f} tokens/s")
            if self.total_steps:
                parts.append(f"ETA {_duration(max(self.total_steps - step, 0) / steps_per_second)}")
        return " ".join(parts)

    def on_epoch_end(self, epoch, logs=None):
        values = [f"{key} {float(value):.4f}" for key, value in (logs or {}).items() if key.startswith("val_")]
        if values:
            self._write(f"step {self._step()} " + " ".join(values))


def fit_progress(
    total_steps: int | None = None,
    every_steps: int | None = 100,
    every_seconds: float | None = 60.0,
    bar_stream: TextIO | None = None,
    log_stream: TextIO | None = None,
) -> tuple[int, list[keras.callbacks.Callback]]:
    """``(verbose, callbacks)`` for ``model.fit``: the Keras bar on a terminal, else plain lines.

    Args:
      total_steps: ``train.max_steps`` (for the ETA).
      every_steps, every_seconds: see :class:`PlainProgressLogger`.
      bar_stream: stream Keras's bar would go to (default ``sys.stdout``); see :func:`fit_verbosity`.
      log_stream: stream for the plain lines (default ``sys.stderr``).

    Returns:
      ``(1, [])`` when ``bar_stream`` is a terminal, else ``(0, [PlainProgressLogger(...)])``.
    """
    if fit_verbosity(bar_stream):
        return 1, []
    return 0, [PlainProgressLogger(every_steps, every_seconds, total_steps, log_stream)]
