"""Multi30k en→de from scratch (default configs/translation/multi30k_en_de_gru.yaml; `--config` for others, e.g.
multi30k_en_de_cgru.yaml): test_2016_flickr metrics with their signatures, the validation BLEU curve, the
repetition rate, wall time and peak resident memory.

Training is one `seq2seq.runner.train` call with `train.select_on: val_bleu` (the benchmark sets it; the
config's other settings stand): every `train.eval_every` steps the validation split is decoded (greedy, or
`train.validation_beam_size` beams) and its cased sacreBLEU logged — the curve, read back from
`<model-dir>/train_log.csv` — and the best round's weights are the model that is tested. One run means one
learning-rate schedule (a cosine decays once over `train.max_steps`). Only val is used for selection and early
stopping; test_2016_flickr is decoded once at the end. Wall time covers everything (tokenizers, training,
decoding); `train_seconds` is `runner.train`'s training time (validation decoding included, as
`train.max_minutes` counts it). Peak memory is this process's maximum resident set size
(`resource.getrusage(RUSAGE_SELF).ru_maxrss`, KiB on Linux).

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
import csv
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


def validation_curve(model_dir: str, steps_per_round: int, final_step: int) -> list:
    """[[step, cased val BLEU], ...] from the model directory's train_log.csv (the `val_bleu` column)."""
    with open(os.path.join(model_dir, "train_log.csv"), newline="", encoding="utf-8") as f:
        rows = [row for row in csv.DictReader(f) if row.get("val_bleu")]
    return [
        [min((int(row["epoch"]) + 1) * steps_per_round, final_step), round(float(row["val_bleu"]), 2)] for row in rows
    ]


def run(config_path: str, overrides: list, model_dir: str, verbose: int) -> dict:
    """One `seq2seq.runner.train` run selected on validation BLEU, then the test metrics; the summary dict."""
    overrides = ["train.select_on=val_bleu"] + overrides  # a later --set may still choose val_loss
    config = load_config(config_path, overrides)
    if config.train.select_on != "val_bleu":
        raise SystemExit("error: benchmarks/multi30k.py reads the validation BLEU curve: keep train.select_on=val_bleu")
    started = time.time()
    trained = runner.train(config, model_dir, verbose=verbose)
    curve = validation_curve(model_dir, min(config.train.eval_every, config.train.max_steps), trained["steps"])
    for step, bleu in curve:
        print(f"step {step}: val sacreBLEU {bleu:.2f}", flush=True)
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
        "train_seconds": round(trained["train_seconds"], 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "steps": trained["steps"],
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
