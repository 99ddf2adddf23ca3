"""Load test of `seq2seq serve`: dynamic batching on vs off, 1/8/32/64 concurrent clients, 5% bad requests.

For each mode (batching on: `--max-batch-size`, `--max-wait-ms`; off: `--no-batching`, one signature call per
request, `--threads` at a time) a fresh server process is started on 127.0.0.1 (`seq2seq.server.process`), warmed
up with a few requests, then driven at each concurrency level by that many asyncio clients (httpx) sending
`--requests` requests in all (the level stops early after `--level-seconds`). Each good request holds one
sentence (row format, `serving_default`); 5% (`--bad-fraction`) are bad, in turn: malformed JSON, an empty list,
a number for the text, a 100,000-character string, an unknown model. Bad requests must get 4xx, good ones 200
with exactly the translation the SavedModel gives for that sentence alone (computed in this process first).

Reported per mode and level: requests/s (all requests), p50/p95/p99 latency of good requests (ms), mean batch
size (rows per signature call, from the server's /metrics), 5xx count, mismatched answers; per run: server crash
count (a server process that died during the run). The last line is all of it as JSON, with
`throughput_ratio_32` (batching on / off at 32 clients) and `p99_ms_32` for both modes, and
`batching_ceiling_32`: the median time of one signature call on 1 sentence and on 32, measured in this process
before the servers start, and `ideal_ratio` = 32 · t(1) / t(32), the most batching can gain on this machine for
this model (the measured ratio is read against it).

Without `--export`, a small model is trained first through the CLI (word vocabulary, 128 units, beam 5, 300 steps) on
2,000 pairs of the toy language of tests/conftest.py, and exported; its last `--sentences` sources are the inputs.
With `--export`, the inputs are the Spanish side of the last pairs of anki/spa-eng.txt, or `--sentences-file`.

Usage:
  python benchmarks/serve_load.py --export runs/spa_en/export
  python benchmarks/serve_load.py --quick          # 96 requests per level, tiny model trained here
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
TESTS = os.path.join(ROOT, "tests")
# The toy language of tests/conftest.py (`write_synthetic_parallel`): a word vocabulary model learns it in a few
# hundred steps and translates every sentence into several words (a weak Tatoeba model emits empty strings).
TOY_CONFIG = {
    "task": "translation",
    "data": {
        "format": "parallel",
        "lowercase": True,
        "validation_fraction": 0.05,
        "test_fraction": 0.05,
        "max_source_length": 12,
        "max_target_length": 12,
    },
    "tokenizer": {"kind": "word", "source_vocab_size": 64, "target_vocab_size": 64},
    "model": {"embedding": {"dim": 64}, "encoder": {"units": 128}, "decoder": {"units": 128}},
    "train": {
        "batch_size": 32,
        "max_steps": 300,
        "eval_every": 300,
        "checkpoint_every": 300,
        "validation_batches": 2,
        "learning_rate": 0.01,
        "max_minutes": 5,
    },
    "decode": {"beam_size": 5, "batch_size": 32, "max_length": 20},
}
BAD_BODIES = [
    b"{not json",
    b'{"instances": []}',
    b'{"instances": [5]}',
    json.dumps({"instances": ["a" * 100_000]}).encode(),
    None,
]  # None: the unknown model


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in [0, 100]) of `values`; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered) + 0.5)) - 1))]


def batch_totals(metrics_text: str) -> tuple[float, float]:
    """(rows, calls) summed over the `seq2seq_batch_size` histogram of a /metrics page."""
    from prometheus_client.parser import text_string_to_metric_families

    rows = calls = 0.0
    for family in text_string_to_metric_families(metrics_text):
        if family.name == "seq2seq_batch_size":
            for sample in family.samples:
                if sample.name.endswith("_sum"):
                    rows += sample.value
                elif sample.name.endswith("_count"):
                    calls += sample.value
    return rows, calls


async def run_level(
    url: str,
    model: str,
    clients: int,
    requests: int,
    seconds: float,
    sentences: list[str],
    expected: dict[str, str],
    bad_fraction: float,
    seed: int,
) -> dict:
    """Drive one concurrency level; returns its figures."""
    import httpx

    rng = random.Random(seed)
    plan = []
    bad_every = round(1 / bad_fraction) if bad_fraction > 0 else 0
    for i in range(requests):
        if bad_every and i % bad_every == bad_every - 1:
            plan.append(("bad", BAD_BODIES[(i // bad_every) % len(BAD_BODIES)]))
        else:
            plan.append(("good", rng.choice(sentences)))
    queue = list(reversed(plan))
    latencies, codes, mismatches, errors = [], {}, [], 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)

    async def client(http):
        nonlocal errors
        while queue and time.monotonic() < deadline:
            kind, payload = queue.pop()
            target = f"{url}/v1/models/{model}:predict"
            if kind == "good":
                body = json.dumps({"instances": [payload]}).encode()
            elif payload is None:
                target, body = f"{url}/v1/models/no_such_model:predict", b'{"instances": ["hola"]}'
            else:
                body = payload
            start = time.perf_counter()
            try:
                response = await http.post(target, content=body, headers={"content-type": "application/json"})
            except httpx.HTTPError:
                errors += 1
                continue
            elapsed = time.perf_counter() - start
            codes[response.status_code] = codes.get(response.status_code, 0) + 1
            if kind == "good":
                latencies.append(elapsed)
                if response.status_code != 200 or response.json()["predictions"][0]["translation"] != expected[payload]:
                    mismatches.append(payload)
            elif not 400 <= response.status_code < 500:
                mismatches.append(f"bad request answered {response.status_code}")

    # One connection pool per client: a single httpx pool shared by 32+ tasks becomes the bottleneck itself.
    sessions = [httpx.AsyncClient(timeout=120, limits=limits) for _ in range(clients)]
    try:
        before = batch_totals((await sessions[0].get(f"{url}/metrics")).text)
        started = time.perf_counter()
        await asyncio.gather(*[client(http) for http in sessions])
        wall = time.perf_counter() - started
        after = batch_totals((await sessions[0].get(f"{url}/metrics")).text)
    finally:
        for http in sessions:
            await http.aclose()
    done = sum(codes.values())
    calls = after[1] - before[1]
    ms = [1000 * x for x in latencies]
    return {
        "clients": clients,
        "requests": done,
        "seconds": round(wall, 3),
        "requests_per_s": round(done / wall, 2) if wall else None,
        **{f"p{q}_ms": None if not ms else round(percentile(ms, q), 1) for q in (50, 95, 99)},
        "mean_batch_size": round((after[0] - before[0]) / calls, 2) if calls else None,
        "status_4xx": sum(n for c, n in codes.items() if 400 <= c < 500),
        "status_5xx": sum(n for c, n in codes.items() if c >= 500),
        "connection_errors": errors,
        "mismatches": len(mismatches),
    }


def expected_answers(export_dir: str, sentences: list[str]) -> dict[str, str]:
    """The SavedModel's translation of each sentence alone (the reference every answer must equal)."""
    import tensorflow as tf

    from seq2seq.serving.export import load_saved_model

    serve = load_saved_model(export_dir).signatures["serving_default"]
    return {s: serve(text=tf.constant([s]))["translation"].numpy()[0].decode("utf-8") for s in sorted(set(sentences))}


