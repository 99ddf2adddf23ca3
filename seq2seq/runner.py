"""One runner for every task: train, load, evaluate, predict, export.

The recipe is written once here and reaches the task only through `seq2seq.tasks.base.Task`:

- `train`: strategy → model directory → tokenizers (chief first) → seed → resume step → trainable model
  (inside the strategy scope) → datasets → `fit` (checkpoints, best weights) → the serving model with the
  best weights saved as `model.keras` → evaluation on the test split → metrics.json.
- `load`: config, tokenizers and a `Seq2Seq` with the trained weights — weights only: no optimizer, no
  loss, nothing of `seq2seq.training` is imported.
- `evaluate`, `predict`, `export`: through the task's serving module, the graph a SavedModel holds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import time
from typing import Iterator, Sequence

import keras
import tensorflow as tf

from pipelines.atomic import remove_stale_temps, write_atomically
from pipelines.tokenizers import load_tokenizer
from seq2seq import model_dir as md
from seq2seq.config import Config, data_root
from seq2seq.decoding import decode_settings
from seq2seq.errors import ConfigError, ModelDirError
from seq2seq.evaluation import corpus_bleu, per_sentence_scores, per_sentence_signatures
from seq2seq.model.ensemble import EnsembleModel, check_same_vocabularies
from seq2seq.model.seq2seq import Seq2Seq, build_model
from seq2seq.run_lock import ModelDirLock
from seq2seq.serving.export import export_module, load_saved_model
from seq2seq.serving.modules import ServingModule, predict_batches
from seq2seq.tasks.base import TASKS, Task, task_for

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Loaded:
    """A trained model directory in memory.

    Attributes:
      config: the config it was trained with.
      task: its `Task`.
      model: the `Seq2Seq` with the trained weights (best.weights.h5, else the newest checkpoint).
      tokenizers: {file stem: tokenizer}, e.g. {"source": ..., "target": ...} or {"caption": ...}.
    """

    config: Config
    task: Task
    model: Seq2Seq
    tokenizers: dict


def _tokenizer_files(task: Task, tok_dir: str) -> list[str]:
    return [os.path.join(tok_dir, f"{name}.json") for name in task.tokenizer_names()]


def _load_tokenizers(task: Task, tok_dir: str) -> dict:
    return {name: load_tokenizer(tok_dir, name) for name in task.tokenizer_names()}


def train(config: Config, model_dir: str, verbose: int = 1) -> dict:
    """Train (or resume) a model of `config.task` in `model_dir`, then evaluate it on the test split.

    The model is built and compiled inside the `train.strategy` scope (`seq2seq.training.distribute`);
    `train.batch_size` is the global batch, split across replicas by Keras `fit`.

    Returns:
      the test metrics (see `evaluate`) plus `train_seconds` (wall time of `fit`) and `steps`. A non-chief
      worker of a multi-worker run returns only `train_seconds` and `steps` (the chief evaluates).

    Raises:
      ConfigError, ModelDirError, DataError, FileNotFoundError, ValueError: bad input, before training;
      NonFiniteLossError: the loss became NaN/Inf (the last good checkpoint is kept).
    """
    from seq2seq.training.distribute import is_chief, make_strategy

    # The data folder is recorded as an absolute path, so the model directory evaluates from anywhere later
    # (no SEQ2SEQ_DATA_DIR needed), also after it is moved.
    config = dataclasses.replace(
        config, data=dataclasses.replace(config.data, data_dir=os.path.abspath(data_root(config)))
    )
    task = task_for(config)
    task.check_data()
    strategy = make_strategy(config.train.strategy)  # first: multi-worker set-up must precede other TF ops
    # One writer per model directory (the chief's); a second `train` on it is refused at once.
    created = not os.path.exists(model_dir)
    lock = ModelDirLock(model_dir) if is_chief(strategy) else contextlib.nullcontext()
    try:
        with lock:
            return _train_locked(config, task, strategy, model_dir, verbose)
    except (ValueError, OSError):
        # A run that failed before its first checkpoint leaves no folder behind that it created itself.
        if created and is_chief(strategy) and os.path.isdir(model_dir) and not md.list_checkpoints(model_dir):
            shutil.rmtree(model_dir, ignore_errors=True)
        raise


def _train_locked(config: Config, task: Task, strategy, model_dir: str, verbose: int) -> dict:
    from seq2seq.training.distribute import chief_first, is_chief
    from seq2seq.training.fit import compile_model, fit
    from seq2seq.training.trainer import build_trainable_model

    for folder in (model_dir, os.path.join(model_dir, md.CHECKPOINT_DIR)):
        for removed in remove_stale_temps(folder):  # left by a killed save
            log.info("removed the stale temporary file %s", removed)
    tok_dir = os.path.join(model_dir, md.TOKENIZER_DIR)
    chief_first(
        strategy,
        lambda: (
            md.prepare(model_dir, config),
            task.train_tokenizers(tok_dir),
            md.write_data_fingerprint(model_dir, task.data_files()),
        ),
        _tokenizer_files(task, tok_dir),
    )
    keras.utils.set_random_seed(config.train.seed)
    tokenizers = _load_tokenizers(task, tok_dir)
    source_size, target_size = task.vocab_sizes(tokenizers)
    checkpoints = md.list_checkpoints(model_dir)
    start_step = checkpoints[-1][0] if checkpoints else 0
    with strategy.scope():  # variables, optimizer state and the compiled step are created per replica
        model = build_trainable_model(
            task.model_config(for_training=True),
            source_size,
            target_size,
            inputs_are_features=task.inputs_are_features(for_training=True),
        )
        task.prepare_model(model, tokenizers)
        compile_model(model, config.train)
    log.info(
        "model: %d parameters (%d trainable)",
        model.count_params(),
        sum(int(keras.ops.size(v)) for v in model.trainable_variables),
    )
    train_ds, val_ds = task.datasets(tokenizers, model, model_dir, seed_offset=start_step)
    score = None
    if config.train.select_on == "val_bleu" and val_ds is not None:
        score = validation_bleu(task, model, tokenizers)
    started = time.time()
    result = fit(model, train_ds, val_ds, config.train, model_dir, verbose=verbose, validation_score=score)
    seconds = time.time() - started
    if not is_chief(strategy):  # multi-worker: the chief alone saves the model and evaluates it
        return {"train_seconds": round(seconds, 1), "steps": result["final_step"]}
    loaded = load(model_dir)
    md.atomic_save_model(loaded.model, os.path.join(model_dir, md.MODEL_FILE))
    metrics = evaluate(model_dir, "test", loaded=loaded)
    metrics.update(
        {
            "train_seconds": round(seconds, 1),
            "steps": result["final_step"],
            "inputs_are_features": task.inputs_are_features(for_training=True),
        }
    )
    md.update_metrics(model_dir, "test", metrics)
    return metrics


def validation_bleu(task: Task, model, tokenizers: dict):
    """A function () -> the validation split's corpus sacreBLEU (cased, 13a, against the references as they
    stand) of `model` as its weights are when called: for `train.select_on: val_bleu`.

    It decodes with the task's serving module and `decode` settings, `train.validation_beam_size` beams (1:
    greedy search) and one output per input; the module is built once, so its graphs are traced once.

    Raises:
      ConfigError: the model is trained on precomputed features (captioning with cached backbone features),
        so it cannot decode the task's raw inputs.
    """
    config = task.config
    if task.inputs_are_features(for_training=True):
        raise ConfigError(
            "train.select_on: val_bleu decodes the validation images, but this config trains on precomputed "
            "backbone features; use select_on: val_loss"
        )
    beams = config.train.validation_beam_size
    decode = decode_settings(config.decode, strategy="greedy" if beams == 1 else "beam", beam_size=beams, n_best=1)
    module = task.serving_module(model, tokenizers, decode)
    evaluation = task.evaluation_set("validation")

    def score() -> float:
        hypotheses, _ = predict(module, evaluation.inputs, config.decode.batch_size)
        return corpus_bleu(hypotheses, evaluation.references)["score"]

    return score


def load(model_dir: str) -> Loaded:
    """The trained model in `model_dir`, ready to serve: weights only (no optimizer is created).

    Raises:
      ModelDirError: not a model directory, no tokenizers or no trained weights in it yet.
    """
    config = md.read_config(model_dir)
    task = task_for(config)
    tok_dir = os.path.join(model_dir, md.TOKENIZER_DIR)
    try:
        tokenizers = _load_tokenizers(task, tok_dir)
    except (FileNotFoundError, OSError) as err:
        raise ModelDirError(f"{model_dir!r} has no tokenizers yet ({err}); was training started?") from None
    weights = md.trained_weights_path(model_dir)
    source_size, target_size = task.vocab_sizes(tokenizers)
    model = build_model(task.model_config(for_training=False), source_size, target_size)
    model.load_weights(weights)  # checkpoints also hold optimizer state, which a serving model skips
    return Loaded(config, task, model, tokenizers)


def load_ensemble(model_dirs: Sequence[str]) -> Loaded:
    """Several trained model directories as one model whose step averages their log-probabilities.

    The config (decoding settings, lengths) and tokenizers are the first directory's; every directory must have
    byte-identical tokenizer files (one shared vocabulary). One directory gives that model alone.

    Raises:
      ValueError: no directories, or vocabularies that differ (both directories and the file named; nothing loaded).
      ModelDirError: a directory that is not a trained model directory, or models of different tasks.
    """
    if not model_dirs:
        raise ValueError("give at least one --model-dir")
    if len(model_dirs) == 1:
        return load(model_dirs[0])
    check_same_vocabularies(list(model_dirs))
    members = [load(d) for d in model_dirs]
    tasks = {m.config.task for m in members}
    if len(tasks) > 1:
        raise ModelDirError(f"an ensemble needs models of one task; got {', '.join(sorted(tasks))}")
    first = members[0]
    return Loaded(first.config, first.task, EnsembleModel([m.model for m in members]), first.tokenizers)


def serving_module(loaded: Loaded, **decode_overrides) -> ServingModule:
    """The task's serving module for `loaded`, with `config.decode` (fields overridable, e.g. beam_size=1)."""
    decode = decode_settings(loaded.config.decode, **decode_overrides)
    return loaded.task.serving_module(loaded.model, loaded.tokenizers, decode)


