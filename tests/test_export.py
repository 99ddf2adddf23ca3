"""SavedModel export: atomic writes, signatures, and serving in a process without seq2seq.

Model fixtures (`translation_model_dir`, `synthetic_model_dir`, ...) are in tests/conftest.py; the Tatoeba
variant skips when the shared data folder is absent.
"""

import json
import os
import re
import subprocess
import sys

import pytest
import tensorflow as tf

from seq2seq import runner
from seq2seq.cli import main
from seq2seq.serving.export import load_saved_model, save_atomically

SAVED_MODEL_CLI = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")

# Runs in a fresh interpreter (-I: no cwd / PYTHONPATH on sys.path): loads an export with only
# tensorflow + tensorflow_text imported and prints both signatures' outputs and the imported packages.
SERVE_SCRIPT = r"""
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  registers the SentencePiece ops
export_dir = sys.argv[1]
texts = json.loads(sys.stdin.read())
loaded = tf.saved_model.load(export_dir)
out = {}
for name in ("serving_default", "translate_nbest"):
    result = loaded.signatures[name](text=tf.constant(texts, tf.string))
    out[name] = {key: value.numpy().tolist() for key, value in result.items()}
    for key, value in out[name].items():
        if result[key].dtype == tf.string:
            out[name][key] = json.loads(json.dumps(value, default=lambda b: b.decode("utf-8")))
# Each exported tokenizer must still hold its own model (two SentencePiece models share one kernel resource
# after loading unless their ops are named apart).
for side in ("source", "target"):
    tokenizer = getattr(loaded, side + "_tokenizer")
    out[side + "_ids"] = tokenizer.tokenize(tf.constant(texts, tf.string)).to_list()
out["project_modules"] = sorted(m for m in sys.modules if m.split(".")[0] in ("seq2seq", "pipelines"))
print(json.dumps(out))
"""


def _as_python(outputs: dict) -> dict:
    """Signature outputs (tf tensors) -> nested lists of str / float, as the fresh process prints them."""
    result = {}
    for key, value in outputs.items():
        array = value.numpy()
        if value.dtype == tf.string:
            result[key] = [
                [b.decode("utf-8") for b in row] if array.ndim == 2 else row.decode("utf-8") for row in array
            ]
        else:
            result[key] = array.tolist()
    return result


@pytest.fixture(scope="module")
def exported(translation_model_dir, tmp_path_factory):
    """(model_dir, export_dir) with n_best 2 so the n-best signature returns two hypotheses."""
    export_dir = str(tmp_path_factory.mktemp("export") / "saved")
    return translation_model_dir, runner.export(translation_model_dir, export_dir, n_best=2)


# --------------------------------------------------------------------------------------------------
# Atomic writes (a two-line module: no training needed)


class _Doubler(tf.Module):
    def __init__(self, factor):
        super().__init__()
        self.factor = tf.Variable(float(factor))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def call(self, x):
        return {"y": x * self.factor}


def _failing_save(module, export_dir, signatures=None, **kwargs):
    """Writes part of a SavedModel, then fails like a full disk would."""
    os.makedirs(os.path.join(export_dir, "variables"), exist_ok=True)
    with open(os.path.join(export_dir, "saved_model.pb"), "wb") as f:
        f.write(b"partial")
    raise OSError(28, "No space left on device (simulated)")


def test_failed_export_leaves_no_partial_directory(tmp_path, monkeypatch):
    module = _Doubler(2)
    target = tmp_path / "export"
    monkeypatch.setattr(tf.saved_model, "save", _failing_save)
    with pytest.raises(OSError, match="simulated"):
        save_atomically(module, str(target), {"serving_default": module.call})
    assert os.listdir(tmp_path) == []


def test_failed_re_export_keeps_the_previous_export(tmp_path):
    target = str(tmp_path / "export")
    first = _Doubler(2)
    assert save_atomically(first, target, {"serving_default": first.call}) == target
    before = {name: os.path.getmtime(os.path.join(target, name)) for name in os.listdir(target)}
    second = _Doubler(3)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tf.saved_model, "save", _failing_save)
        with pytest.raises(OSError):
            save_atomically(second, target, {"serving_default": second.call})
    assert os.listdir(tmp_path) == ["export"]
    assert {name: os.path.getmtime(os.path.join(target, name)) for name in os.listdir(target)} == before
    serve = tf.saved_model.load(target).signatures["serving_default"]
    assert serve(x=tf.constant([1.0]))["y"].numpy().tolist() == [2.0]

    # A successful export replaces the old one in place, leaving no temporary or old directory behind.
    save_atomically(second, target, {"serving_default": second.call})
    assert os.listdir(tmp_path) == ["export"]
    assert tf.saved_model.load(target).signatures["serving_default"](x=tf.constant([1.0]))["y"].numpy()[0] == 3.0


def test_load_saved_model_names_the_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved_model.pb"):
        load_saved_model(str(tmp_path))


# --------------------------------------------------------------------------------------------------
# Signatures


