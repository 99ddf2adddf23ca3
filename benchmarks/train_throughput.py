"""Training throughput on Multi30k en→de: this toolkit against a tutorial-style baseline, in one process.

Two models are trained for a fixed number of optimizer steps after a warm-up, on the same data, with the
same embedding size, encoder and decoder hidden sizes, vocabulary size and batch size:

(a) **toolkit** — `seq2seq` as `seq2seq train` runs it: SentencePiece tokenizers trained on the training
    split, `pipelines.batching` (tokenise once + cache, length filter, shuffle, length bucketing, padding to
    the longest example of each batch), `build_model` (bidirectional GRU encoder, dense bridge, GRU decoder
    with Bahdanau attention), `compile_model`, `model.fit`. `train.mixed_precision` / `train.jit_compile`
    come from the config (``--set`` overrides them).
(b) **baseline** — in the style of the TensorFlow "Neural machine translation with attention" tutorial:
    word-level `keras.layers.TextVectorization` (lowercase, punctuation split off, [START]/[END]) mapped in
    the `tf.data` pipeline, no bucketing (every batch padded to a fixed ``--baseline-max-length``), an
    encoder with a sum-merged bidirectional GRU, a decoder GRU, a single-head `MultiHeadAttention`
    cross-attention + residual + LayerNorm, and a Dense output layer; float32; plain `model.fit`.

Measurement. For each model, the first ``warmup + steps`` batches of its training pipeline are produced
once into an in-memory `Dataset.cache()` (this pass is timed and reported as the input pipeline's rate, so
that the input path can be compared with the training step), their real target tokens (target_out ≠ PAD,
EOS/[END] included) and padded shapes are recorded, then `model.fit` runs the ``warmup`` batches
(tracing/compilation) and is timed on the next ``steps`` batches. Reported: target tokens/s (real tokens
only), steps/s, padding fraction, warm-up time (tracing and compilation).

FLOPs (matmul only, analytic, per batch from its padded shapes). With B batch, S source length, T target
length, E embedding size, H encoder units per direction, d directions, M = d·H memory size, D decoder
units, A attention units, V target vocabulary, g gates per cell (GRU 3, LSTM 4, simple RNN 1), a dense
layer x[n, i] @ W[i, o] costs 2·n·i·o:

  toolkit forward = Σ_enc layers 2·d·B·S·g·H·(I_l + H)       (I_1 = E, I_l = M for l > 1)
                  + Σ_dec layers 2·B·T·g·D·(J_l + D)         (J_1 = E, J_l = D)
                  + 2·B·S·M·A                                (attention keys, once per source)
                  + 2·B·T·D·A + 2·B·T·S·A                    (Bahdanau query projection, v·tanh(q+k) score)
                  + 2·B·T·S·M                                (context = weights @ memory)
                  + 2·B·T·(M + D)·D                          (attentional vector tanh(W_c[c; h]))
                  + 2·B·T·D·V                                (output projection)
                  + 2·B·(Σ encoder final states)·(Σ decoder states)   (dense bridge)
  baseline forward = 2·2·B·S·3H·(E + H) + 2·B·T·3D·(E + D)   (bi-GRU with H per direction, decoder GRU)
                   + 2·B·T·D² + 2·2·B·S·H·D + 2·B·T·D²       (query, key, value, output projections)
                   + 2·2·B·T·S·D                             (scores and context)
                   + 2·B·T·D·V                               (output layer)
  training step = 3 × forward (the backward pass does two matmuls of the same size per forward matmul).

Embedding gathers, element-wise work, softmax and the optimizer update are not counted. Achieved FLOP/s =
Σ FLOPs of the timed batches / wall time; ``peak_fraction`` divides it by this machine's float32 matmul peak,
measured in the same run as the best of a few timed square `tf.matmul`s (the bfloat16 peak is measured and
printed too, because the toolkit may train in mixed_bfloat16).

Usage:
  SEQ2SEQ_DATA_DIR=../shared/data python benchmarks/train_throughput.py --quick
  SEQ2SEQ_DATA_DIR=../shared/data python benchmarks/train_throughput.py --steps 200 --set train.jit_compile=true

The last line printed is JSON with keys tokens_per_s, baseline_tokens_per_s, throughput_ratio,
peak_fraction (and more detail).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from pipelines.vocab import PAD_ID  # noqa: E402
from seq2seq.config import load_config  # noqa: E402
from seq2seq.model.seq2seq import build_model  # noqa: E402
from seq2seq.tasks import translation  # noqa: E402
from seq2seq.training.fit import compile_model  # noqa: E402

DEFAULT_CONFIG = os.path.join(ROOT, "configs", "translation", "multi30k_en_de_gru.yaml")
_GATES = {"gru": 3, "lstm": 4, "peephole_lstm": 4, "simple": 1}


# --------------------------------------------------------------------------------------------------
# Peak matmul rate


def matmul_peak(dtype: str, size: int = 2048, repeats: int = 10, trials: int = 3) -> float:
    """Best measured rate (FLOP/s) of `repeats` chained [size, size] @ [size, size] products in `dtype`.

    One product is 2·size³ FLOPs. Each product takes the previous one's result (x ← x·A, A scaled by
    1/√size so the values stay bounded), so no product can be skipped or merged with another by graph
    optimisation (ten products of the same operands would be folded into one); the whole result is
    summed. The chain runs inside one `tf.function` after a warm-up call; the best of `trials` is kept.
    """
    a = tf.random.normal([size, size], dtype=tf.float32)
    a = tf.cast(a / tf.sqrt(float(size)), dtype)

    @tf.function
    def chain(x):
        for _ in range(repeats):
            x = tf.matmul(x, a)
        return tf.reduce_sum(tf.cast(x, tf.float32))

    chain(a).numpy()
    best = float("inf")
    for _ in range(trials):
        started = time.perf_counter()
        chain(a).numpy()
        best = min(best, time.perf_counter() - started)
    return 2.0 * size**3 * repeats / best


# --------------------------------------------------------------------------------------------------
# Analytic FLOPs


def toolkit_forward_flops(model_config, target_vocab: int, batch: int, source_len: int, target_len: int) -> float:
    """Forward matmul FLOPs of one toolkit batch (formula in the module docstring).

    Args:
      model_config: the `model` section of a Config.
      target_vocab: V. batch, source_len, target_len: the padded batch shape (B, S, T).

    Raises:
      ValueError: input feeding or tied output (not covered by the formula).
    """
    emb, enc, dec = model_config.embedding, model_config.encoder, model_config.decoder
    if dec.input_feeding or emb.tie_output:
        raise ValueError("FLOP formula covers model.decoder.input_feeding=false and model.embedding.tie_output=false")
    B, S, T, E, V = batch, source_len, target_len, emb.dim, target_vocab
    d = 2 if enc.bidirectional else 1
    H, D = enc.units, dec.units
    M = H * (2 if enc.bidirectional and enc.merge_mode == "concat" else 1)
    ge, gd = _GATES[enc.cell], _GATES[dec.cell]
    flops = 0.0
    for layer in range(enc.layers):
        flops += 2 * d * B * S * ge * H * ((E if layer == 0 else M) + H)
    for layer in range(dec.layers):
        flops += 2 * B * T * gd * D * ((E if layer == 0 else D) + D)
    if dec.attention != "none":
        A = D if dec.attention == "luong" else (dec.attention_units or D)
        flops += 2 * B * S * M * A  # keys
        if dec.attention == "bahdanau":
            flops += 2 * B * T * D * A  # query projection
        flops += 2 * B * T * S * A + 2 * B * T * S * M  # scores, context
        flops += 2 * B * T * (M + D) * D  # attentional vector
    flops += 2 * B * T * D * V
    states_per_cell = 2 if "lstm" in enc.cell else 1
    dec_states = dec.layers * D * (2 if "lstm" in dec.cell else 1)
    if model_config.bridge == "dense":
        flops += 2 * B * enc.layers * d * H * states_per_cell * dec_states
    return float(flops)


def baseline_forward_flops(
    embedding_dim: int, encoder_units: int, units: int, vocab: int, batch: int, source_len: int, target_len: int
) -> float:
    """Forward matmul FLOPs of one baseline batch (formula in the module docstring; H = encoder_units per
    direction, D = units of the decoder).
    """
    B, S, T, E, H, D, V = batch, source_len, target_len, embedding_dim, encoder_units, units, vocab
    flops = 2 * 2 * B * S * 3 * H * (E + H) + 2 * B * T * 3 * D * (E + D)
    flops += 2 * B * T * D * D + 2 * 2 * B * S * H * D + 2 * B * T * D * D
    flops += 2 * 2 * B * T * S * D
    flops += 2 * B * T * D * V
    return float(flops)


# --------------------------------------------------------------------------------------------------
# The baseline (tutorial style)


def tutorial_standardize(text):
    """Lowercase, put spaces around punctuation, wrap in [START] ... [END] (tutorial-style, word level)."""
    text = tf.strings.lower(text)
    text = tf.strings.regex_replace(text, r"([.?!,¿;:\"()])", r" \1 ")
    text = tf.strings.strip(tf.strings.regex_replace(text, r"\s+", " "))
    return tf.strings.join(["[START]", text, "[END]"], separator=" ")


class BaselineEncoder(keras.layers.Layer):
    """Token ids [B, S] -> memory [B, S, units]: embedding (pad masked) and a sum-merged bidirectional GRU
    of `units` per direction.
    """

    def __init__(self, vocab_size, embedding_dim, units, **kwargs):
        super().__init__(**kwargs)
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=True)
        self.rnn = keras.layers.Bidirectional(keras.layers.GRU(units, return_sequences=True), merge_mode="sum")

    def call(self, ids):
        return self.rnn(self.embedding(ids))


class BaselineCrossAttention(keras.layers.Layer):
    """Decoder states attend to the memory with one-head MultiHeadAttention; residual add + LayerNorm."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.mha = keras.layers.MultiHeadAttention(num_heads=1, key_dim=units)
        self.norm = keras.layers.LayerNormalization()

    def call(self, query, memory):
        context = self.mha(query=query, value=memory)
        return self.norm(query + context)


