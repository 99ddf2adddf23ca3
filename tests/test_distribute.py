"""`train.strategy`: MirroredStrategy over two logical CPUs matches one device; two local
MultiWorkerMirroredStrategy workers train together and only the chief writes.

Each case runs in fresh Python subprocesses: logical devices and collective ops must be configured before
TensorFlow initialises, which has already happened in the pytest process.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A tiny model and one fixed global batch of 4 pairs; its two halves (one per replica) hold different
# numbers of real target tokens (5 and 6), so a per-replica token mean would not match the global one.
_COMMON = textwrap.dedent("""
    import json, os, sys
    sys.path.insert(0, {root!r})
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    import numpy as np
    import tensorflow as tf

    def tiny_config(**train):
        from seq2seq.config import config_from_dict
        return config_from_dict({{
            "data": {{"path": "unused.tsv"}},
            "model": {{"embedding": {{"dim": 8}}, "encoder": {{"units": 8}}, "decoder": {{"units": 8}}}},
            "train": {{"max_steps": 3, "eval_every": 1, "checkpoint_every": 3, "learning_rate": 0.01, **train}}}})

    def global_batch():
        source = np.array([[5, 6, 3], [7, 3, 0], [8, 9, 3], [4, 3, 0]], "int32")
        target_in = np.array([[2, 6, 5], [2, 7, 0], [2, 8, 5], [2, 4, 9]], "int32")
        target_out = np.array([[6, 5, 3], [7, 3, 0], [8, 5, 3], [4, 9, 3]], "int32")
        dataset = tf.data.Dataset.from_tensors(((source, target_in), target_out)).repeat()
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return dataset.with_options(options)
""")

_MIRRORED = _COMMON + textwrap.dedent("""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from seq2seq.training.distribute import make_strategy
    from seq2seq.model.seq2seq import build_model
    from seq2seq.training.fit import compile_model
    from seq2seq.training.trainer import build_trainable_model

    config = tiny_config(strategy="mirrored")

    def train(strategy, initial):
        with strategy.scope():
            model = compile_model(build_trainable_model(config, 12, 12), config.train)
        if initial is not None:
            model.set_weights(initial)
        start = [w.copy() for w in model.get_weights()]
        history = model.fit(global_batch(), epochs=3, steps_per_epoch=1, verbose=0)
        return start, history.history["loss"], model.get_weights(), strategy.num_replicas_in_sync

    keras.utils.set_random_seed(0)
    start, single, single_weights, n1 = train(make_strategy("default"), None)
    _, mirrored, mirrored_weights, n2 = train(make_strategy("mirrored", ["/cpu:0", "/cpu:1"]), start)
    print(json.dumps({{"replicas": [n1, n2], "single": single, "mirrored": mirrored,
                      "max_weight_diff": max(float(np.max(np.abs(a - b)))
                                             for a, b in zip(single_weights, mirrored_weights))}}))
""")

_WORKER = _COMMON + textwrap.dedent("""
    import tempfile
    tempfile.tempdir = sys.argv[2]  # this worker's scratch folders are created here (and must be removed)
    from seq2seq.training.distribute import is_chief, make_strategy
    strategy = make_strategy("multi_worker_mirrored")
    from seq2seq.model.seq2seq import build_model
    from seq2seq.training.fit import compile_model, fit
    from seq2seq.training.trainer import build_trainable_model

    config = tiny_config(strategy="multi_worker_mirrored", validation_batches=1)
    with strategy.scope():
        model = compile_model(build_trainable_model(config, 12, 12), config.train)
    result = fit(model, global_batch(), global_batch(), config.train, sys.argv[1], verbose=0)
    print(json.dumps({{"final_step": result["final_step"], "chief": is_chief(strategy),
                      "replicas": strategy.num_replicas_in_sync, "loss": result["history"]["loss"],
                      "val_loss": result["history"]["val_loss"]}}))