def _signature_block(text: str, name: str) -> str:
    """The part of `saved_model_cli show --all` output describing signature `name`."""
    match = re.search(rf"signature_def\['{name}'\]:\n(.*?)(?=\nsignature_def\[|\n\S|\Z)", text, re.S)
    assert match, f"signature {name!r} not listed:\n{text}"
    return match.group(1)


def _tensor_dtype(block: str, kind: str, key: str) -> str:
    match = re.search(rf"{kind}\['{key}'\] tensor_info:\s*\n\s*dtype: (\w+)", block)
    assert match, f"{kind}[{key!r}] not in signature:\n{block}"
    return match.group(1)


def test_saved_model_cli_lists_the_signatures(exported):
    _, export_dir = exported
    if not os.path.exists(SAVED_MODEL_CLI):
        pytest.skip(f"{SAVED_MODEL_CLI} not installed")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    shown = subprocess.run(
        [SAVED_MODEL_CLI, "show", "--dir", export_dir, "--all"], capture_output=True, text=True, env=env, timeout=300
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    serving = _signature_block(shown.stdout, "serving_default")
    assert _tensor_dtype(serving, "inputs", "text") == "DT_STRING"
    assert _tensor_dtype(serving, "outputs", "translation") == "DT_STRING"
    assert _tensor_dtype(serving, "outputs", "score") == "DT_FLOAT"
    assert re.search(r"inputs\['text'\] tensor_info:\s*\n\s*dtype: DT_STRING\s*\n\s*shape: \(-1\)", serving)
    nbest = _signature_block(shown.stdout, "translate_nbest")
    assert _tensor_dtype(nbest, "inputs", "text") == "DT_STRING"
    assert _tensor_dtype(nbest, "outputs", "translations") == "DT_STRING"
    assert _tensor_dtype(nbest, "outputs", "scores") == "DT_FLOAT"
    assert re.search(r"outputs\['translations'\] tensor_info:\s*\n\s*dtype: DT_STRING\s*\n\s*shape: \(-1, 2\)", nbest)


# --------------------------------------------------------------------------------------------------
# Serving without the project


def test_export_serves_identically_in_a_process_without_seq2seq(exported, edge_case_texts, tmp_path):
    model_dir, export_dir = exported
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("PYTHONPATH", None)
    served = subprocess.run(
        [sys.executable, "-I", "-c", SERVE_SCRIPT, export_dir],
        input=json.dumps(edge_case_texts),
        capture_output=True,
        text=True,
        cwd=str(tmp_path),
        env=env,
        timeout=600,
    )
    assert served.returncode == 0, served.stderr[-3000:]
    fresh = json.loads(served.stdout.strip().splitlines()[-1])
    assert fresh["project_modules"] == []

    config, model, source_tok, target_tok = _unpack(runner.load(model_dir))
    module = _translator(config, model, source_tok, target_tok, n_best=2)
    texts = tf.constant(edge_case_texts, tf.string)
    in_process = {
        "serving_default": _as_python(module.translate(texts)),
        "translate_nbest": _as_python(module.translate_nbest(texts)),
    }
    for name in ("serving_default", "translate_nbest"):
        assert fresh[name] == in_process[name], name
    for side, tokenizer in (("source", source_tok), ("target", target_tok)):
        assert fresh[f"{side}_ids"] == tokenizer.tokenize(texts).to_list(), side

    best = fresh["serving_default"]
    assert len(best["translation"]) == len(edge_case_texts)
    for i, text in enumerate(edge_case_texts):
        if not text.strip():
            assert best["translation"][i] == "" and best["score"][i] == 0.0
        else:
            assert best["score"][i] < 0.0  # a real hypothesis: a log-probability
    nbest = fresh["translate_nbest"]
    assert [len(row) for row in nbest["translations"]] == [2] * len(edge_case_texts)
    assert nbest["translations"][0][0] == best["translation"][0]
    assert nbest["scores"][0][0] == best["score"][0]


def test_cli_translate_saved_model_equals_model_dir(exported, edge_case_texts, capsys):
    model_dir, export_dir = exported
    texts = [t for t in edge_case_texts if "\n" not in t]
    capsys.readouterr()
    assert main(["--quiet", "translate", "--saved-model", export_dir, *texts]) == 0
    from_export = capsys.readouterr().out.split("\n")[:-1]
    assert main(["--quiet", "translate", "--model-dir", model_dir, *texts]) == 0
    from_model_dir = capsys.readouterr().out.split("\n")[:-1]
    assert len(from_export) == len(texts)
    assert from_export == from_model_dir


def _unpack(loaded):
    """(config, model, source tokenizer, target tokenizer) of a loaded translation model."""
    return loaded.config, loaded.model, loaded.tokenizers["source"], loaded.tokenizers["target"]


def _translator(config, model, source_tok, target_tok, **decode_overrides):
    """The translation serving module with `config.decode` and overrides (as `runner.serving_module`)."""
    from seq2seq.decoding import decode_settings
    from seq2seq.serving.modules import TranslationModule

    return TranslationModule(
        model, source_tok, target_tok, decode_settings(config.decode, **decode_overrides), config.data.max_source_length
    )
