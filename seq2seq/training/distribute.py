"""Distribution strategies for training (`train.strategy`) and the chief-only writing rule.

`train.strategy`:

* ``default`` — no distribution (one device; `tf.distribute.get_strategy()`).
* ``mirrored`` — `tf.distribute.MirroredStrategy`: synchronous data parallelism over the local GPUs (or the
  CPU when there is none); one process.
* ``multi_worker_mirrored`` — `tf.distribute.MultiWorkerMirroredStrategy`: synchronous data parallelism over
  several processes/machines, described by the ``TF_CONFIG`` environment variable (cluster spec + this
  process's task). It must be created before any other TensorFlow op runs in the process.
* ``tpu`` — `tf.distribute.TPUStrategy` on the TPU found by `TPUClusterResolver` (``TPU_NAME`` or the local
  TPU VM).

Batch size: ``train.batch_size`` is the **global** batch — the examples of one optimizer step summed over all
replicas. Keras `fit` distributes the `tf.data` pipeline itself (`strategy.experimental_distribute_dataset`:
each global batch is split into ``strategy.num_replicas_in_sync`` per-replica batches of
``batch_size / num_replicas_in_sync`` examples; across workers the dataset is auto-sharded by data), so one
step sees the same examples whatever the number of replicas. The masked loss divides by the real target
tokens of the whole global batch (`seq2seq.training.MaskedCrossEntropy`), so loss and gradients equal
those of one device on the same global batch.

The model, the optimizer and `compile` must all be created inside ``strategy.scope()`` (variables become
mirrored/replicated); `seq2seq.translation.train` does that.

Only the chief writes: checkpoints, best weights and logs of the other workers go to a temporary folder that
is deleted afterwards (the usual Keras multi-worker pattern: every worker runs the same code, and saving may
involve collective operations, so all of them save — but only the chief's files are kept).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from typing import Callable, Sequence

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker_mirrored", "tpu")


def make_strategy(name: str, devices: list[str] | None = None) -> tf.distribute.Strategy:
    """The `tf.distribute.Strategy` for `train.strategy` = `name`.

    Args:
      name: "default" | "mirrored" | "multi_worker_mirrored" | "tpu".
      devices: ``mirrored`` only: device names (e.g. ``["/cpu:0", "/cpu:1"]``); None (default) = every local
        GPU, or the CPU when there is none.

    Raises:
      ValueError: an unknown name (lists the allowed ones), or ``tpu`` without a reachable TPU.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker_mirrored":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, tf.errors.NotFoundError, RuntimeError) as err:
            raise ValueError(f"train.strategy: 'tpu' needs a TPU (set TPU_NAME or run on a TPU VM): {err}") from err
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"train.strategy: got {name!r}; allowed values: {', '.join(map(repr, STRATEGIES))}")


def is_chief(strategy: tf.distribute.Strategy | None = None) -> bool:
    """True unless this process is a non-chief worker of a multi-worker cluster.

    The chief is the task of type ``chief``, or ``worker`` 0 when the cluster has no ``chief`` task.
    Read from the strategy's cluster resolver when it has one, else from ``TF_CONFIG`` (absent: chief).
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is not None and resolver.task_type is not None:
        task_type, task_id = resolver.task_type, resolver.task_id
        has_chief = "chief" in resolver.cluster_spec().as_dict()
    else:
        tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
        task = tf_config.get("task") or {}
        if not task:
            return True
        task_type, task_id = task.get("type"), int(task.get("index", 0))
        has_chief = "chief" in (tf_config.get("cluster") or {})
    if task_type == "chief":
        return True
    return task_type == "worker" and task_id == 0 and not has_chief


@contextlib.contextmanager
def write_dir(model_dir: str, strategy: tf.distribute.Strategy | None = None):
    """Yields the folder this process writes its training files to: `model_dir` on the chief, a temporary
    folder (deleted on exit) on every other worker.
    """
    if is_chief(strategy):
        yield model_dir
        return
    scratch = tempfile.mkdtemp(prefix="seq2seq-worker-")
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def chief_first(
    strategy: tf.distribute.Strategy | None,
    prepare: Callable[[], object],
    ready: Sequence[str],
    timeout: float = 600.0,
    poll: float = 0.5,
) -> None:
    """Run `prepare()` (which writes the files `ready`) on the chief only; other workers wait for the files.

    Used for what every worker must share byte for byte before training starts — the model directory's
    config and the tokenizers — so that only the chief writes them and no worker reads a half-made set.

    Args:
      strategy: the training strategy (None: read TF_CONFIG, see `is_chief`).
      prepare: zero-argument callable run on the chief.
      ready: paths that exist once `prepare` has finished (written atomically).
      timeout: seconds a non-chief worker waits, default 600.
      poll: seconds between checks, default 0.5.

    Raises:
      TimeoutError: on a non-chief worker, naming the files still missing after `timeout` seconds.
    """
    if is_chief(strategy):
        prepare()
        return
    deadline = time.monotonic() + timeout
    while True:
        missing = [path for path in ready if not os.path.exists(path)]
        if not missing:
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"waited {timeout:.0f} s for the chief worker to write {', '.join(missing)}; "
                "is the chief (worker 0 or the 'chief' task of TF_CONFIG) running with the "
                "same --model-dir on a shared file system?"
            )
        time.sleep(poll)