class BaselineDecoder(keras.layers.Layer):
    """Target ids [B, T] + memory -> logits [B, T, vocab]: embedding, GRU, cross-attention, Dense."""

    def __init__(self, vocab_size, embedding_dim, units, **kwargs):
        super().__init__(**kwargs)
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=True)
        self.rnn = keras.layers.GRU(units, return_sequences=True)
        self.attention = BaselineCrossAttention(units)
        self.output_layer = keras.layers.Dense(vocab_size)

    def call(self, ids, memory):
        x = self.rnn(self.embedding(ids))
        return self.output_layer(self.attention(x, memory))


class BaselineTranslator(keras.Model):
    """((source ids [B, S], target_in ids [B, T])) -> logits float32 [B, T, vocab]."""

    def __init__(self, source_vocab, target_vocab, embedding_dim, encoder_units, units, **kwargs):
        super().__init__(**kwargs)
        self.encoder = BaselineEncoder(source_vocab, embedding_dim, encoder_units)
        self.decoder = BaselineDecoder(target_vocab, embedding_dim, units)

    def call(self, inputs):
        source, target_in = inputs
        return self.decoder(target_in, self.encoder(source))


def baseline_masked_loss(y_true, y_pred):
    """Cross-entropy summed over non-pad targets / number of non-pad targets (the tutorial's masked_loss)."""
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")(y_true, y_pred)
    mask = tf.cast(y_true != 0, loss.dtype)
    return tf.reduce_sum(loss * mask) / tf.reduce_sum(mask)


