"""LiteRT against SavedModel on one trained translation model: same translations? file size, latency per sentence.

For each decoding strategy (greedy, and beam search with the model's `decode` settings) the model directory is
exported twice in this run: as a SavedModel (`seq2seq.runner.export`) and as a LiteRT file
(`seq2seq.runner.export_litert`, run in the ai-edge-litert interpreter with tensorflow-text's kernels). Both
translate the same held-out sentences — the first ``--sentences`` (default 200) of the model directory's test
split — one sentence per call (on-device use; the LiteRT file takes one sentence per call). Each path gets one
untimed warm-up call; latency is the wall time of each call (tokenisation and detokenisation included),
reported as mean, median and p95 in milliseconds. Agreement counts the sentences whose translations are
byte-identical, and lists the first differing ones.

Output: a table, then one JSON line: per strategy ``identical`` / ``sentences``, ``savedmodel_bytes`` (the whole
export folder), ``litert_bytes``, latencies, ``latency_ratio`` (LiteRT mean / SavedModel mean), conversion
seconds, and the custom ops the LiteRT file needs.

Usage:
  python benchmarks/litert_speed.py --model-dir runs/multi30k_cgru [--sentences 200] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def folder_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def timed(function, sentences):
    """(outputs, per-call seconds) of function(sentence) for each sentence, after one warm-up call."""
    function(sentences[0])
    outputs, seconds = [], []
    for sentence in sentences:
        started = time.perf_counter()
        outputs.append(function(sentence))
        seconds.append(time.perf_counter() - started)
    return outputs, seconds


def latency(seconds) -> dict:
    ms = sorted(1000.0 * s for s in seconds)
    return {
        "mean_ms": round(statistics.fmean(ms), 2),
        "median_ms": round(statistics.median(ms), 2),
        "p95_ms": round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 2),
    }


def measure(model_dir: str, sentences: list[str], strategy: str, work_dir: str, threads) -> dict:
    import tensorflow as tf

    from seq2seq import runner
    from seq2seq.serving.export import load_saved_model
    from seq2seq.serving.litert import LiteRTModel, custom_ops

    saved_model = runner.export(model_dir, os.path.join(work_dir, f"savedmodel_{strategy}"), strategy=strategy)
    started = time.perf_counter()
    litert_file = runner.export_litert(model_dir, os.path.join(work_dir, f"{strategy}.tflite"), strategy=strategy)
    convert_seconds = time.perf_counter() - started

    serve = load_saved_model(saved_model).signatures["serving_default"]

    def savedmodel_one(sentence):
        return serve(text=tf.constant([sentence]))["translation"].numpy()[0].decode("utf-8")

    translator = LiteRTModel(litert_file, num_threads=threads)
    expected, savedmodel_seconds = timed(savedmodel_one, sentences)
    got, litert_seconds = timed(lambda s: translator.translate_one(s)[0], sentences)
    differing = [{"source": s, "savedmodel": a, "litert": b} for s, a, b in zip(sentences, expected, got) if a != b]
    with open(litert_file, "rb") as f:
        ops = sorted(set(custom_ops(f.read())))
    return {
        "sentences": len(sentences),
        "identical": len(sentences) - len(differing),
        "first_differences": differing[:5],
        "savedmodel_bytes": folder_bytes(saved_model),
        "litert_bytes": os.path.getsize(litert_file),
        "savedmodel_latency": latency(savedmodel_seconds),
        "litert_latency": latency(litert_seconds),
        "latency_ratio": round(statistics.fmean(litert_seconds) / statistics.fmean(savedmodel_seconds), 3),
        "convert_seconds": round(convert_seconds, 1),
        "custom_ops": ops,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", required=True, help="a trained translation model directory")
    parser.add_argument("--sentences", type=int, default=200, help="held-out sentences (default 200)")
    parser.add_argument("--threads", type=int, default=None, help="LiteRT interpreter threads (default: its own)")
    parser.add_argument("--strategies", nargs="+", default=["greedy", "beam"], choices=["greedy", "beam"])
    args = parser.parse_args(argv)

    from seq2seq import runner

    loaded = runner.load(args.model_dir)
    sentences = list(loaded.task.evaluation_set("test").inputs[: args.sentences])
    del loaded
    results = {"model_dir": os.path.abspath(args.model_dir), "threads": args.threads}
    with tempfile.TemporaryDirectory(prefix="litert-bench-") as work_dir:
        for strategy in args.strategies:
            results[strategy] = measure(args.model_dir, sentences, strategy, work_dir, args.threads)
    widths = {"strategy": -8, "identical": 10, "SavedModel": 12, "LiteRT": 10, "SM ms": 8, "LiteRT ms": 10, "ratio": 6}
    print(" ".join(f"{name:<{-w}}" if w < 0 else f"{name:>{w}}" for name, w in widths.items()))
    for strategy in args.strategies:
        r = results[strategy]
        print(
            f"{strategy:<8} {r['identical']:>5}/{r['sentences']:<4} {r['savedmodel_bytes'] / 1e6:>10.1f}MB"
            f" {r['litert_bytes'] / 1e6:>8.1f}MB {r['savedmodel_latency']['mean_ms']:>8.1f}"
            f" {r['litert_latency']['mean_ms']:>10.1f} {r['latency_ratio']:>6.2f}"
        )
    print(json.dumps(results, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
