"""Teacher-forced training: optimizer, compile, checkpoints with resume, callbacks, `fit`.

Checkpoints are `checkpoints/ckpt-<step>.weights.h5` in the model directory: model weights and the optimizer
state (its step counter included), each written to a temporary file and renamed, so a crash never leaves a
half-written checkpoint that later loads. Running `train` again on the same directory restores the newest
one and continues from its step. Data position policy: the input pipeline is restarted on resume and
reshuffled with the seed `train.seed + step`, so a resumed run sees a fresh permutation rather than the
exact remaining examples of the interrupted pass.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from seq2seq.config import TrainConfig
from seq2seq.errors import NonFiniteLossError
from seq2seq.model_dir import (
    BEST_RECORD,
    BEST_WEIGHTS,
    CHECKPOINT_DIR,
    atomic_save_weights,
    list_checkpoints,
    write_json,
)
from seq2seq.training.distribute import write_dir
from seq2seq.training.losses import MaskedAccuracy, MaskedCrossEntropy
from seq2seq.training.optimizers import FusedAdam
from seq2seq.training.progress import fit_progress

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------
# Optimizer


def make_optimizer(train: TrainConfig) -> keras.optimizers.Optimizer:
    """Adam (Kingma & Ba, 2015; `FusedAdam`, one TF kernel per variable) with gradient clipping by global norm
    and the configured LR schedule.

    `constant`: `learning_rate` after a linear warm-up of `warmup_steps`; `cosine`: warm-up, then cosine
    decay to 0 at `max_steps` (Loshchilov & Hutter, 2017).
    """
    if train.lr_schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if train.warmup_steps else train.learning_rate,
            decay_steps=max(1, train.max_steps - train.warmup_steps),
            warmup_target=train.learning_rate if train.warmup_steps else None,
            warmup_steps=train.warmup_steps,
        )
    elif train.warmup_steps:
        lr = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0,
            decay_steps=1,
            alpha=1.0,
            warmup_target=train.learning_rate,
            warmup_steps=train.warmup_steps,
        )
    else:
        lr = train.learning_rate
    return FusedAdam(learning_rate=lr, global_clipnorm=train.clipnorm)


def compile_model(model: keras.Model, train: TrainConfig) -> keras.Model:
    """Compile `model` with the masked loss, masked accuracy and the optimizer; builds optimizer state."""
    model.compile(
        optimizer=make_optimizer(train),
        loss=MaskedCrossEntropy(train.label_smoothing),
        metrics=[MaskedAccuracy()],
        jit_compile=train.jit_compile,
    )
    model.optimizer.build(model.trainable_variables)
    return model


# --------------------------------------------------------------------------------------------------
# Checkpoints


def _with_known_length(dataset):
    """`dataset` (finite) with its number of batches declared, counted once if TensorFlow does not know it.

    Keras evaluates a dataset of unknown length until it runs out and then warns "Your input ran out of
    data" as if training had been cut short; declaring the length (`assert_cardinality`) avoids that.
    Counting reads the validation pipeline once (it is small and cached after tokenisation).
    None stays None.
    """
    if dataset is None or int(dataset.cardinality()) != int(tf.data.UNKNOWN_CARDINALITY):
        return dataset
    batches = int(dataset.reduce(np.int64(0), lambda count, _: count + 1))
    return dataset.apply(tf.data.experimental.assert_cardinality(batches))


def _shard_by_data(dataset):
    """`dataset` set to be split across workers by batches (`AutoShardPolicy.DATA`), or None for None.

    Our pipelines shuffle, bucket and batch tokenised examples (not files), so under a multi-worker
    strategy each worker reads every batch and keeps its share; without one the option does nothing.
    """
    if dataset is None:
        return None
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def optimizer_step(model: keras.Model) -> int:
    """The number of updates `model.optimizer` has applied, as a Python int.

    Reads through `keras.ops.convert_to_numpy`, which also works when the counter is a distributed
    (mirrored) variable; `int(variable)` does not under `MultiWorkerMirroredStrategy`.
    """
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def restore_latest(model: keras.Model, model_dir: str) -> int:
    """Load the newest checkpoint (weights + optimizer state) into a compiled `model`; return its step (0 if none)."""
    checkpoints = list_checkpoints(model_dir)
    if not checkpoints:
        return 0
    step, path = checkpoints[-1]
    model.load_weights(path)
    log.info("resumed from %s (step %d)", path, optimizer_step(model))
    return optimizer_step(model)


def _all_finite(variables) -> bool:
    """True when every floating-point variable holds only finite values."""
    return all(
        bool(np.isfinite(np.asarray(v.numpy())).all()) for v in variables if keras.backend.is_float_dtype(v.dtype)
    )


class CheckpointSaver(keras.callbacks.Callback):
    """Saves a checkpoint every `every` steps, at the end of training, and keeps the newest `keep`.

    A checkpoint is only written while the last loss is finite, so a NaN never overwrites good weights.
    """

    def __init__(self, model_dir: str, every: int, keep: int = 2):
        super().__init__()
        self.model_dir = model_dir
        self.every = int(every)
        self.keep = int(keep)
        self.last_loss_finite = True
        self.weights_finite = True
        self.last_saved = None

    def step(self) -> int:
        return optimizer_step(self.model)

    @property
    def finite(self) -> bool:
        """False once a loss, or the weights / optimizer state before a save, were NaN or infinite."""
        return self.last_loss_finite and self.weights_finite

    def save(self) -> str | None:
        step = self.step()
        if not self.finite or step == self.last_saved or step == 0:
            return None
        if not _all_finite(self.model.weights + self.model.optimizer.variables):
            # The update just taken made the weights NaN/Inf; no loss has been computed from them yet.
            self.weights_finite = False
            self.model.stop_training = True
            return None
        path = os.path.join(self.model_dir, CHECKPOINT_DIR, f"ckpt-{step}.weights.h5")
        atomic_save_weights(self.model, path)
        self.last_saved = step
        for _, old in list_checkpoints(self.model_dir)[: -self.keep]:
            os.remove(old)
        return path

    def on_train_begin(self, logs=None):
        self.next_save = (self.step() // self.every + 1) * self.every

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        self.last_loss_finite = loss is None or bool(np.isfinite(loss))
        # `>=`, not `==`: with train.tbptt_steps one batch makes several optimizer steps.
        if self.step() >= self.next_save:
            self.save()
            self.next_save = (self.step() // self.every + 1) * self.every


class StopAtStep(keras.callbacks.Callback):
    """Stops `fit` once the optimizer has taken `max_steps` steps (in total, across resumes), or once
    `max_minutes` of wall time have passed in this run (None: no time limit).
    """

    def __init__(self, max_steps: int, max_minutes: float | None = None):
        super().__init__()
        self.max_steps = int(max_steps)
        self.deadline = None if max_minutes is None else time.monotonic() + 60.0 * max_minutes

    def on_train_batch_end(self, batch, logs=None):
        if optimizer_step(self.model) >= self.max_steps:
            self.model.stop_training = True
        if self.deadline is not None and time.monotonic() >= self.deadline:
            log.info("train.max_minutes reached at step %d", optimizer_step(self.model))
            self.model.stop_training = True


class ValidationScore(keras.callbacks.Callback):
    """Adds `logs[name] = score()` at the end of every round (`train.eval_every` steps), before the callbacks
    after it in the list (best weights, early stopping, the CSV log) read the logs.

    Args:
      score: callable () -> float, e.g. the validation split's corpus BLEU of the model as it is now.
      name: the log key (default "val_bleu").
    """

    def __init__(self, score: Callable[[], float], name: str = "val_bleu"):
        super().__init__()
        self.score, self.name = score, name

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            started = time.monotonic()
            logs[self.name] = float(self.score())
            log.info(
                "step %d: %s %.2f (%.0f s)",
                optimizer_step(self.model),
                self.name,
                logs[self.name],
                time.monotonic() - started,
            )


class BestWeights(keras.callbacks.Callback):
    """Keeps the best weights on validation in `<model_dir>/best.weights.h5` (atomic), and which they are in
    `best.json` ({"monitor", "value", "step"}), so a resumed run only replaces them with better ones.

    Args:
      model_dir: where the files go.
      monitor: the log key, default "val_loss".
      mode: "min" (a loss, the default) or "max" (a score such as BLEU).
    """

    def __init__(self, model_dir: str, monitor: str = "val_loss", mode: str = "min"):
        super().__init__()
        self.path = os.path.join(model_dir, BEST_WEIGHTS)
        self.record = os.path.join(model_dir, BEST_RECORD)
        self.monitor, self.sign = monitor, 1.0 if mode == "min" else -1.0
        self.best = math.inf  # in signed units: lower is better
        try:
            with open(self.record, encoding="utf-8") as f:
                earlier = json.load(f)
            if earlier.get("monitor") == monitor and os.path.isfile(self.path):
                self.best = self.sign * float(earlier["value"])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # no record (a new run, or one from before best.json): the first validation sets it

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and np.isfinite(value) and self.sign * value < self.best:
            self.best = self.sign * float(value)
            atomic_save_weights(self.model, self.path)
            write_json(
                self.record, {"monitor": self.monitor, "value": float(value), "step": optimizer_step(self.model)}
            )


def fit(
    model: keras.Model,
    train_data: tf.data.Dataset,
    validation_data: tf.data.Dataset | None,
    train: TrainConfig,
    model_dir: str,
    verbose: int = 1,
    validation_score: Callable[[], float] | None = None,
) -> dict:
    """Train a compiled `model` until `train.max_steps` total steps, resuming from `model_dir`'s checkpoints.

    Args:
      train_data: repeated dataset of ((inputs...), targets) batches.
      validation_data: finite dataset, evaluated every `train.eval_every` steps (None: no validation,
        no early stopping, and the final weights count as best).
      train: the `train` config section.
      model_dir: the model directory (checkpoints/, logs/, best.weights.h5). Under a multi-worker strategy
        only the chief writes there (see `seq2seq.distribute.write_dir`); every worker resumes from it.
      validation_score: for `train.select_on: val_bleu`, a callable () -> the validation BLEU of the model as it
        is; called after every round, logged as `val_bleu`, and followed by best weights and early stopping.

    Returns:
      dict with `start_step`, `final_step`, `history` (per evaluation round).

    Raises:
      NonFiniteLossError: the loss became NaN/Inf; the newest finite checkpoint is kept.
    """
    start = restore_latest(model, model_dir)
    if start >= train.max_steps:
        log.info("already trained for %d steps (train.max_steps = %d)", start, train.max_steps)
        return {"start_step": start, "final_step": start, "history": {}}
    # Multi-worker: only the chief writes into model_dir; other workers write to a temporary folder.
    with write_dir(model_dir, model.distribute_strategy) as out:
        saver = CheckpointSaver(out, train.checkpoint_every, keep=train.keep_checkpoints)
        select_on = train.select_on if validation_data is not None else "val_loss"
        if select_on == "val_bleu" and validation_score is None:
            raise ValueError("train.select_on: val_bleu needs a validation_score function")
        callbacks = [ValidationScore(validation_score)] if select_on == "val_bleu" else []
        callbacks += [
            saver,
            StopAtStep(train.max_steps, train.max_minutes),
            keras.callbacks.TerminateOnNaN(),
            keras.callbacks.TensorBoard(os.path.join(out, "logs"), update_freq=100),
            keras.callbacks.CSVLogger(os.path.join(out, "train_log.csv"), append=True),
        ]
        if verbose:  # the Keras bar on a terminal; plain progress lines in a redirected log
            verbose, progress = fit_progress(train.max_steps)
            callbacks += progress
        if validation_data is not None:
            mode = "max" if select_on == "val_bleu" else "min"
            callbacks.append(BestWeights(out, monitor=select_on, mode=mode))
            if train.early_stopping_patience:
                callbacks.append(
                    keras.callbacks.EarlyStopping(monitor=select_on, mode=mode, patience=train.early_stopping_patience)
                )
        if validation_data is not None and train.validation_batches:
            validation_data = validation_data.take(train.validation_batches)
        validation_data = _with_known_length(validation_data)
        train_data, validation_data = (_shard_by_data(d) for d in (train_data, validation_data))
        steps_per_round = min(train.eval_every, train.max_steps)
        rounds = math.ceil(train.max_steps / steps_per_round)
        try:
            history = model.fit(
                train_data,
                validation_data=validation_data,
                epochs=rounds,
                initial_epoch=start // steps_per_round,
                steps_per_epoch=steps_per_round,
                callbacks=callbacks,
                shuffle=False,
                verbose=verbose,
            )
        except KeyboardInterrupt:
            path = saver.save()  # Ctrl-C: keep the work done so far; `train` again resumes from here
            log.warning("interrupted at step %d; checkpoint %s", optimizer_step(model), path)
            raise
        final = optimizer_step(model)
        saver.save()  # checks the weights are finite first
        if not saver.finite:
            kept = list_checkpoints(out)
            raise NonFiniteLossError(
                f"training stopped at step {final}: the loss became NaN or infinite; the last good checkpoint "
                f"{kept[-1][1] if kept else '(none)'} is kept. Lower train.learning_rate or set train.clipnorm."
            )
        if validation_data is None or not os.path.exists(os.path.join(out, BEST_WEIGHTS)):
            atomic_save_weights(model, os.path.join(out, BEST_WEIGHTS))
        return {"start_step": start, "final_step": final, "history": history.history}