def baseline_pipeline(pairs, vocab_size: int, max_length: int, batch_size: int, seed: int):
    """Word-level TextVectorization (adapted on the training pairs) mapped over shuffled, batched strings.

    Returns:
      (repeated dataset of ((source [B, L], target_in [B, L]), target_out [B, L]) int64, source vocab size,
      target vocab size). Every batch has length L = `max_length` (longer sentences are truncated).
    """
    sources = np.array([s for s, _ in pairs], dtype=object)
    targets = np.array([t for _, t in pairs], dtype=object)
    source_proc = keras.layers.TextVectorization(
        max_tokens=vocab_size, standardize=tutorial_standardize, output_sequence_length=max_length
    )
    target_proc = keras.layers.TextVectorization(
        max_tokens=vocab_size, standardize=tutorial_standardize, output_sequence_length=max_length + 1
    )
    source_proc.adapt(sources)
    target_proc.adapt(targets)

    def vectorize(source, target):
        target_ids = target_proc(target)
        return (source_proc(source), target_ids[:, :-1]), target_ids[:, 1:]

    dataset = (
        tf.data.Dataset.from_tensor_slices((sources, targets))
        .shuffle(len(sources), seed=seed)
        .batch(batch_size, drop_remainder=True)
        .map(vectorize, num_parallel_calls=tf.data.AUTOTUNE)
        .repeat()
        .prefetch(tf.data.AUTOTUNE)
    )
    return dataset, source_proc.vocabulary_size(), target_proc.vocabulary_size()


