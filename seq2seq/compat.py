"""Every use of Keras internals, in one file: what a Keras upgrade may break shows up here first.

The toolkit subclasses public Keras classes, but five speed-ups and one multi-worker fix need a private
hook. Each is reached only through this module, each is guarded (when the hook is missing the stock Keras
behaviour runs, with a warning), and `tests/test_compat.py` fails on a Keras whose hooks moved:

| hook | Keras object | used by | without it |
|---|---|---|---|
| `rnn_loop` | `keras.src.backend.rnn` | `model.precomputed_rnn` (input projection before the loop) | stock GRU/LSTM loop |
| `inner_loop` | `keras.layers.GRU/LSTM.inner_loop` | `model.precomputed_rnn` | stock GRU/LSTM loop |
| `calculate_scores` | `keras.layers.AdditiveAttention._calculate_scores` | `model.attention` (matmul score) | stock score |
| `clip_gradients` | `keras.optimizers.Optimizer._clip_gradients` | `training.optimizers.FusedAdam` | stock clipping |
| `adam_slots` | `Adam._momentums`, `._velocities`, `._get_variable_index` | `training.optimizers.FusedAdam` | stock Adam update |
| `symbolic_build` | `keras.Model._maybe_symbolic_build`, `._symbolic_build` | `training.trainer` (multi-worker build) | Keras' own build |
| `multi_worker_mode` | `tf.distribute.Strategy.extended._in_multi_worker_mode` | `training.trainer` (log shapes) | treated as single worker |
| `keras_home` | `keras.src.backend.config.keras_home` | `model.image_encoder` (error message) | `~/.keras` |
| `weights_in_memory` | `keras.src.saving.saving_lib.H5IOStore`, `._save_state` | `weights_file` (full-disk-safe saves) | `save_weights` to a temporary file, read back |

Tested against Keras 3.15 (pinned in requirements.txt).
"""

from __future__ import annotations

import io
import logging
import os
import tempfile

import keras
import tensorflow as tf

log = logging.getLogger(__name__)

try:  # the loop Keras' own GRU/LSTM layers run on
    from keras.src.backend import rnn as _keras_rnn
except ImportError:  # pragma: no cover - depends on the installed Keras
    _keras_rnn = None

try:
    from keras.src.backend.config import keras_home as _keras_home
except ImportError:  # pragma: no cover
    _keras_home = None

try:  # H5IOStore / _save_state: no public API writes a weights file to a file object
    from keras.src.saving import saving_lib as _saving_lib
except ImportError:  # pragma: no cover
    _saving_lib = None


def hooks() -> dict[str, bool]:
    """{hook name: available in the installed Keras} for every hook in the table above."""
    return {
        "rnn_loop": _keras_rnn is not None,
        "inner_loop": hasattr(keras.layers.GRU, "inner_loop") and hasattr(keras.layers.LSTM, "inner_loop"),
        "calculate_scores": hasattr(keras.layers.AdditiveAttention, "_calculate_scores"),
        "clip_gradients": hasattr(keras.optimizers.Optimizer, "_clip_gradients"),
        "adam_slots": hasattr(keras.optimizers.Adam, "_get_variable_index"),
        "symbolic_build": hasattr(keras.Model, "_maybe_symbolic_build") and hasattr(keras.Model, "_symbolic_build"),
        "multi_worker_mode": hasattr(tf.distribute.StrategyExtended, "_in_multi_worker_mode"),
        "keras_home": _keras_home is not None,
        "weights_in_memory": _saving_lib is not None
        and hasattr(_saving_lib, "H5IOStore")
        and hasattr(_saving_lib, "_save_state"),
    }


_warned: set[str] = set()


def _missing(name: str) -> None:
    if name not in _warned:
        _warned.add(name)
        log.warning(
            "Keras %s lacks the %r hook (see seq2seq/compat.py): the stock Keras path runs instead",
            keras.__version__,
            name,
        )


# ------------------------------------------------------------------------------------------------------------
# Recurrent layers


def rnn_loop_available() -> bool:
    """True when the pre-computed-input GRU/LSTM can run (`rnn_loop` and `inner_loop` hooks present)."""
    ok = _keras_rnn is not None and hasattr(keras.layers.GRU, "inner_loop")
    if not ok:
        _missing("rnn_loop")
    return ok


def rnn_loop(step_function, inputs, initial_states, **kwargs):
    """`keras.src.backend.rnn`: run `step_function(x_t, states) -> (output, new_states)` over time."""
    return _keras_rnn(step_function, inputs, initial_states, **kwargs)


