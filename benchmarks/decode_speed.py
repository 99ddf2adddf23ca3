"""Decoding speed and quality: the exported SavedModel's batched beam search against a tutorial-style
one-sentence-at-a-time eager greedy loop, on the same trained model and the same test sentences.

(a) **SavedModel beam** — `seq2seq.runner.export` writes the model directory as a SavedModel
    (strings in → strings out: normalisation, SentencePiece/word tokenisation, encoder, batched beam
    search in `tf.while_loop`, detokenisation, all in one graph) with ``--beam-size`` (default 5); it is
    reloaded with `tf.saved_model.load` and its ``serving_default`` signature is called on batches of
    ``--batch-size`` (default 64) sentences.
(b) **eager greedy** — the decoding loop of the TensorFlow "Neural machine translation with attention"
    tutorial: for each sentence alone, tokenise it, call the encoder once, then loop in Python over time
    steps calling the decoder step eagerly on one token, take the arg-max, stop at EOS (or at the same
    per-sentence length limit the SavedModel uses), detokenise. Same model weights, tokenizers and input
    truncation (``data.max_source_length``) as (a).

Measurement. Both paths get one untimed warm-up call (first-call set-up: graph loading / eager kernel
caches); then the wall time to translate all N sentences (tokenisation and detokenisation included) is
measured. Sentences are the first N of the model directory's test split (``--sentences``, default 1000;
200 with ``--quick``). BLEU is sacreBLEU (13a) against the references normalised like the model inputs
(as `seq2seq evaluate` does). Output: a table, then one JSON line with ``sentences_per_s_savedmodel_beam``,
``sentences_per_s_eager_greedy``, ``speed_ratio`` (= a / b), ``bleu_savedmodel_beam``, ``bleu_eager_greedy``
and the settings.

Without ``--model-dir`` a small model is trained first into ``--work-dir`` (a temporary folder by default)
from configs/translation/spa_en_demo.yaml (needs $SEQ2SEQ_DATA_DIR, see ../shared/data/README.md):
``--quick``: the first 20,000 pairs, 64-unit model, up to 1,500 steps or 3 minutes (measured: training 134 s,
whole run 173 s on 2 CPU cores). That model is too weak to translate (it emits empty strings, BLEU 0), so its
figures only time the machinery; pass a trained ``--model-dir`` for meaningful numbers. Otherwise all pairs,
128-unit model, up to 2,000 steps or 20 minutes (not measured).

Usage:
  python benchmarks/decode_speed.py --model-dir /tmp/demo1
  python benchmarks/decode_speed.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_CONFIG = os.path.join(ROOT, "configs", "translation", "spa_en_demo.yaml")

QUICK_TRAINING = [
    "data.limit=20000",
    "train.max_steps=1500",
    "train.eval_every=500",
    "train.checkpoint_every=500",
    "train.max_minutes=3",
    "train.learning_rate=0.005",
    "model.embedding.dim=64",
    "model.encoder.units=64",
    "model.decoder.units=64",
    "tokenizer.source_vocab_size=2000",
    "tokenizer.target_vocab_size=2000",
    "train.batch_size=64",
    "train.warmup_steps=50",
    "train.validation_batches=5",
]
FULL_TRAINING = [
    "train.max_steps=2000",
    "train.eval_every=500",
    "train.checkpoint_every=500",
    "train.max_minutes=20",
    "model.embedding.dim=128",
    "model.encoder.units=128",
    "model.decoder.units=128",
]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", help="trained translation model directory (default: train a small one)")
    parser.add_argument("--work-dir", help="where to train / export (default: a temporary folder)")
    parser.add_argument("--quick", action="store_true", help="200 sentences (and a quicker model when training)")
    parser.add_argument("--sentences", type=int, help="test sentences N (default 1000, --quick 200)")
    parser.add_argument("--batch-size", type=int, default=64, help="SavedModel batch size (default 64)")
    parser.add_argument("--beam-size", type=int, default=5, help="SavedModel beam size (default 5)")
    return parser


def train_small_model(work_dir: str, quick: bool) -> str:
    """Train a small spa→eng model in `work_dir`/model from the demo config; returns the model directory.

    Raises:
      FileNotFoundError: the Tatoeba file is not under $SEQ2SEQ_DATA_DIR.
    """
    from seq2seq import runner
    from seq2seq.config import load_config

    config = load_config(DEMO_CONFIG, QUICK_TRAINING if quick else FULL_TRAINING)
    model_dir = os.path.join(work_dir, "model")
    started = time.time()
    runner.train(config, model_dir, verbose=0)
    print(f"trained {model_dir} in {time.time() - started:.0f} s", file=sys.stderr)
    return model_dir


def test_split(config, n: int):
    """(sources, references): the first `n` pairs of the test split; references normalised like the inputs."""
    import tensorflow as tf

    from pipelines.text import normalize
    from seq2seq.tasks import translation

    data = []
    for pair in translation.pairs(config, "test"):
        data.append(pair)
        if len(data) == n:
            break
    if not data:
        raise ValueError("the test split is empty; check the data.* settings of the model directory")
    sources = [s for s, _ in data]
    references = normalize(tf.constant([t for _, t in data]), lowercase=config.data.lowercase).numpy()
    return sources, [r.decode("utf-8") for r in references]


def eager_greedy_translate(model, source_tok, target_tok, text: str, max_source_length: int, decode) -> str:
    """Translate one sentence the way the TF NMT-with-attention tutorial does: eager Python loop, arg-max.

    Args:
      model: a built `seq2seq.model.seq2seq.Seq2Seq`.
      source_tok, target_tok: the model directory's tokenizers.
      text: one source sentence (str).
      max_source_length: pieces kept (EOS included), as training and the export do.
      decode: DecodeConfig; its max_length / max_length_ratio / max_length_offset bound the output length.

    Returns:
      the detokenised translation (str).
    """
    import numpy as np
    import tensorflow as tf

    from pipelines.batching import format_source
    from pipelines.vocab import BOS_ID, EOS_ID
    from seq2seq.decoding import max_output_length

    source = format_source(source_tok.tokenize(tf.constant([text])), max_source_length)
    if decode.max_length_ratio is None:
        limit = decode.max_length
    else:
        limit = int(
            max_output_length([source.shape[1]], decode.max_length, decode.max_length_ratio, decode.max_length_offset)[
                0
            ]
        )
    state, constants = model.encode(source, training=False)
    token, output = tf.constant([BOS_ID], tf.int32), []
    for _ in range(limit):
        logits, state, _ = model.step(token, state, constants)
        predicted = int(np.argmax(logits[0]))
        if predicted == EOS_ID:
            break
        output.append(predicted)
        token = tf.constant([predicted], tf.int32)
    return target_tok.detokenize(tf.constant([output + [EOS_ID]], tf.int32)).numpy()[0].decode("utf-8")


def run(model_dir: str, work_dir: str, n: int, batch_size: int, beam_size: int) -> dict:
    """Measure both decoders on the first `n` test sentences of `model_dir`; returns the report dict."""
    import tensorflow as tf

    from seq2seq import runner
    from seq2seq.evaluation import corpus_bleu
    from seq2seq.serving.export import load_saved_model

    config, model, source_tok, target_tok = _unpack(runner.load(model_dir))
    sources, references = test_split(config, n)

    export_dir = runner.export(
        model_dir, os.path.join(work_dir, "export"), strategy="beam", beam_size=beam_size, n_best=1
    )
    serve = load_saved_model(export_dir).signatures["serving_default"]
    serve(text=tf.constant(sources[:2]))  # warm-up
    started = time.perf_counter()
    beam_hypotheses = []
    for start in range(0, len(sources), batch_size):
        out = serve(text=tf.constant(sources[start : start + batch_size], tf.string))
        beam_hypotheses += [t.decode("utf-8") for t in out["translation"].numpy()]
    beam_seconds = time.perf_counter() - started

    eager = dict(
        model=model,
        source_tok=source_tok,
        target_tok=target_tok,
        max_source_length=config.data.max_source_length,
        decode=config.decode,
    )
    eager_greedy_translate(text=sources[0], **eager)  # warm-up
    started = time.perf_counter()
    greedy_hypotheses = [eager_greedy_translate(text=text, **eager) for text in sources]
    greedy_seconds = time.perf_counter() - started

    beam_rate, greedy_rate = len(sources) / beam_seconds, len(sources) / greedy_seconds
    return {
        "model_dir": os.path.abspath(model_dir),
        "sentences": len(sources),
        "batch_size": batch_size,
        "beam_size": beam_size,
        "length_penalty": config.decode.length_penalty,
        "seconds_savedmodel_beam": round(beam_seconds, 2),
        "seconds_eager_greedy": round(greedy_seconds, 2),
        "sentences_per_s_savedmodel_beam": round(beam_rate, 2),
        "sentences_per_s_eager_greedy": round(greedy_rate, 2),
        "speed_ratio": round(beam_rate / greedy_rate, 2),
        "bleu_savedmodel_beam": round(corpus_bleu(beam_hypotheses, references)["score"], 2),
        "bleu_eager_greedy": round(corpus_bleu(greedy_hypotheses, references)["score"], 2),
        "examples": [
            {"source": s, "reference": r, "beam": b, "greedy": g}
            for s, r, b, g in list(zip(sources, references, beam_hypotheses, greedy_hypotheses))[:3]
        ],
    }


def print_report(report: dict) -> None:
    """A readable table, the examples, then the JSON (without examples) on the last line."""
    rows = [
        ("decoder", "sentences/s", "seconds", "BLEU"),
        (
            f"SavedModel beam {report['beam_size']}, batch {report['batch_size']}",
            report["sentences_per_s_savedmodel_beam"],
            report["seconds_savedmodel_beam"],
            report["bleu_savedmodel_beam"],
        ),
        (
            "eager greedy, 1 sentence at a time",
            report["sentences_per_s_eager_greedy"],
            report["seconds_eager_greedy"],
            report["bleu_eager_greedy"],
        ),
    ]
    print(f"model {report['model_dir']}, {report['sentences']} test sentences")
    for name, rate, seconds, bleu in rows:
        print(f"{name:<38} {rate!s:>12} {seconds!s:>9} {bleu!s:>7}")
    print(f"speed ratio (SavedModel beam / eager greedy): {report['speed_ratio']}x")
    for example in report["examples"]:
        print(json.dumps(example, ensure_ascii=False))
    print(json.dumps({k: v for k, v in report.items() if k != "examples"}, ensure_ascii=False))


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    n = args.sentences or (200 if args.quick else 1000)
    with tempfile.TemporaryDirectory(prefix="decode_speed-") as tmp:
        work_dir = args.work_dir or tmp
        os.makedirs(work_dir, exist_ok=True)
        model_dir = args.model_dir or train_small_model(work_dir, args.quick)
        print_report(run(model_dir, work_dir, n, args.batch_size, args.beam_size))
    return 0


if __name__ == "__main__":
    sys.exit(main())


def _unpack(loaded):
    """(config, model, source tokenizer, target tokenizer) of a loaded translation model."""
    return loaded.config, loaded.model, loaded.tokenizers["source"], loaded.tokenizers["target"]