# --------------------------------------------------------------------------------------------------
# Timing


def time_training(model, dataset, warmup: int, steps: int, forward_flops) -> dict:
    """Materialise warmup+steps batches, warm up `model.fit`, then time `steps` steps.

    Args:
      model: a compiled keras.Model.
      dataset: repeated dataset of ((source, target_in), target_out) batches.
      forward_flops: callable (batch, source_len, target_len) -> forward FLOPs of one batch.

    Returns:
      dict: tokens_per_s (real target tokens), steps_per_s, flops_per_s, seconds, tokens, pad_fraction,
      input_batches_per_s (rate of the input pipeline alone), warmup_seconds (tracing/compilation included).
    """
    batches = dataset.take(warmup + steps).cache()
    started = time.perf_counter()
    real, padded, flops = [], [], []
    for (source, target_in), target_out in batches:
        real.append(int(tf.math.count_nonzero(target_out != PAD_ID)))
        padded.append(int(tf.size(target_out)))
        flops.append(3.0 * forward_flops(int(source.shape[0]), int(source.shape[1]), int(target_in.shape[1])))
    input_seconds = time.perf_counter() - started
    if len(real) < warmup + steps:
        raise ValueError(f"the pipeline gave {len(real)} batches, fewer than warmup + steps = {warmup + steps}")
    started = time.perf_counter()
    model.fit(batches.take(warmup), epochs=1, verbose=0)
    warmup_seconds = time.perf_counter() - started
    started = time.perf_counter()
    model.fit(batches.skip(warmup), epochs=1, verbose=0)
    seconds = time.perf_counter() - started
    tokens = sum(real[warmup:])
    return {
        "tokens_per_s": tokens / seconds,
        "steps_per_s": steps / seconds,
        "seconds": seconds,
        "tokens": tokens,
        "flops_per_s": sum(flops[warmup:]) / seconds,
        "pad_fraction": 1.0 - tokens / sum(padded[warmup:]),
        "input_batches_per_s": len(real) / input_seconds,
        "warmup_seconds": warmup_seconds,
    }


def _rounded(value: float, digits: int):
    """`round(value, digits)`, or None for NaN (FLOPs not counted): JSON has no NaN."""
    return None if math.isnan(value) else round(value, digits)