def call_costs(export_dir: str, sentences: list[str], batch_size: int, repeats: int = 5) -> dict:
    """Median seconds of one `serving_default` call on 1 sentence and on `batch_size` sentences, in this process.

    `ideal_ratio` = batch_size · t(1) / t(batch_size): the throughput gain batching could give at best if the
    unbatched server ran one call at a time — the ceiling the measured `throughput_ratio_32` is read against.
    """
    import statistics

    import tensorflow as tf

    from seq2seq.serving.export import load_saved_model

    serve = load_saved_model(export_dir).signatures["serving_default"]
    batch = [sentences[i % len(sentences)] for i in range(batch_size)]

    def median_seconds(texts, count):
        inputs, times = tf.constant(texts), []
        for _ in range(count):
            started = time.perf_counter()
            serve(text=inputs)
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    median_seconds(batch, 1)  # warm-up (tracing)
    single = statistics.median(median_seconds([s], 1) for s in batch)
    batched = median_seconds(batch, repeats)
    return {
        "call_ms_1": round(1000 * single, 1),
        f"call_ms_{batch_size}": round(1000 * batched, 1),
        "ideal_ratio": round(batch_size * single / batched, 2),
    }


def train_export(work_dir: str) -> tuple[str, str]:
    """Train the toy-language model through the CLI and export it; returns (export_dir, source_file)."""
    import yaml

    sys.path.insert(0, TESTS)
    from conftest import write_synthetic_parallel

    from seq2seq.cli import main

    os.makedirs(work_dir, exist_ok=True)
    source, target = write_synthetic_parallel(work_dir, pairs=2000)
    config = os.path.join(work_dir, "toy.yaml")
    values = dict(TOY_CONFIG, data=dict(TOY_CONFIG["data"], source_file=source, target_file=target))
    with open(config, "w", encoding="utf-8") as f:
        yaml.safe_dump(values, f)
    model_dir = os.path.join(work_dir, "model")
    if main(["--quiet", "train", config, "--model-dir", model_dir]) != 0:
        raise SystemExit("training the benchmark model failed")
    export_dir = os.path.join(model_dir, "export")
    if main(["--quiet", "export", "--model-dir", model_dir, "--output", export_dir]) != 0:
        raise SystemExit("export failed")
    return export_dir, source


