"""The task interface: everything that differs between translation, captioning and any later task.

`seq2seq.runner` trains, loads, evaluates, predicts with and exports a model of any task through this
interface and nothing else, so the recipe (strategy → tokenizers → seed → checkpoint → build → fit → best
weights → save → evaluate → metrics) is written once. A new task (image → text in another language, speech
features → text, …) is one new module here: a `Task` subclass registered in `TASKS`, with its data section
(a `seq2seq.config.DataConfig` subclass) and its readers.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, Sequence

from seq2seq.config import Config, DataConfig, DecodeConfig
from seq2seq.errors import ConfigError, LiteRTExportError
from seq2seq.registry import Registry

TASKS = Registry("task", "task")


@dataclasses.dataclass
class EvaluationSet:
    """The examples of one split, ready for a serving module.

    Attributes:
      inputs: what the serving module takes, one per example (source sentences, or encoded image bytes).
      references: per example, its reference texts exactly as they stand in the data files.
      names: per example, how to show it in the report (the source sentence, or the image file name).
      skipped: examples of the split that could not be used (e.g. unreadable images).
    """

    inputs: list
    references: list[list[str]]
    names: list[str]
    skipped: int = 0


class Task(abc.ABC):
    """Base class of the tasks; subclasses implement every abstract method (Python refuses to instantiate one
    that does not).

    Args:
      config: the experiment Config (its `data` section is an instance of `data_config`).

    Class attributes:
      name: the `task` config value.
      data_config: the `data` section dataclass.
      readers: Registry of the `data.format` values this task reads.
      unit: what one evaluation example is called in reports ("sentences", "images").
      serving_class: the `seq2seq.serving.modules.ServingModule` subclass of this task.
      encoder: the `model.encoder.type` the task needs.
    """

    name = ""
    data_config: type = DataConfig
    readers: Registry
    unit = "examples"
    serving_class: type

    def __init__(self, config: Config):
        self.config = config

    # -- configuration ---------------------------------------------------------------------------

    def __init_subclass__(
        cls,
        name: str = "",
        data_config: type | None = None,
        readers: Registry | None = None,
        unit: str = "examples",
        serving_class: type | None = None,
        encoder: str = "",
        **kwargs,
    ):
        """`class T(Task, name=..., data_config=..., readers=..., unit=..., serving_class=..., encoder=...)` sets
        them; `encoder` is the `model.encoder.type` the task needs ("" accepts any).
        """
        super().__init_subclass__(**kwargs)
        cls.name, cls.unit, cls.encoder = name, unit, encoder
        cls.data_config, cls.readers, cls.serving_class = data_config or DataConfig, readers, serving_class

    @classmethod
    def validate_config(cls, config: Config) -> None:
        """Reject values this task cannot use (ConfigError naming the key): `data.format`, then `check_config`."""
        cls.readers.check(config.data.format, "data.format")
        if cls.encoder and config.model.encoder.type != cls.encoder:
            raise ConfigError(f"model.encoder.type: {cls.name} needs {cls.encoder!r}")
        cls.check_config(config)

    @classmethod
    def check_config(cls, config: Config) -> None:
        """The task's own checks of a config (ConfigError naming the key). Default: none."""
        return None  # an optional hook: nothing to do by default

    def model_config(self, for_training: bool) -> Config:
        """The config `build_model` gets (e.g. with paths resolved for training). Default: `self.config`."""
        return self.config

    def inputs_are_features(self, for_training: bool) -> bool:
        """True when the model is fed precomputed features rather than raw inputs. Default False."""
        return False

    # -- data ------------------------------------------------------------------------------------

    def check_data(self) -> None:
        """Fail early, before tokenizers or models are made, when the data cannot be read (named)."""
        return None  # an optional hook: nothing to do by default

    def data_files(self) -> list[str]:
        """The data files the splits are made from (fingerprinted in the model directory). Default: none."""
        return []

    @abc.abstractmethod
    def tokenizer_names(self) -> tuple[str, ...]:
        """File stems of this task's tokenizers in MODEL_DIR/tokenizers, e.g. ("source", "target")."""

    @abc.abstractmethod
    def train_tokenizers(self, directory: str) -> None:
        """Train the tokenizers on the training split (or keep those already saved in `directory`)."""

    @abc.abstractmethod
    def vocab_sizes(self, tokenizers: dict) -> tuple[int | None, int]:
        """(source vocabulary size or None, target vocabulary size) for `build_model`."""

    @abc.abstractmethod
    def target_tokenizer(self, tokenizers: dict):
        """The tokenizer of the generated text."""

    def prepare_model(self, model, tokenizers: dict) -> None:
        """Set up a freshly built model before training (e.g. pretrained word vectors). Default: nothing."""
        return None  # an optional hook: nothing to do by default

    @abc.abstractmethod
    def datasets(self, tokenizers: dict, model, model_dir: str, seed_offset: int = 0):
        """(training dataset (repeated), validation dataset or None) of ((inputs, target_in), target_out)."""

    @abc.abstractmethod
    def evaluation_set(self, split: str) -> EvaluationSet:
        """The examples of `split` ('train' | 'validation' | 'test') with their references."""

    @classmethod
    def prediction_inputs(cls, items: Sequence[str]) -> tuple[list, list[str]]:
        """(serving inputs, their names) for user-given items (sentences, or image paths). Default: as given."""
        return list(items), list(items)

    # -- serving and scoring ---------------------------------------------------------------------

    @abc.abstractmethod
    def serving_module(self, model, tokenizers: dict, decode: DecodeConfig):
        """The `seq2seq.serving.modules.ServingModule` of this task for `model`."""

    def litert_module(self, model, tokenizers: dict, decode: DecodeConfig):
        """The serving module that `seq2seq export --format litert` converts: one input per call, on tokenizers
        whose kernels exist in LiteRT (see `seq2seq.serving.litert`).

        Raises:
          LiteRTExportError: the task or its tokenizers cannot convert (default: no LiteRT export for the task).
        """
        raise LiteRTExportError(f"{self.name} models have no LiteRT export")

    @classmethod
    def external_evaluation_set(cls, source_file: str, reference_files: list[str]) -> EvaluationSet:
        """A test set the config does not name, given as files (`seq2seq evaluate --source --references`)."""
        raise ValueError(f"--source / --references evaluate translation models, not {cls.name} models")

    @abc.abstractmethod
    def metrics(self, hypotheses: list[str], references: list[list[str]], wmt_language: str | None = None) -> dict:
        """The task's metrics of `hypotheses` against per-example `references` (as they stand in the files)."""

    def examples(self, evaluation: EvaluationSet, hypotheses: list[str], count: int = 5) -> list[dict]:
        """The first `count` examples of a report: input name, references, hypothesis."""
        return [
            {"input": name, "references": refs, "hypothesis": hyp}
            for name, refs, hyp in list(zip(evaluation.names, evaluation.references, hypotheses))[:count]
        ]

    @abc.abstractmethod
    def plot_attention(self, module, item: Any, path: str) -> str:
        """Draw the attention of the best output for one input (as `prediction_inputs` names it) into `path`."""


def task_for(config: Config) -> Task:
    """The `Task` of `config.task` (ConfigError for an unknown task)."""
    try:
        return TASKS.get(config.task, "task")(config)
    except ConfigError:
        raise