def run(args) -> dict:
    config = load_config(args.config, args.overrides)
    data_dir = os.path.abspath(os.environ.get("SEQ2SEQ_DATA_DIR") or config.data.data_dir or "")
    translation._check_data_exists(config)
    keras.utils.set_random_seed(config.train.seed)
    cfg_train = config.train
    batch = cfg_train.batch_size
    print(
        f"data: {data_dir}; batch {batch}; warm-up {args.warmup} + timed {args.steps} steps; "
        f"mixed_precision={cfg_train.mixed_precision}, jit_compile={cfg_train.jit_compile}",
        flush=True,
    )

    peak32 = matmul_peak("float32", size=args.matmul_size)
    peak16 = matmul_peak("bfloat16", size=args.matmul_size)
    print(
        f"matmul peak: float32 {peak32 / 1e9:.1f} GFLOP/s, bfloat16 {peak16 / 1e9:.1f} GFLOP/s "
        f"(×{peak16 / peak32:.2f})",
        flush=True,
    )

    with tempfile.TemporaryDirectory() as work:
        source_tok, target_tok = translation.train_tokenizers(config, os.path.join(work, "tokenizers"))
        train_ds, _ = translation.make_datasets(config, source_tok, target_tok)
        model = compile_model(build_model(config, source_tok.vocab_size, target_tok.vocab_size), cfg_train)
        try:  # the analytic formula covers the recurrent decoder without input feeding or a tied output
            toolkit_forward_flops(config.model, target_tok.vocab_size, 1, 1, 1)

            def flops_formula(b, s, t):
                return toolkit_forward_flops(config.model, target_tok.vocab_size, b, s, t)

        except ValueError as err:
            print(f"FLOPs not counted for this model ({err}): peak fractions are reported as null", flush=True)

            def flops_formula(b, s, t):
                return float("nan")

        toolkit = time_training(
            model,
            train_ds,
            args.warmup,
            args.steps,
            flops_formula,
        )
    print(
        f"toolkit : {toolkit['tokens_per_s']:.0f} target tokens/s, {toolkit['steps_per_s']:.2f} steps/s, "
        f"{toolkit['flops_per_s'] / 1e9:.1f} GFLOP/s, padding {toolkit['pad_fraction']:.1%}, input pipeline "
        f"{toolkit['input_batches_per_s']:.0f} batches/s, warm-up {toolkit['warmup_seconds']:.1f} s",
        flush=True,
    )
    del model
    keras.backend.clear_session()

    train_pairs = list(translation.pairs(config, "train"))
    dataset, source_vocab, target_vocab = baseline_pipeline(
        train_pairs, config.tokenizer.target_vocab_size, args.baseline_max_length, batch, cfg_train.seed
    )
    # The toolkit's sizes: embedding, encoder units per direction, decoder units, vocabulary.
    units, encoder_units, dim = config.model.decoder.units, config.model.encoder.units, config.model.embedding.dim
    base_model = BaselineTranslator(source_vocab, target_vocab, dim, encoder_units, units)
    base_model.compile(optimizer=keras.optimizers.Adam(cfg_train.learning_rate), loss=baseline_masked_loss)
    baseline = time_training(
        base_model,
        dataset,
        args.warmup,
        args.steps,
        lambda b, s, t: baseline_forward_flops(dim, encoder_units, units, target_vocab, b, s, t),
    )
    print(
        f"baseline: {baseline['tokens_per_s']:.0f} target tokens/s, {baseline['steps_per_s']:.2f} steps/s, "
        f"{baseline['flops_per_s'] / 1e9:.1f} GFLOP/s, padding {baseline['pad_fraction']:.1%}, input pipeline "
        f"{baseline['input_batches_per_s']:.0f} batches/s, warm-up {baseline['warmup_seconds']:.1f} s",
        flush=True,
    )

    ratio = toolkit["tokens_per_s"] / baseline["tokens_per_s"]
    result = {
        "tokens_per_s": round(toolkit["tokens_per_s"], 1),
        "baseline_tokens_per_s": round(baseline["tokens_per_s"], 1),
        "throughput_ratio": round(ratio, 3),
        "peak_fraction": _rounded(toolkit["flops_per_s"] / peak32, 4),
        "peak_fraction_vs_bf16_peak": _rounded(toolkit["flops_per_s"] / peak16, 4),
        "baseline_peak_fraction": round(baseline["flops_per_s"] / peak32, 4),
        "toolkit_gflops": _rounded(toolkit["flops_per_s"] / 1e9, 2),
        "baseline_gflops": round(baseline["flops_per_s"] / 1e9, 2),
        "peak_float32_gflops": round(peak32 / 1e9, 1),
        "peak_bfloat16_gflops": round(peak16 / 1e9, 1),
        "toolkit_pad_fraction": round(toolkit["pad_fraction"], 3),
        "baseline_pad_fraction": round(baseline["pad_fraction"], 3),
        "mixed_precision": cfg_train.mixed_precision,
        "jit_compile": cfg_train.jit_compile,
        "batch_size": batch,
        "steps": args.steps,
        "warmup": args.warmup,
    }
    print(
        f"ratio toolkit/baseline: {ratio:.2f}x; toolkit at {toolkit['flops_per_s'] / peak32:.1%} of the float32 "
        f"matmul peak ({toolkit['flops_per_s'] / peak16:.1%} of the bfloat16 peak)",
        flush=True,
    )
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="translation config (default: Multi30k en→de)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override, repeatable (e.g. train.jit_compile=true)",
    )
    parser.add_argument("--steps", type=int, default=200, help="timed steps per model (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed warm-up steps per model (default 20)")
    parser.add_argument(
        "--baseline-max-length",
        type=int,
        default=50,
        help="fixed padded length of every baseline batch, in words (default 50)",
    )
    parser.add_argument("--matmul-size", type=int, default=2048, help="side of the peak-rate matmul (default 2048)")
    parser.add_argument("--quick", action="store_true", help="30 timed steps after 8 warm-up steps (< 5 min)")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.warmup = 30, 8
    result = run(args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