""")


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT, **extra)
    return env


def _last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def _free_ports(n: int) -> list:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_mirrored_matches_single_device():
    out = subprocess.run(
        [sys.executable, "-c", _MIRRORED.format(root=ROOT)], capture_output=True, text=True, env=_env(), timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = _last_json(out.stdout)
    assert result["replicas"] == [1, 2]
    # Same loss at each of 3 steps (so the same gradients were applied) and the same final weights.
    assert result["mirrored"] == pytest.approx(result["single"], rel=1e-4, abs=1e-5)
    assert result["single"][2] < result["single"][0]  # it did train
    assert result["max_weight_diff"] < 1e-4


def test_multi_worker_two_local_workers(tmp_path):
    model_dir = tmp_path / "model"
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    procs = []
    for index in range(2):
        scratch = tmp_path / f"scratch{index}"
        scratch.mkdir()
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", _WORKER.format(root=ROOT), str(model_dir), str(scratch)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=_env(TF_CONFIG=tf_config),
            )
        )
    outputs = []
    try:
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=300)
            assert proc.returncode == 0, stderr[-3000:]
            outputs.append(_last_json(stdout))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert [o["chief"] for o in outputs] == [True, False]
    assert all(o["replicas"] == 2 and o["final_step"] == 3 for o in outputs)
    assert outputs[0]["loss"] == pytest.approx(outputs[1]["loss"], rel=1e-5)  # one synchronous training run
    assert outputs[0]["val_loss"] == pytest.approx(outputs[1]["val_loss"], rel=1e-5)
    assert outputs[0]["loss"][-1] < outputs[0]["loss"][0]  # it trained
    # Only the chief wrote into the model directory: one log row per round (the non-chief appending to the
    # same CSV would double them), the final checkpoint and best weights; the worker's scratch is gone.
    with open(model_dir / "train_log.csv", encoding="utf-8") as f:
        assert len(f.read().strip().splitlines()) == 1 + 3
    assert os.listdir(model_dir / "checkpoints") == ["ckpt-3.weights.h5"]
    assert (model_dir / "best.weights.h5").exists()
    assert os.listdir(tmp_path / "scratch1") == []


def _run_workers(tmp_path, argv_for, count=2, timeout=300):
    """Start `count` local workers of one cluster (worker i runs `argv_for(i)`); returns their
    (returncode, stdout, stderr) in worker order, killing any still running on failure.
    """
    ports = _free_ports(count)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    procs = []
    for index in range(count):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        procs.append(
            subprocess.Popen(
                argv_for(index),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=_env(TF_CONFIG=tf_config),
                cwd=str(tmp_path),
            )
        )
    try:
        outputs = [proc.communicate(timeout=timeout) for proc in procs]
        return [(proc.returncode, *output) for proc, output in zip(procs, outputs)]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()


def test_multi_worker_cli_translation(tmp_path):
    """`seq2seq train` in two worker processes: the chief alone writes the model directory (config,
    SentencePiece tokenizers, checkpoints, log, model, metrics); the other worker waits for the chief's
    tokenizers, trains in lockstep and returns without evaluating.
    """
    import yaml
    from conftest import write_synthetic_parallel

    source, target = write_synthetic_parallel(str(tmp_path), pairs=300)
    config = {
        "task": "translation",
        "data": {
            "format": "parallel",
            "source_file": source,
            "target_file": target,
            "validation_fraction": 0.1,
            "test_fraction": 0.1,
        },
        "tokenizer": {
            "kind": "sentencepiece",
            "byte_fallback": False,
            "source_vocab_size": 30,
            "target_vocab_size": 30,
        },
        "model": {"embedding": {"dim": 8}, "encoder": {"units": 8}, "decoder": {"units": 8}},
        "train": {
            "strategy": "multi_worker_mirrored",
            "batch_size": 16,
            "max_steps": 6,
            "eval_every": 3,
            "checkpoint_every": 3,
            "validation_batches": 1,
        },
        "decode": {"strategy": "greedy", "max_length": 12},
    }
    config_path = tmp_path / "mw.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    model_dir = tmp_path / "model"
    results = _run_workers(
        tmp_path,
        lambda index: [
            sys.executable,
            "-m",
            "seq2seq.cli",
            "--quiet",
            "train",
            str(config_path),
            "--model-dir",
            str(model_dir),
        ],
    )
    for code, _, stderr in results:
        assert code == 0, stderr[-3000:]
    chief, worker = (json.loads(stdout[stdout.index("{") : stdout.index("\n}") + 2]) for _, stdout, _ in results)
    assert chief["steps"] == worker["steps"] == 6
    assert "sacrebleu" in chief and "sacrebleu" not in worker
    assert sorted(os.listdir(model_dir / "checkpoints")) == ["ckpt-3.weights.h5", "ckpt-6.weights.h5"]
    with open(model_dir / "train_log.csv", encoding="utf-8") as f:
        assert len(f.read().strip().splitlines()) == 1 + 2  # header + one row per round, from the chief only
    for name in ("config.yaml", "tokenizers/source.json", "tokenizers/target.model", "model.keras", "metrics.json"):
        assert (model_dir / name).exists(), name