class InnerLoopHook:
    """Mixin for a `keras.layers.GRU`/`LSTM` subclass: routes Keras' `inner_loop` to `precomputed_inner_loop`.

    The subclass defines `precomputed_inner_loop(sequences, initial_state, mask, training)` and may return
    `NotImplemented` from it to run the stock loop.
    """

    def inner_loop(self, sequences, initial_state, mask, training=False):
        result = NotImplemented
        if rnn_loop_available():
            result = self.precomputed_inner_loop(sequences, initial_state, mask, training=training)
        if result is NotImplemented:
            return super().inner_loop(sequences, initial_state, mask, training=training)
        return result


# ------------------------------------------------------------------------------------------------------------
# Attention


class ScoreHook:
    """Mixin for a `keras.layers.AdditiveAttention` subclass: Keras' `_calculate_scores` calls `scores(q, k)`."""

    def _calculate_scores(self, query, key):
        return self.scores(query, key)


# ------------------------------------------------------------------------------------------------------------
# Optimizer


class ClipGradientsHook:
    """Mixin for a Keras optimizer: Keras' `_clip_gradients` calls `clip_gradients(grads)` (None: stock)."""

    def _clip_gradients(self, grads):
        clipped = self.clip_gradients(grads)
        return super()._clip_gradients(grads) if clipped is None else clipped


def adam_slots(optimizer: keras.optimizers.Adam, variable) -> tuple | None:
    """(first moment, second moment) slot variables of `variable` in a built Keras Adam, or None."""
    if not all(hasattr(optimizer, a) for a in ("_get_variable_index", "_momentums", "_velocities")):
        _missing("adam_slots")
        return None
    index = optimizer._get_variable_index(variable)
    return optimizer._momentums[index], optimizer._velocities[index]


# ------------------------------------------------------------------------------------------------------------
# Distributed training


class LocalBatchBuildHook:
    """Mixin for a `keras.Model`: builds weights, metrics and optimizer state from one *local* batch.

    Keras 3's TensorFlow trainer builds a model before tracing `fit`'s step by reducing the first
    distributed batch with `strategy.reduce("MEAN", ...)`, which fails under `MultiWorkerMirroredStrategy`
    for integer token batches ("unsupported type PerReplica", keras-team/keras#20585). Only the batch's
    structure and dtypes matter for building, so this uses this worker's first local replica batch.
    Without a strategy, Keras' own behaviour (build at trace time) is kept.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = getattr(self, "_distribute_strategy", None)
        if strategy is None or iterator is None or not hasattr(self, "_symbolic_build"):
            return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
        for _, _, batches in iterator:
            first = next(batches)
            break
        else:
            return None
        local = tf.nest.map_structure(
            lambda value: (
                strategy.experimental_local_results(value)[0]
                if isinstance(value, tf.distribute.DistributedValues)
                else value
            ),
            first,
        )
        with strategy.scope():
            self._symbolic_build(data_batch=local)
        return None


def in_multi_worker_mode(strategy: tf.distribute.Strategy) -> bool:
    """True when `strategy` is a `MultiWorkerMirroredStrategy` over more than one worker."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    probe = getattr(strategy.extended, "_in_multi_worker_mode", None)
    if probe is None:
        _missing("multi_worker_mode")
        return False
    return bool(probe())


# ------------------------------------------------------------------------------------------------------------
# Paths


def keras_home() -> str:
    """The folder Keras caches downloads in (`$KERAS_HOME`, default `~/.keras`)."""
    if _keras_home is not None:
        return _keras_home()
    return os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))


# ------------------------------------------------------------------------------------------------------------
# Weights files


def weights_h5_bytes(model: keras.Model) -> bytes:
    """The bytes of the ``.weights.h5`` file ``model.save_weights`` would write, built in memory.

    Args:
      model: a built Keras model (its optimizer state is included when built, as ``save_weights`` does).

    Raises:
      ValueError: the model is not built.
    """
    if not model.built:
        raise ValueError("cannot save the weights of a model that is not built; call it on a batch first")
    if not hooks()["weights_in_memory"]:
        _missing("weights_in_memory")
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "model.weights.h5")
            model.save_weights(path)
            with open(path, "rb") as handle:
                return handle.read()
    buffer = io.BytesIO()
    store = _saving_lib.H5IOStore(buffer, mode="w")
    try:
        _saving_lib._save_state(model, weights_store=store, assets_store=None, inner_path="", visited_saveables=set())
    finally:
        store.close()
    return buffer.getvalue()
