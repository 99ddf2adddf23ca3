"""`seq2seq score`: the model's log-probability of given pairs equals what decoding computes for them.

Uses the session's synthetic word-vocabulary model (tests/conftest.py), whose outputs re-tokenise to the
same ids, so a greedy output can be scored and compared with the greedy decoder's own score.
"""

from __future__ import annotations

import io
import json
import logging
import math

import numpy as np
import pytest
import tensorflow as tf

from seq2seq import runner
from seq2seq.cli import main

SOURCES = ["a b c .", "b a .", "c c a b ."]


@pytest.fixture(scope="module")
def greedy(synthetic_model_dir):
    module = runner.serving_module(runner.load(synthetic_model_dir), strategy="greedy")
    out = module.best(tf.constant(SOURCES))
    return [t.decode() for t in out["translation"].numpy()], out["score"].numpy()


def test_score_equals_the_greedy_decoders_log_probability(synthetic_model_dir, greedy):
    outputs, decoder_scores = greedy
    scores = runner.score_pairs(list(zip(SOURCES, outputs)), model_dir=synthetic_model_dir)
    np.testing.assert_allclose([s["log_prob"] for s in scores], decoder_scores, rtol=1e-5, atol=1e-5)
    for s in scores:
        assert s["per_token"] == pytest.approx(s["log_prob"] / s["tokens"], rel=1e-6)
        penalty = ((5 + s["tokens"]) / 6) ** 0.6  # the GNMT length penalty with the config's alpha
        assert s["normalized"] == pytest.approx(s["log_prob"] / penalty, rel=1e-5)


def test_the_export_scores_the_same(synthetic_model_dir, greedy, tmp_path):
    outputs, _ = greedy
    export = runner.export(synthetic_model_dir, str(tmp_path / "export"))
    pairs = list(zip(SOURCES, outputs))
    from_export = runner.score_pairs(pairs, saved_model=export)
    in_process = runner.score_pairs(pairs, model_dir=synthetic_model_dir)
    np.testing.assert_allclose([s["log_prob"] for s in from_export], [s["log_prob"] for s in in_process], rtol=1e-6)


def test_cli_scores_a_tsv_from_stdin_and_warns_on_long_targets(synthetic_model_dir, monkeypatch, capsys, caplog):
    long_target = " ".join(["a"] * 20)
    monkeypatch.setattr("sys.stdin", io.StringIO(f"a b .\tA B .\nb a .\t{long_target}\n"))
    with caplog.at_level(logging.WARNING):
        assert main(["--quiet", "score", "--model-dir", synthetic_model_dir, "--format", "json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 2 and rows[1]["tokens"] == 21 and all(math.isfinite(r["log_prob"]) for r in rows)
    assert "longer than data.max_target_length = 12 (pairs 2)" in caplog.text


def test_cli_score_errors_name_the_line(synthetic_model_dir, tmp_path, capsys):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("a b .\tA B .\nno tab here\n", encoding="utf-8")
    assert main(["score", "--model-dir", synthetic_model_dir, "--pairs", str(pairs)]) == 2
    assert f"{pairs}:2: expected source<TAB>target" in capsys.readouterr().err
    (tmp_path / "s.txt").write_text("a .\nb .\n", encoding="utf-8")
    (tmp_path / "t.txt").write_text("A .\n", encoding="utf-8")
    assert (
        main(
            [
                "score",
                "--model-dir",
                synthetic_model_dir,
                "--source",
                str(tmp_path / "s.txt"),
                "--target",
                str(tmp_path / "t.txt"),
            ]
        )
        == 2
    )
    assert "different line counts" in capsys.readouterr().err
