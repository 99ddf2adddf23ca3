"""Command line: `seq2seq train | evaluate | translate | caption | export | score | average | embeddings | serve`.

Thin: parses arguments, calls `seq2seq.runner`, prints results. Errors in user input (config, data, model
directory) and OS-level failures (permission, read-only or full disk, TensorFlow file errors; see
`seq2seq.os_errors`) print one line `error: ...` and exit with status 2 (`--debug` shows the traceback); a
training run whose loss became NaN/Inf prints `error: ...` and exits with status 1; `translate` exits with 1
when some stdin lines were rejected (the others are translated).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from seq2seq.argtypes import non_negative_float, non_negative_int, positive_int  # noqa: E402
from seq2seq.server.cli import add_serve_parser, cmd_serve  # noqa: E402  (after TF_CPP_MIN_LOG_LEVEL)

log = logging.getLogger("seq2seq")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seq2seq",
        description="Train, evaluate, use and export encoder-decoder models for translation and image captioning.",
    )
    parser.add_argument("--quiet", action="store_true", help="only warnings and results")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train (or resume) a model, then evaluate it on the test split")
    p.add_argument("config", help="YAML config, e.g. configs/translation/spa_en_demo.yaml")
    p.add_argument("--model-dir", required=True, help="output folder; running again resumes training")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.max_steps=100 (repeatable)",
    )

    def decode_options(p):
        p.add_argument("--beam-size", type=positive_int, help="beam size (1 = greedy-equivalent beam)")
        p.add_argument("--strategy", choices=["beam", "greedy", "sample"], help="decoding strategy")
        p.add_argument("--length-penalty", type=non_negative_float, help="GNMT length penalty alpha (0 = none)")
        p.add_argument(
            "--block-repeats",
            type=non_negative_int,
            metavar="N",
            help="never repeat an n-gram of n <= N target pieces back to back (0 = off)",
        )

    p = sub.add_parser("evaluate", help="BLEU on a split; prints the metrics as JSON")
    p.add_argument(
        "--model-dir",
        required=True,
        action="append",
        help="a trained model directory; repeat it to decode with the ensemble of several",
    )
    p.add_argument("--split", default="test", choices=["train", "validation", "test"])
    p.add_argument("--source", help="score a test set the config does not name: source sentences, one per line")
    p.add_argument("--references", nargs="+", metavar="FILE", help="reference files for --source, one stream each")
    p.add_argument("--hypotheses", metavar="FILE", help="also write the outputs there, one per line")
    p.add_argument("--per-sentence", action="store_true", help="add sentence BLEU and chrF of every output")
    p.add_argument(
        "--wmt-language",
        metavar="LANG",
        help="also BLEU in the WMT multimodal convention (lowercase, Moses normalise + tokenise) for LANG",
    )
    decode_options(p)

    p = sub.add_parser("translate", help="translate TEXT arguments, or stdin lines")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--model-dir",
        action="append",
        help="a trained model directory; repeat it to decode with the ensemble of several",
    )
    src.add_argument("--saved-model", help="an export written by `seq2seq export`")
    src.add_argument("--litert", metavar="FILE", help="a LiteRT file written by `seq2seq export --format litert`")
    p.add_argument("text", nargs="*")
    p.add_argument("--n-best", type=positive_int, help="print the n best translations with scores (model dir only)")
    p.add_argument("--attention-plot", help="PNG file: attention map of the first sentence (model dir only)")
    decode_options(p)

    p = sub.add_parser("caption", help="caption images")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model-dir")
    src.add_argument("--saved-model")
    src.add_argument("--litert", metavar="FILE", help="a LiteRT file written by `seq2seq export --format litert`")
    p.add_argument("images", nargs="+")
    p.add_argument("--attention-plot", help="PNG file: each generated word's attention over the first image")
    decode_options(p)

    p = sub.add_parser("export", help="write a SavedModel (strings or image bytes in, strings out) or a LiteRT file")
    p.add_argument(
        "--model-dir",
        required=True,
        action="append",
        help="a trained model directory; repeat it to decode with the ensemble of several",
    )
    p.add_argument(
        "--format",
        choices=["savedmodel", "litert"],
        default="savedmodel",
        help="savedmodel (default): a SavedModel folder; litert: one LiteRT (TensorFlow Lite) file",
    )
    p.add_argument("--output", help="export folder or file (default: MODEL_DIR/export, or MODEL_DIR/model.tflite)")
    decode_options(p)

    p = sub.add_parser("score", help="log-probability of given (source, target) pairs under a translation model")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model-dir")
    src.add_argument("--saved-model", help="an export written by `seq2seq export` (its `score` signature)")
    p.add_argument("--source", help="source file, one sentence per line (with --target)")
    p.add_argument("--target", help="target file, aligned with --source")
    p.add_argument("--pairs", help="a TSV of source<TAB>target lines (default: stdin)")
    p.add_argument("--format", choices=["tsv", "json"], default="tsv", help="output: TSV columns or JSON lines")
    p.add_argument("--batch-size", type=positive_int, default=64)

    p = sub.add_parser("average", help="average the weights of the last or best N checkpoints into a new model dir")
    p.add_argument("--model-dir", required=True)
    p.add_argument("--output", required=True, help="the new model directory (must not exist)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--last", type=positive_int, metavar="N", help="the newest N checkpoints")
    which.add_argument(
        "--best",
        type=positive_int,
        metavar="N",
        help="the N best checkpoints by the run's train.select_on (lowest val_loss or highest val_bleu)",
    )

    p = sub.add_parser("embeddings", help="nearest neighbours of a word; TensorBoard projector files")
    p.add_argument("--model-dir", required=True)
    p.add_argument("--side", choices=["source", "target"], default="target")
    p.add_argument("--word", action="append", default=[], help="word or piece to look up (repeatable)")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--projector", help="folder to write vectors.tsv + metadata.tsv for the projector")
    add_serve_parser(sub)
    return parser


def _decode_overrides(args) -> dict:
    return {
        "beam_size": getattr(args, "beam_size", None),
        "strategy": getattr(args, "strategy", None),
        "length_penalty": getattr(args, "length_penalty", None),
        "block_repeats": getattr(args, "block_repeats", None),
    }


def cmd_train(args) -> int:
    from seq2seq import runner
    from seq2seq.config import load_config

    config = load_config(args.config, args.overrides)
    metrics = runner.train(config, args.model_dir, verbose=0 if args.quiet else 1)
    _print_report(metrics)
    return 0


def _print_report(metrics: dict) -> None:
    print(json.dumps({k: v for k, v in metrics.items() if k != "examples"}, indent=2, ensure_ascii=False))
    for example in metrics.get("examples", []):
        print(json.dumps(example, ensure_ascii=False))


def cmd_evaluate(args) -> int:
    from seq2seq import model_dir as md
    from seq2seq import runner

    if args.references and not args.source:
        raise ValueError("--references needs --source (the source sentences of that test set)")
    loaded = runner.load_ensemble(args.model_dir)
    metrics = runner.evaluate(
        args.model_dir[0],
        args.split,
        loaded=loaded,
        save=False,
        source_file=args.source,
        reference_files=args.references,
        hypotheses_file=args.hypotheses,
        per_sentence=args.per_sentence,
        wmt_language=args.wmt_language,
        **_decode_overrides(args),
    )
    print(json.dumps(metrics, indent=2, ensure_ascii=False), flush=True)  # printed first: a failed save loses nothing
    if len(args.model_dir) > 1:
        metrics["ensemble"] = [os.path.abspath(d) for d in args.model_dir]
    md.update_metrics(args.model_dir[0], metrics["split"], metrics)
    return 0


def _input_lines(texts):
    """(lines, status): TEXT arguments, or stdin read as bytes line by line.

    A stdin line that is not valid UTF-8 (or too long) is reported as one `error:` line naming its number and
    is left out; the other lines are still translated, and the exit status is then 1 (`seq2seq.text_input`).
    """
    if texts:
        return list(texts), 0
    from seq2seq.text_input import exit_status, read_lines

    stream = getattr(sys.stdin, "buffer", None)  # a text stream without bytes (e.g. io.StringIO): re-encoded
    lines = read_lines(stream if stream is not None else io.BytesIO(sys.stdin.read().encode("utf-8")))
    for line in lines:
        if line.error is not None:
            print(f"error: {line.error}", file=sys.stderr)
    return [line.text for line in lines if line.error is None], exit_status(lines)


def _check_decode_options(args) -> None:
    """Options that contradict each other, refused before any work."""
    n_best = getattr(args, "n_best", None)
    if n_best and args.beam_size and n_best > args.beam_size:
        raise ValueError(f"--n-best ({n_best}) must be <= --beam-size ({args.beam_size})")
    if n_best and args.strategy in ("greedy", "sample"):
        raise ValueError(f"--n-best needs beam search (got --strategy {args.strategy})")


def cmd_translate(args) -> int:
    _check_decode_options(args)
    from seq2seq import runner

    texts, status = _input_lines(args.text)
    model_dir = args.model_dir[0] if args.model_dir and len(args.model_dir) == 1 else args.model_dir
    for _, line in runner.predict_items(
        "translation",
        texts,
        model_dir=model_dir,
        saved_model=args.saved_model,
        litert=args.litert,
        n_best=args.n_best,
        attention_plot=args.attention_plot,
        **_decode_overrides(args),
    ):
        print(line)
    return status


def cmd_caption(args) -> int:
    _check_decode_options(args)
    from seq2seq import runner

    captioned = 0
    for path, caption in runner.predict_items(
        "captioning",
        args.images,
        model_dir=args.model_dir,
        saved_model=args.saved_model,
        litert=args.litert,
        attention_plot=args.attention_plot,
        **_decode_overrides(args),
    ):
        print(f"{path}\t{caption}")
        captioned += 1
    # As for translate's rejected lines: the readable images are captioned, and skipped ones make the exit status 1.
    return 0 if captioned == len(args.images) else 1


def cmd_export(args) -> int:
    from seq2seq import runner

    model_dir = args.model_dir[0] if len(args.model_dir) == 1 else args.model_dir
    if args.format == "litert":
        output = args.output or os.path.join(args.model_dir[0], "model.tflite")
        print(runner.export_litert(model_dir, output, **_decode_overrides(args)))
        return 0
    output = args.output or os.path.join(args.model_dir[0], "export")
    print(runner.export(model_dir, output, **_decode_overrides(args)))
    return 0


def _score_pairs_input(args) -> list[tuple[str, str]]:
    """(source, target) pairs from --source/--target, --pairs or stdin; file:line errors as for training data."""
    from pipelines.errors import DataError
    from pipelines.translation import read_parallel

    if bool(args.source) != bool(args.target):
        raise ValueError("--source and --target go together (or use --pairs FILE / stdin)")
    if args.source:
        return list(read_parallel(args.source, args.target))
    if args.pairs:
        handle = open(args.pairs, encoding="utf-8")
        name = args.pairs
    else:
        handle, name = sys.stdin, "stdin"
    pairs = []
    with handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            columns = line.split("\t")
            if len(columns) != 2:
                raise DataError(f"{name}:{number}: expected source<TAB>target, got {len(columns)} column(s)")
            pairs.append((columns[0], columns[1]))
    return pairs


def cmd_score(args) -> int:
    from seq2seq import runner

    pairs = _score_pairs_input(args)
    results = runner.score_pairs(
        pairs, model_dir=args.model_dir, saved_model=args.saved_model, batch_size=args.batch_size
    )
    if args.format == "tsv":
        print("\t".join(runner.SCORE_FIELDS))
    for result in results:
        if args.format == "json":
            print(json.dumps(result))
        else:
            print(
                "\t".join(
                    f"{result[name]:.6f}" if name != "tokens" else str(result[name]) for name in runner.SCORE_FIELDS
                )
            )
    return 0


def cmd_average(args) -> int:
    from seq2seq.averaging import average_checkpoints

    print(average_checkpoints(args.model_dir, args.output, last=args.last, best=args.best))
    return 0


def cmd_embeddings(args) -> int:
    from seq2seq.embedding_tools import inspect_embeddings

    for line in inspect_embeddings(args.model_dir, args.side, args.word, args.k, args.projector):
        print(line)
    return 0


COMMANDS = {
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "translate": cmd_translate,
    "caption": cmd_caption,
    "export": cmd_export,
    "score": cmd_score,
    "average": cmd_average,
    "embeddings": cmd_embeddings,
    "serve": cmd_serve,
}


def main(argv=None) -> int:
    """Entry point of the `seq2seq` console command; returns the process exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from pipelines.errors import DataError
    from seq2seq.errors import ConfigError, ModelDirError, NonFiniteLossError
    from seq2seq.os_errors import describe_os_error

    try:
        return COMMANDS[args.command](args)
    except (ConfigError, ModelDirError, DataError, FileNotFoundError, ValueError) as err:
        if args.debug:
            raise
        described = describe_os_error(err) if isinstance(err, OSError) and err.errno else None
        print(f"error: {described or err}", file=sys.stderr)
        return 2
    except NonFiniteLossError as err:  # not an input error: the run diverged (last good checkpoint kept)
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted (training keeps its last checkpoint; run the same command to resume)", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the one boundary for OS-level failures (permission, no space, ...)
        described = describe_os_error(err)
        if described is None or args.debug:
            raise
        print(f"error: {described}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
