"""Multi30k en→de from scratch (default configs/translation/multi30k_en_de_gru.yaml; `--config` for others, e.g.
multi30k_en_de_cgru.yaml): test_2016_flickr metrics with their signatures, the validation BLEU curve, the
repetition rate, wall time and peak resident memory.

Training runs in rounds of `train.eval_every` steps through `seq2seq.runner.train` (which resumes from
the model directory's checkpoints); after every round the model (best weights by validation loss) is decoded
on the validation split and its sacreBLEU recorded — the curve. Only val is used for tuning/early stopping;
test_2016_flickr is reported from the final round. Wall time covers everything (tokenizers, training,
decoding); `train_seconds` sums `runner.train`'s training time only. Peak memory is this process's
maximum resident set size (`resource.getrusage(RUSAGE_SELF).ru_maxrss`, KiB on Linux).

The test metrics are those of `seq2seq evaluate --wmt-language de` on the references as they stand in the files:
cased sacreBLEU (the headline), lowercased sacreBLEU (case:lc), chrF, TER, and BLEU in the WMT multimodal
convention (lc.norm.tok, the figure Multi30k papers report), each with its signature.

Full run (90 minutes of training on 2 CPU cores):
  SEQ2SEQ_DATA_DIR=../shared/data python benchmarks/multi30k.py --model-dir runs/multi30k
Quick check (a few minutes; BLEU will be near 0 — it checks the plumbing):
  SEQ2SEQ_DATA_DIR=../shared/data python benchmarks/multi30k.py --quick

The validation curve is also drawn to <model-dir>/val_bleu_curve.png. The last line printed is JSON:
test_sacrebleu (cased), test_metrics {bleu, bleu_lc, chrf, ter, bleu_wmt_lc_norm_tok: {score, signature}},
repetition_rate (with reference_repetition_rate), val_bleu_curve [[step, cased bleu], ...], curve_plot,
wall_seconds, train_seconds, peak_rss_mb, steps.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import resource
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from seq2seq import runner  # noqa: E402
from seq2seq.config import load_config  # noqa: E402
from seq2seq.plots import plot_curve  # noqa: E402

DEFAULT_CONFIG = os.path.join(ROOT, "configs", "translation", "multi30k_en_de_gru.yaml")
QUICK = [
    "train.max_steps=150",
    "train.eval_every=75",
    "train.checkpoint_every=75",
    "train.warmup_steps=20",
    "train.max_minutes=null",
    "train.validation_batches=4",
    "decode.strategy=greedy",
    "decode.beam_size=1",
]


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run(config_path: str, overrides: list, model_dir: str, verbose: int) -> dict:
    """Train in rounds of eval_every steps, validating BLEU after each; returns the summary dict."""
    config = load_config(config_path, overrides)
    total, every = config.train.max_steps, config.train.eval_every
    started = time.time()
    curve, train_seconds, test, step = [], 0.0, None, 0
    for target in list(range(every, total, every)) + [total]:
        budget = []  # the time cap applies to the sum of the rounds' training time
        if config.train.max_minutes:
            budget = [f"train.max_minutes={config.train.max_minutes - train_seconds / 60.0}"]
        round_config = load_config(config_path, overrides + [f"train.max_steps={target}"] + budget)
        test = runner.train(round_config, model_dir, verbose=verbose)
        train_seconds += test["train_seconds"]
        if test["steps"] <= step:  # early stopping or the time limit ended training
            break
        step = test["steps"]
        val = runner.evaluate(model_dir, "validation", progress=False)
        curve.append([step, round(val["sacrebleu"], 2)])
        print(
            f"step {step}: val sacreBLEU {val['sacrebleu']:.2f}, test sacreBLEU {test['sacrebleu']:.2f}, "
            f"{time.time() - started:.0f} s, peak RSS {peak_rss_mb():.0f} MiB",
            flush=True,
        )
        if config.train.max_minutes and train_seconds >= 60 * config.train.max_minutes:
            break
        keras.backend.clear_session()  # each round builds a new model: free the last one's graphs
        gc.collect()
    final = runner.evaluate(model_dir, "test", progress=False, wmt_language="de")
    metric_names = ("bleu", "bleu_lc", "chrf", "ter", "bleu_wmt_lc_norm_tok")
    plot = os.path.join(model_dir, "val_bleu_curve.png")
    if curve:
        plot_curve(
            [(s, b) for s, b in curve],
            plot,
            "training step",
            "validation sacreBLEU",
            f"Multi30k en→de, {os.path.basename(config_path)}",
        )
    return {
        "test_sacrebleu": round(final["sacrebleu"], 2),
        "test_metrics": {
            name: {"score": round(final[name]["score"], 2), "signature": final[name]["signature"]}
            for name in metric_names
        },
        "repetition_rate": final["repetition_rate"],
        "reference_repetition_rate": final["reference_repetition_rate"],
        "curve_plot": plot if curve else None,
        "val_bleu_curve": curve,
        "wall_seconds": round(time.time() - started, 1),
        "train_seconds": round(train_seconds, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "steps": step,
        "model_dir": model_dir,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--model-dir", help="model directory (default: a new temporary folder)")
    parser.add_argument("--quick", action="store_true", help="150 steps, greedy decoding (a few minutes)")
    parser.add_argument("--verbose", type=int, default=0, help="Keras fit verbosity (default 0)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    overrides = (QUICK if args.quick else []) + args.overrides
    model_dir = args.model_dir or tempfile.mkdtemp(prefix="multi30k-")
    print(json.dumps(run(args.config, overrides, model_dir, args.verbose)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