def read_sentences(path: str, count: int) -> list[str]:
    """The last `count` non-empty lines of `path`; for a tab-separated file (anki/spa-eng.txt) its 2nd column."""
    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f if line.strip()]
    return [line.split("\t")[1] if "\t" in line else line for line in lines][-count:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--export", help="a translation export (default: train a small one first)")
    parser.add_argument("--work-dir", help="folder for the trained model (default: a temporary folder)")
    parser.add_argument("--clients", default="1,8,32,64", help="concurrency levels (default 1,8,32,64)")
    parser.add_argument("--requests", type=int, default=320, help="requests per level (default 320)")
    parser.add_argument("--level-seconds", type=float, default=120, help="time limit per level (default 120)")
    parser.add_argument("--quick", action="store_true", help="96 requests per level, 60 s limit")
    parser.add_argument("--bad-fraction", type=float, default=0.05)
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=2, help="concurrent calls with batching off (default 2)")
    parser.add_argument("--sentences", type=int, default=200, help="distinct sentences drawn from (default 200)")
    parser.add_argument(
        "--sentences-file",
        help="inputs, one a line (default: the toy-language sources trained on, "
        "or with --export the Spanish side of $SEQ2SEQ_DATA_DIR/anki/spa-eng.txt)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        args.requests, args.level_seconds = 96, 60.0
    levels = [int(c) for c in args.clients.split(",")]

    from seq2seq.server.process import ServerProcess

    with tempfile.TemporaryDirectory() as tmp:
        if args.export:
            export_dir = args.export
            data_dir = os.environ.get("SEQ2SEQ_DATA_DIR") or os.path.join(ROOT, "..", "shared", "data")
            source = args.sentences_file or os.path.join(data_dir, "anki", "spa-eng.txt")
        else:
            export_dir, source = train_export(args.work_dir or tmp)
        sentences = read_sentences(args.sentences_file or source, args.sentences)
        expected = expected_answers(export_dir, sentences)
        ceiling = call_costs(export_dir, sentences, 32)
        print(f"signature call cost {json.dumps(ceiling)}", flush=True)
        modes = {
            "batching": ["--max-batch-size", str(args.max_batch_size), "--max-wait-ms", str(args.max_wait_ms)],
            "no_batching": ["--no-batching", "--threads", str(args.threads)],
        }
        results, crashes = {}, 0
        for mode, options in modes.items():
            with ServerProcess(
                [f"bench={export_dir}", *options, "--max-text-chars", "2000"], log_path=os.path.join(tmp, f"{mode}.log")
            ) as server:
                asyncio.run(run_level(server.url, "bench", 4, 16, 60, sentences, expected, 0, args.seed))  # warm-up
                results[mode] = []
                for level in levels:
                    figures = asyncio.run(
                        run_level(
                            server.url,
                            "bench",
                            level,
                            args.requests,
                            args.level_seconds,
                            sentences,
                            expected,
                            args.bad_fraction,
                            args.seed + level,
                        )
                    )
                    results[mode].append(figures)
                    print(f"{mode:12s} {json.dumps(figures)}", flush=True)
                    if server.process.poll() is not None:
                        crashes += 1
                        break
                code = server.stop()
                if code != 0:
                    crashes += 1
                    print(f"{mode}: server exited with {code}", flush=True)

    def at(mode, clients, key):
        return next((f[key] for f in results.get(mode, []) if f["clients"] == clients), None)

    on, off = at("batching", 32, "requests_per_s"), at("no_batching", 32, "requests_per_s")
    summary = {
        "results": results,
        "crashes": crashes,
        "status_5xx": sum(f["status_5xx"] for fs in results.values() for f in fs),
        "mismatches": sum(f["mismatches"] for fs in results.values() for f in fs),
        "throughput_ratio_32": round(on / off, 2) if on and off else None,
        "batching_ceiling_32": ceiling,
        "p99_ms_32": {"batching": at("batching", 32, "p99_ms"), "no_batching": at("no_batching", 32, "p99_ms")},
        "settings": {
            "requests": args.requests,
            "level_seconds": args.level_seconds,
            "bad_fraction": args.bad_fraction,
            "max_batch_size": args.max_batch_size,
            "max_wait_ms": args.max_wait_ms,
            "threads": args.threads,
            "export": args.export or "trained here",
        },
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
