"""benchmarks/multi30k.py reads its validation BLEU curve back from the model directory's train_log.csv."""

import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("multi30k_bench", os.path.join(ROOT, "benchmarks", "multi30k.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_validation_curve_from_train_log(bench, tmp_path):
    # Three rounds of 1,000 steps; the last one was cut at step 2,500 by train.max_minutes.
    (tmp_path / "train_log.csv").write_text(
        "epoch,loss,val_bleu,val_loss\n0,4.1,25.64191,3.2\n1,3.0,32.9685,2.8\n2,2.9,33.5,2.7\n", encoding="utf-8"
    )
    assert bench.validation_curve(str(tmp_path), 1000, 2500) == [[1000, 25.64], [2000, 32.97], [2500, 33.5]]


def test_the_benchmark_refuses_selection_on_loss(bench, tmp_path):
    config = os.path.join(ROOT, "configs", "translation", "multi30k_en_de_cgru.yaml")
    with pytest.raises(SystemExit, match="train.select_on=val_bleu"):
        bench.run(config, ["train.select_on=val_loss"], str(tmp_path / "model"), 0)
    assert not os.path.exists(tmp_path / "model")
