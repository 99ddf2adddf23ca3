"""Pieces of the CPU training step: the toolkit's implementation against the stock Keras one, in one run.

Each row times a forward + backward pass (or an optimizer update) at the Multi30k training sizes (batch 64,
20 source and 20 target positions, embedding 256, bidirectional encoder 2×256, decoder 512, attention 512,
target vocabulary 6,000) and prints milliseconds per call for both and their ratio:

* ``gru_encoder`` / ``gru_decoder``: `keras.layers.GRU` vs `PrecomputedInputGRU` (input projection of all
  time steps before the loop), 256 and 512 units over a right-padded batch.
* ``bahdanau_score``: `keras.layers.AdditiveAttention` vs the toolkit's (score summed by a matmul).
* ``loss``: log_softmax + gather (the straightforward masked, label-smoothed cross-entropy) vs
  `MaskedCrossEntropy` (TensorFlow's fused softmax cross-entropy kernel).
* ``accuracy``: `keras.ops.argmax` vs `MaskedAccuracy` (`in_top_k`).
* ``adam``: `keras.optimizers.Adam` vs `FusedAdam` (`ResourceApplyAdam`), global-norm clipping, on
  variables of the Multi30k model's shapes (≈ 9.6 M parameters).

Usage:
  python benchmarks/step_components.py            # ≈ 1–2 minutes on 2 cores
  python benchmarks/step_components.py --quick    # fewer repetitions

The last line printed is JSON: {name: {"keras_ms", "toolkit_ms", "speedup"}}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402

from seq2seq.model.attention import AdditiveAttention  # noqa: E402
from seq2seq.model.precomputed_rnn import PrecomputedInputGRU  # noqa: E402
from seq2seq.training.losses import MaskedAccuracy, MaskedCrossEntropy  # noqa: E402
from seq2seq.training.optimizers import FusedAdam  # noqa: E402

BATCH, TIME, EMBED, ENCODER, DECODER, VOCAB, SMOOTHING = 64, 20, 256, 256, 512, 6000, 0.1


def time_call(fn, repeats: int) -> float:
    """Milliseconds per call of a tf.function `fn` (best of three rounds of `repeats`, after one warm-up)."""
    fn()
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(repeats):
            fn()
        best = min(best, (time.perf_counter() - started) / repeats * 1000)
    return best


def forward_backward(layer_fn, variables):
    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.sin(layer_fn()))
        return tape.gradient(loss, variables)

    return step


def gru_pair(units: int, input_dim: int):
    x = tf.random.normal((BATCH, TIME, input_dim))
    mask = tf.sequence_mask(tf.random.uniform((BATCH,), TIME // 2, TIME + 1, tf.int32), TIME)
    fns = []
    for cls in (keras.layers.GRU, PrecomputedInputGRU):
        layer = cls(units, return_sequences=True)
        layer.build(x.shape)
        fns.append(forward_backward(lambda layer=layer: layer(x, mask=mask, training=True), layer.trainable_variables))
    return fns


def score_pair():
    query, key = tf.random.normal((BATCH, TIME, DECODER)), tf.random.normal((BATCH, TIME, DECODER))
    value = tf.random.normal((BATCH, TIME, 2 * ENCODER))
    fns = []
    for cls in (keras.layers.AdditiveAttention, AdditiveAttention):
        layer = cls(use_scale=True)
        layer.build([query.shape, value.shape, key.shape])
        query_var = tf.Variable(query)
        fns.append(
            forward_backward(
                lambda layer=layer, q=query_var: layer([q, value, key]), [query_var] + layer.trainable_variables
            )
        )
    return fns


def log_softmax_loss(y_true, logits):
    """The straightforward masked, label-smoothed cross-entropy: log_softmax, gather the true token."""
    log_probs = ops.log_softmax(logits, axis=-1)
    true = ops.take_along_axis(log_probs, y_true[..., None], axis=-1)[..., 0]
    token = -(1.0 - SMOOTHING) * true - SMOOTHING * ops.mean(log_probs, axis=-1)
    mask = ops.cast(y_true != 0, "float32")
    return ops.sum(token * mask) / ops.maximum(ops.sum(mask), 1.0)


def loss_pair():
    logits = tf.Variable(tf.random.normal((BATCH, TIME, VOCAB)))
    y_true = tf.random.uniform((BATCH, TIME), 0, VOCAB, tf.int32)
    fused = MaskedCrossEntropy(SMOOTHING)
    return [forward_backward(lambda fn=fn: fn(y_true, logits), [logits]) for fn in (log_softmax_loss, fused)]


def accuracy_pair():
    logits = tf.random.normal((BATCH, TIME, VOCAB))
    # As late in training: the true token has the highest logit at about 60 % of the positions (a hit makes
    # `in_top_k` scan the whole row; a miss can stop at the first larger logit).
    hit = tf.random.uniform((BATCH, TIME)) < 0.6
    y_true = tf.where(
        hit, tf.argmax(logits, axis=-1, output_type=tf.int32), tf.random.uniform((BATCH, TIME), 0, VOCAB, tf.int32)
    )
    metric = MaskedAccuracy()
    argmax = tf.function(lambda: ops.sum(ops.cast(ops.argmax(logits, axis=-1) == y_true, "float32")))
    top_1 = tf.function(lambda: metric.update_state(y_true, logits))
    return [argmax, top_1]


def adam_pair():
    shapes = [
        (6000, 256),
        (6000, 256),
        (512, 6000),
        (6000,),
        (256, 768),
        (256, 768),
        (512, 1536),
        (768, 1536),
        (512, 1536),
        (512, 512),
        (1024, 512),
        (512, 512),
        (512,),
    ]
    fns = []
    for cls in (keras.optimizers.Adam, FusedAdam):
        variables = [keras.Variable(np.random.normal(size=s).astype("float32") * 0.01) for s in shapes]
        grads = [tf.random.normal(s) for s in shapes]
        optimizer = cls(learning_rate=1e-3, global_clipnorm=1.0)
        optimizer.build(variables)
        fns.append(apply_function(optimizer, variables, grads))
    return fns


def apply_function(optimizer, variables, grads):
    @tf.function
    def apply():
        optimizer.apply_gradients(zip(grads, variables))

    return apply


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args(argv)
    repeats = 5 if args.quick else 20
    tf.random.set_seed(0)
    keras.utils.set_random_seed(0)
    rows = {
        "gru_encoder": lambda: gru_pair(ENCODER, EMBED),
        "gru_decoder": lambda: gru_pair(DECODER, EMBED),
        "bahdanau_score": score_pair,
        "loss": loss_pair,
        "accuracy": accuracy_pair,
        "adam": adam_pair,
    }
    result = {}
    for name, make in rows.items():
        keras_fn, toolkit_fn = make()
        keras_ms, toolkit_ms = time_call(keras_fn, repeats), time_call(toolkit_fn, repeats)
        result[name] = {
            "keras_ms": round(keras_ms, 2),
            "toolkit_ms": round(toolkit_ms, 2),
            "speedup": round(keras_ms / toolkit_ms, 2),
        }
        print(
            f"{name:15s} keras {keras_ms:8.2f} ms   toolkit {toolkit_ms:8.2f} ms   ×{keras_ms / toolkit_ms:.2f}",
            flush=True,
        )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