def predict(
    module: ServingModule, inputs: Sequence, batch_size: int = 64, progress: bool = False
) -> tuple[list[str], list[float]]:
    """Outputs of `module.best` for `inputs` (sentences, or encoded image bytes), in batches of `batch_size`.

    Returns:
      (texts: list[str], scores: list[float]) aligned with `inputs`.
    """
    return predict_batches(
        lambda **named: module.best(named[module.INPUT]),
        module.INPUT,
        module.OUTPUT,
        inputs,
        batch_size,
        progress=progress,
    )


def evaluate(
    model_dir: str,
    split: str = "test",
    loaded: Loaded | None = None,
    progress: bool = True,
    save: bool = True,
    source_file: str | None = None,
    reference_files: Sequence[str] | None = None,
    hypotheses_file: str | None = None,
    per_sentence: bool = False,
    wmt_language: str | None = None,
    **decode_overrides,
) -> dict:
    """The task's metrics of the model in `model_dir` on `split` (or on given files), saved in metrics.json.

    Args:
      split: 'train' | 'validation' | 'test' of the config's data (ignored with `source_file`).
      loaded: an already loaded model directory (default: `load(model_dir)`).
      progress: draw a progress bar while decoding.
      save: write the metrics into metrics.json under `split` (or "file:<source_file>"). The CLI passes False,
        prints the metrics, then saves them: a failed write never loses them.
      source_file, reference_files: a test set the config does not name: one source per line, one reference
        stream per file (translation).
      hypotheses_file: also write the outputs there, one per line (atomically), so that e.g. the sacreBLEU command
        line can re-check every figure: `sacrebleu REFERENCES -i HYPOTHESES -m bleu chrf ter`.
      per_sentence: add "per_sentence": sentence BLEU and chrF of every output (never mixed with corpus BLEU).
      wmt_language: translation: also BLEU in the WMT multimodal convention (lc.norm.tok) for this language.

    Returns:
      dict: split, the number of examples (under the task's unit, e.g. "sentences") and of skipped ones,
      decode_seconds, decode settings, the task's metrics (`Task.metrics`, each with its signature) and the
      first five examples.
    """
    loaded = loaded or load(model_dir)
    module = serving_module(loaded, **decode_overrides)
    if source_file is not None:
        if not reference_files:
            raise ValueError("--source needs --references (one file per reference stream)")
        evaluation = loaded.task.external_evaluation_set(source_file, list(reference_files))
        split = f"file:{os.path.abspath(source_file)}"
    else:
        changed = md.changed_data_files(model_dir)
        if changed:
            log.warning(
                "the data changed since this model was trained (%s): its %s split may differ from the one "
                "held out then",
                ", ".join(changed),
                split,
            )
        evaluation = loaded.task.evaluation_set(split)
    started = time.time()
    hypotheses, _ = predict(module, evaluation.inputs, loaded.config.decode.batch_size, progress=progress)
    seconds = time.time() - started
    metrics = {
        "split": split,
        loaded.task.unit: len(evaluation.inputs),
        f"skipped_{loaded.task.unit}": evaluation.skipped,
        "decode_seconds": round(seconds, 2),
        "decode": dict(module.decode_config),
    }
    metrics.update(loaded.task.metrics(hypotheses, evaluation.references, wmt_language=wmt_language))
    if per_sentence:
        streams = [list(stream) for stream in zip(*evaluation.references)]
        metrics["per_sentence"] = {
            "signatures": per_sentence_signatures(len(streams)),
            "scores": per_sentence_scores(hypotheses, streams),
        }
    metrics["examples"] = loaded.task.examples(evaluation, hypotheses)
    if hypotheses_file:
        write_atomically(hypotheses_file, "".join(h.replace("\n", " ") + "\n" for h in hypotheses))
        metrics["hypotheses_file"] = os.path.abspath(hypotheses_file)
    if save:
        md.update_metrics(model_dir, split, metrics)
    return metrics


