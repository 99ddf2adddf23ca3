"""Command line: `seq2seq train | evaluate | translate | caption | export | embeddings`.

Thin: parses arguments, calls the task modules, prints results. Errors in user input (config, data, model
directory) print one line `error: ...` and exit with status 2; a training run whose loss became NaN/Inf prints
`error: ...` and exits with status 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from seq2seq.server.cli import add_serve_parser, cmd_serve  # noqa: E402  (after TF_CPP_MIN_LOG_LEVEL)

log = logging.getLogger("seq2seq")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seq2seq", description="Train, evaluate, use and export "
                                     "encoder-decoder models for translation and image captioning.")
    parser.add_argument("--quiet", action="store_true", help="only warnings and results")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train (or resume) a model, then evaluate it on the test split")
    p.add_argument("config", help="YAML config, e.g. configs/translation/spa_en_demo.yaml")
    p.add_argument("--model-dir", required=True, help="output folder; running again resumes training")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.max_steps=100 (repeatable)")

    def decode_options(p):
        p.add_argument("--beam-size", type=_positive_int, help="beam size (1 = greedy-equivalent beam)")
        p.add_argument("--strategy", choices=["beam", "greedy", "sample"], help="decoding strategy")
        p.add_argument("--length-penalty", type=_non_negative_float, help="GNMT length penalty alpha (0 = none)")

    p = sub.add_parser("evaluate", help="BLEU on a split; prints the metrics as JSON")
    p.add_argument("--model-dir", required=True)
    p.add_argument("--split", default="test", choices=["train", "validation", "test"])
    decode_options(p)

    p = sub.add_parser("translate", help="translate TEXT arguments, or stdin lines")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model-dir")
    src.add_argument("--saved-model", help="an export written by `seq2seq export`")
    p.add_argument("text", nargs="*")
    p.add_argument("--n-best", type=_positive_int, help="print the n best translations with scores (model dir only)")
    p.add_argument("--attention-plot", help="PNG file: attention map of the first sentence (model dir only)")
    decode_options(p)

    p = sub.add_parser("caption", help="caption images")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model-dir")
    src.add_argument("--saved-model")
    p.add_argument("images", nargs="+")
    p.add_argument("--attention-plot", help="PNG file: each generated word's attention over the first image")
    decode_options(p)

    p = sub.add_parser("export", help="write a SavedModel (strings or image bytes in, strings out)")
    p.add_argument("--model-dir", required=True)
    p.add_argument("--output", help="export folder (default: MODEL_DIR/export)")
    decode_options(p)

    p = sub.add_parser("embeddings", help="nearest neighbours of a word; TensorBoard projector files")
    p.add_argument("--model-dir", required=True)
    p.add_argument("--side", choices=["source", "target"], default="target")
    p.add_argument("--word", action="append", default=[], help="word or piece to look up (repeatable)")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--projector", help="folder to write vectors.tsv + metadata.tsv for the projector")
    add_serve_parser(sub)
    return parser


def _decode_overrides(args) -> dict:
    return {"beam_size": getattr(args, "beam_size", None), "strategy": getattr(args, "strategy", None),
            "length_penalty": getattr(args, "length_penalty", None)}


def _task(model_dir: str):
    from seq2seq import model_dir as md

    config = md.read_config(model_dir)
    if config.task == "captioning":
        from seq2seq import captioning as task
    else:
        from seq2seq import translation as task
    return task


def cmd_train(args) -> int:
    from seq2seq.config import load_config

    config = load_config(args.config, args.overrides)
    if config.task == "captioning":
        from seq2seq import captioning as task
    else:
        from seq2seq import translation as task
    metrics = task.train(config, args.model_dir, verbose=0 if args.quiet else 1)
    _print_report(metrics)
    return 0


def _print_report(metrics: dict) -> None:
    print(json.dumps({k: v for k, v in metrics.items() if k != "examples"}, indent=2, ensure_ascii=False))
    for example in metrics.get("examples", []):
        print(json.dumps(example, ensure_ascii=False))


def cmd_evaluate(args) -> int:
    metrics = _task(args.model_dir).evaluate(args.model_dir, args.split, **_decode_overrides(args))
    print(json.dumps(metrics, indent=2, ensure_ascii=False))
    return 0


def _input_lines(texts):
    if texts:
        return list(texts)
    return [line.rstrip("\n") for line in sys.stdin]


def cmd_translate(args) -> int:
    import tensorflow as tf

    if args.saved_model and (args.n_best or args.attention_plot or any(
            v is not None for v in _decode_overrides(args).values())):
        raise ValueError("--n-best, --attention-plot and decoding options need --model-dir; an export decodes "
                         "with the settings it was exported with")
    if args.n_best and args.beam_size and args.n_best > args.beam_size:
        raise ValueError(f"--n-best ({args.n_best}) must be <= --beam-size ({args.beam_size})")
    if args.n_best and args.strategy in ("greedy", "sample"):
        raise ValueError(f"--n-best needs beam search (got --strategy {args.strategy})")
    texts = _input_lines(args.text)
    if args.saved_model:
        from seq2seq.export import load_saved_model

        serve = load_saved_model(args.saved_model).signatures["serving_default"]
        if "text" not in serve.structured_input_signature[1]:
            raise ValueError(f"{args.saved_model!r} is not a translation export (its inputs: "
                             f"{', '.join(serve.structured_input_signature[1])}); use `seq2seq caption`")
        for start in range(0, len(texts), 64):
            out = serve(text=tf.constant(texts[start:start + 64], tf.string))
            for line in out["translation"].numpy():
                print(line.decode("utf-8"))
        return 0
    from seq2seq import translation

    config, model, source_tok, target_tok = translation.load(args.model_dir)
    module = translation.translator(config, model, source_tok, target_tok, n_best=args.n_best,
                                    **_decode_overrides(args))
    if args.n_best:
        for start in range(0, len(texts), 64):
            out = module.translate_nbest(tf.constant(texts[start:start + 64], tf.string))
            for row, scores in zip(out["translations"].numpy(), out["scores"].numpy()):
                print("\t".join(f"{t.decode('utf-8')} ({s:.3f})" for t, s in zip(row, scores)))
    else:
        translations, _ = translation.translate_lines(module, texts, config.decode.batch_size)
        for line in translations:
            print(line)
    if args.attention_plot and texts:
        from seq2seq.plots import plot_translation_attention

        out = module.translate_with_attention(tf.constant(texts[:1], tf.string))
        plot_translation_attention(out, args.attention_plot)
        log.info("attention map written to %s", args.attention_plot)
    return 0


def cmd_caption(args) -> int:
    from seq2seq import captioning

    for path, caption in captioning.caption_images(args.model_dir, args.saved_model, args.images,
                                                   attention_plot=args.attention_plot,
                                                   **_decode_overrides(args)):
        print(f"{path}\t{caption}")
    return 0


def cmd_export(args) -> int:
    output = args.output or os.path.join(args.model_dir, "export")
    path = _task(args.model_dir).export(args.model_dir, output, **_decode_overrides(args))
    print(path)
    return 0


def cmd_embeddings(args) -> int:
    from seq2seq.embedding_tools import inspect_embeddings

    for line in inspect_embeddings(args.model_dir, args.side, args.word, args.k, args.projector):
        print(line)
    return 0


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "translate": cmd_translate, "caption": cmd_caption,
            "export": cmd_export, "embeddings": cmd_embeddings, "serve": cmd_serve}


def main(argv=None) -> int:
    """Entry point of the `seq2seq` console command; returns the process exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from pipelines.translation import DataError
    from seq2seq.config import ConfigError
    from seq2seq.model_dir import ModelDirError
    from seq2seq.training import NonFiniteLossError

    try:
        return COMMANDS[args.command](args)
    except (ConfigError, ModelDirError, DataError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except NonFiniteLossError as err:  # not an input error: the run diverged (last good checkpoint kept)
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted (training keeps its last checkpoint; run the same command to resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
