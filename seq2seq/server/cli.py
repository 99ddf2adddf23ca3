"""`seq2seq serve [NAME=]EXPORT_DIR [...]`: serve exports over HTTP with uvicorn.

SIGTERM or SIGINT: the server stops accepting connections, lets in-flight requests finish (their batches run),
then `cmd_serve` returns 0.
"""

from __future__ import annotations

import argparse
import logging
import signal

from seq2seq.argtypes import non_negative_float, positive_int
from seq2seq.server.request_body import Limits

log = logging.getLogger(__name__)


def add_serve_parser(subparsers) -> argparse.ArgumentParser:
    """Add the `serve` subcommand to an `argparse` subparsers object; returns its parser."""
    defaults = Limits()
    p = subparsers.add_parser("serve", help="serve exports: TF-Serving-compatible REST API, batching, a web page")
    p.add_argument(
        "models",
        nargs="+",
        metavar="[NAME=]EXPORT_DIR",
        help="an export of `seq2seq export`; NAME (default: the folder's name) is used in the URLs",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8501, help="TCP port (default 8501, TF Serving's REST port)")
    p.add_argument("--max-batch-size", type=positive_int, default=32, help="rows per model call (default 32)")
    p.add_argument(
        "--max-wait-ms",
        type=non_negative_float,
        default=5.0,
        help="how long a batch waits for more requests, milliseconds (default 5)",
    )
    p.add_argument(
        "--no-batching", dest="batching", action="store_false", help="one model call per request (for comparison)"
    )
    p.add_argument("--threads", type=positive_int, default=2, help="concurrent calls with --no-batching (default 2)")
    p.add_argument(
        "--max-body-bytes",
        type=positive_int,
        default=defaults.max_body_bytes,
        help=f"largest request body (default {defaults.max_body_bytes})",
    )
    p.add_argument(
        "--max-text-chars",
        type=positive_int,
        default=defaults.max_text_chars,
        help=f"longest sentence, characters (default {defaults.max_text_chars})",
    )
    p.add_argument(
        "--max-instances",
        type=positive_int,
        default=defaults.max_instances,
        help=f"inputs per request (default {defaults.max_instances})",
    )
    return p


def cmd_serve(args) -> int:
    """Load the exports, run the server until SIGTERM/SIGINT; returns 0.

    Raises:
      ValueError: a bad `[NAME=]EXPORT_DIR` or a repeated name; FileNotFoundError: no SavedModel in a folder.
    """
    import uvicorn

    from seq2seq.server.app import ServerSettings, create_app
    from seq2seq.server.served_model import ServedModel, parse_model_spec

    specs = [parse_model_spec(spec) for spec in args.models]
    names = [name for name, _ in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"model names must differ, got {names}; name them with NAME=EXPORT_DIR")
    models = {name: ServedModel(name, path) for name, path in specs}
    for model in models.values():
        log.info(
            "serving %s (%s) from %s: signatures %s",
            model.name,
            model.task,
            model.export_dir,
            ", ".join(sorted(model.signatures)),
        )
    settings = ServerSettings(
        Limits(args.max_body_bytes, args.max_text_chars, args.max_instances),
        args.max_batch_size,
        args.max_wait_ms,
        args.batching,
        args.threads,
    )
    app = create_app(models, settings)
    log.info("listening on http://%s:%d/ (batching %s)", args.host, args.port, "on" if args.batching else "off")
    # uvicorn handles the signals (graceful shutdown) and afterwards re-raises them to the handlers it found;
    # these do nothing, so the process then exits with 0 instead of dying by the signal.
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=30)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