def export(model_dir: str | Sequence[str], output_dir: str, **decode_overrides) -> str:
    """Export the model in `model_dir` (or the ensemble of several) as a SavedModel at `output_dir` (atomic).

    Returns:
      the absolute path of the export.
    """
    loaded = load_ensemble(model_dir) if isinstance(model_dir, (list, tuple)) else load(model_dir)
    return export_module(serving_module(loaded, **decode_overrides), output_dir)


def export_litert(model_dir: str | Sequence[str], output_file: str, **decode_overrides) -> str:
    """Write the model in `model_dir` (or the ensemble of several) as one LiteRT file (atomic).

    See `seq2seq.serving.litert`: one input per call (a sentence, or a decoded image), decoding inside.

    Returns:
      the absolute path of the file.

    Raises:
      LiteRTExportError: a model that cannot convert (a word-level or BPE translation tokenizer, sampling, an op
        with no LiteRT kernel); nothing is written.
      ModelDirError: not a trained model directory.
    """
    from seq2seq.serving import litert

    if isinstance(model_dir, (list, tuple)) and len(model_dir) > 1:
        raise litert.LiteRTExportError(
            "LiteRT export takes one --model-dir (an ensemble exports as a SavedModel, or average the checkpoints "
            "of one run with `seq2seq average`)"
        )
    model_dir = model_dir[0] if isinstance(model_dir, (list, tuple)) else model_dir
    litert.check_output_file(output_file)  # before the conversion, which takes a while
    loaded = load(model_dir)
    decode = decode_settings(loaded.config.decode, **decode_overrides)
    module = litert.litert_module(loaded.task, loaded.model, loaded.tokenizers, decode)
    return litert.write_litert(litert.convert(module), output_file)


def predict_items(
    task_name: str,
    items: Sequence[str],
    model_dir: str | Sequence[str] | None = None,
    saved_model: str | None = None,
    litert: str | None = None,
    n_best: int | None = None,
    attention_plot: str | None = None,
    batch_size: int = 64,
    **decode_overrides,
) -> Iterator[tuple[str, str]]:
    """Outputs for user-given items (sentences, or image paths) from a model directory, an export or a LiteRT file.

    `model_dir` may be a list of directories: their ensemble (`load_ensemble`). Unreadable images are skipped with a
    warning (see `Task.prediction_inputs`). With `n_best` (model directory
    only) each output is the n best, tab-separated, each followed by its score in parentheses. With
    `attention_plot` (model directory only) the attention of the first item's best output is drawn there.

    Yields:
      (item name, output line) in input order.

    `litert`: a file written by `export_litert`, run in the LiteRT interpreter one item at a time.

    Raises:
      ValueError: not exactly one of `model_dir` / `saved_model` / `litert`; decoding options, n-best or an
        attention plot with an export (its decoding is fixed when it is exported); an export or model of another
        task.
      ModelDirError: `model_dir` is not a trained model directory.
    """
    if sum(source is not None for source in (model_dir, saved_model, litert)) != 1:
        raise ValueError("give exactly one of model_dir, saved_model or litert")
    task_class = TASKS.get(task_name, "task")
    module_class = task_class.serving_class
    if saved_model is not None or litert is not None:
        if n_best or attention_plot or any(v is not None for v in decode_overrides.values()):
            raise ValueError(
                "--n-best, --attention-plot and decoding options need --model-dir; an export decodes "
                "with the settings it was exported with"
            )
    if litert is not None:
        from seq2seq.serving.litert import LiteRTModel

        model = LiteRTModel(litert)
        if model.task != task_name:
            raise ValueError(
                f"{litert!r} holds a {model.task} model; use `seq2seq {TASKS.get(model.task).serving_class.VERB}`"
            )
        inputs, names = task_class.prediction_inputs(items)
        yield from zip(names, model.predict(inputs)[0])
        return
    if saved_model is not None:
        serve = load_saved_model(saved_model).signatures["serving_default"]
        inputs_spec = serve.structured_input_signature[1]
        if module_class.INPUT not in inputs_spec:
            other = next(name for name in TASKS if name != task_name)
            raise ValueError(
                f"{saved_model!r} is not a {task_name} export (its inputs: {', '.join(inputs_spec)}); "
                f"use `seq2seq {TASKS.get(other).serving_class.VERB}`"
            )
        inputs, names = task_class.prediction_inputs(items)
        texts, _ = predict_batches(serve, module_class.INPUT, module_class.OUTPUT, inputs, batch_size)
        yield from zip(names, texts)
        return
    loaded = load_ensemble(model_dir) if isinstance(model_dir, (list, tuple)) else load(model_dir)
    if loaded.config.task != task_name:
        raise ModelDirError(f"{model_dir!r} holds a {loaded.config.task} model, not a {task_name} model")
    module = serving_module(loaded, n_best=n_best, **decode_overrides)
    inputs, names = loaded.task.prediction_inputs(items)
    for index, length in module.over_long_inputs(inputs):
        log.warning(
            "input %d has %d source pieces (EOS included), more than data.max_source_length = %d: only its "
            "first %d pieces are translated",
            index + 1,
            length,
            module.max_source_length,
            module.max_source_length - 1,
        )
    if n_best:
        for start in range(0, len(inputs), batch_size):
            out = module.nbest(tf.constant(inputs[start : start + batch_size], tf.string))
            for name, row, scores in zip(
                names[start : start + batch_size], out[module.OUTPUT + "s"].numpy(), out["scores"].numpy()
            ):
                yield name, "\t".join(f"{t.decode('utf-8')} ({s:.3f})" for t, s in zip(row, scores))
    else:
        texts, _ = predict(module, inputs, batch_size)
        yield from zip(names, texts)
    if attention_plot and inputs:
        loaded.task.plot_attention(module, names[0], attention_plot)


SCORE_FIELDS = ("log_prob", "per_token", "normalized", "tokens")


def score_pairs(
    pairs: Sequence[tuple[str, str]], model_dir: str | None = None, saved_model: str | None = None, batch_size: int = 64
) -> list[dict]:
    """The model's log-probability of each (source, target) pair, in batches (translation).

    From a model directory (its `TranslationModule.score`) or an export (its `score` signature). Targets longer
    than `data.max_target_length` (the longest trained on) are scored in full, with one warning naming them.

    Returns:
      per pair, {"log_prob", "per_token", "normalized", "tokens"} (see `TranslationModule._score`).

    Raises:
      ValueError: neither or both of `model_dir` / `saved_model`, an export without a `score` signature, or a
        model directory of another task.
    """
    if (model_dir is None) == (saved_model is None):
        raise ValueError("give exactly one of model_dir or saved_model")
    if saved_model is not None:
        signatures = load_saved_model(saved_model).signatures
        if "score" not in signatures:
            raise ValueError(f"{saved_model!r} has no `score` signature (a translation export of this version has)")
        function = signatures["score"]
        max_target_length = None
    else:
        loaded = load(model_dir)
        if loaded.config.task != "translation":
            raise ModelDirError(f"{model_dir!r} holds a {loaded.config.task} model; `score` scores translations")
        module = serving_module(loaded)
        function = lambda text, target: module.score(text, target)  # noqa: E731
        max_target_length = loaded.config.data.max_target_length
    results = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        out = function(
            text=tf.constant([s for s, _ in chunk], tf.string), target=tf.constant([t for _, t in chunk], tf.string)
        )
        columns = {name: out[name].numpy().tolist() for name in SCORE_FIELDS}
        results += [{name: columns[name][i] for name in SCORE_FIELDS} for i in range(len(chunk))]
    if max_target_length is not None:
        long = [i + 1 for i, r in enumerate(results) if r["tokens"] > max_target_length]
        if long:
            log.warning(
                "%d target(s) are longer than data.max_target_length = %d (pairs %s): scored in full, "
                "beyond the lengths the model was trained on",
                len(long),
                max_target_length,
                ", ".join(map(str, long[:10])) + (" ..." if len(long) > 10 else ""),
            )
    return results
