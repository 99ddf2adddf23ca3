"""Experiment configuration: typed dataclasses loaded from YAML, with ``--set key=value`` overrides.

A config is plain data. Every key is declared below with its type and default; loading rejects unknown
keys, wrong types and impossible values with a `ConfigError` naming the dotted key (``model.decoder.cell``)
and what is allowed, before any work starts.

Relative data paths are resolved against the data folder: ``data.data_dir`` when set, else the
environment variable ``SEQ2SEQ_DATA_DIR``, else the current directory.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

import yaml

from pipelines.atomic import write_atomically
from pipelines.data_files import DEFAULT_MAX_LINE_BYTES
from seq2seq.errors import ConfigError
from seq2seq.registry import registered_keys, registry_for

DATA_DIR_ENV = "SEQ2SEQ_DATA_DIR"


@dataclass
class DataConfig:
    """Keys of the `data` section that every task has: where the data folder is, limits, the split."""

    format: str = ""
    data_dir: Optional[str] = None
    path: Optional[str] = None
    tfds_name: Optional[str] = None
    tfds_data_dir: Optional[str] = None
    download: bool = False
    cache_dir: Optional[str] = None
    limit: Optional[int] = None
    validation_fraction: float = 0.05
    test_fraction: float = 0.05
    seed: int = 0
    max_target_length: int = 50
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES


@dataclass
class TranslationDataConfig(DataConfig):
    """The `data` section of a translation experiment (`seq2seq.tasks.translation` names the formats)."""

    format: str = "anki"
    reverse: bool = False
    source_file: Optional[str] = None
    target_file: Optional[str] = None
    validation_source_file: Optional[str] = None
    validation_target_file: Optional[str] = None
    test_source_file: Optional[str] = None
    test_target_file: Optional[str] = None
    skip_bad_lines: bool = False
    lowercase: bool = False
    max_source_length: int = 50


@dataclass
class CaptioningDataConfig(DataConfig):
    """The `data` section of a captioning experiment (`seq2seq.tasks.captioning` names the formats)."""

    format: str = "flickr8k"
    image_dir: Optional[str] = None
    captions_file: Optional[str] = None
    train_split_file: Optional[str] = None
    validation_split_file: Optional[str] = None
    test_split_file: Optional[str] = None
    feature_cache: bool = True


@dataclass
class TokenizerConfig:
    """Subword (SentencePiece) or word vocabulary, trained on the training split only."""

    kind: Literal["sentencepiece", "word"] = "sentencepiece"
    source_vocab_size: int = 8000
    target_vocab_size: int = 8000
    model_type: Literal["unigram", "bpe"] = "unigram"
    byte_fallback: bool = True
    character_coverage: float = 1.0
    input_sentence_size: int = 1_000_000
    min_count: int = 1
    shared: bool = False  # one vocabulary (of source_vocab_size pieces) for both sides


@dataclass
class EmbeddingConfig:
    """Word embeddings: learned, or pretrained vectors (frozen or fine-tuned)."""

    dim: int = 256
    pretrained: Optional[str] = None
    source_pretrained: Optional[str] = None
    trainable: bool = True
    share: bool = False
    tie_output: bool = False
    dropout: Optional[float] = None  # on source and target embeddings; null = model.encoder/decoder.dropout


@dataclass
class EncoderConfig:
    """Recurrent encoder (translation) or image encoder (captioning)."""

    type: str = "recurrent"
    cell: str = "gru"
    units: int = 256
    layers: int = 1
    bidirectional: bool = True
    merge_mode: Literal["concat", "sum"] = "concat"
    dropout: float = 0.0
    output_dropout: float = 0.0  # on the memory (encoder outputs) that attention reads
    residual: bool = False
    backbone: str = "MobileNetV2"
    weights: Optional[str] = "imagenet"
    trainable: Any = False
    image_size: Optional[int] = None
    alpha: float = 1.0  # MobileNet width multiplier (the offline ImageNet files offer 0.35, 0.5, 1.0)


@dataclass
class DecoderConfig:
    """Recurrent decoder with optional attention over the encoder memory."""

    type: str = "recurrent"
    cell: str = "gru"
    units: int = 256
    layers: int = 1
    attention: str = "bahdanau"
    attention_units: Optional[int] = None
    input_feeding: bool = False
    dropout: float = 0.0
    output_dropout: Optional[float] = None  # before the vocabulary projection; null = dropout
    layer_norm: bool = False
    residual: bool = False


@dataclass
class ModelConfig:
    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    bridge: Literal["dense", "copy", "zero"] = "dense"
    decoder: DecoderConfig = field(default_factory=DecoderConfig)


@dataclass
class TrainConfig:
    """Optimisation, checkpointing and hardware options."""

    batch_size: int = 64
    max_steps: int = 10000
    max_minutes: Optional[float] = None
    eval_every: int = 1000
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    learning_rate: float = 1e-3
    lr_schedule: Literal["constant", "cosine"] = "constant"
    warmup_steps: int = 0
    clipnorm: Optional[float] = 1.0
    label_smoothing: float = 0.0
    early_stopping_patience: Optional[int] = 5
    select_on: Literal["val_loss", "val_bleu"] = "val_loss"
    validation_beam_size: int = 1
    tbptt_steps: Optional[int] = None
    doubly_stochastic: float = 0.0
    shuffle_buffer: int = 20000
    seed: int = 0
    strategy: Literal["default", "mirrored", "multi_worker_mirrored", "tpu"] = "default"
    mixed_precision: Optional[Literal["mixed_float16", "mixed_bfloat16"]] = None
    jit_compile: bool = False
    validation_batches: Optional[int] = None


@dataclass
class DecodeConfig:
    """Decoding at evaluation / translation time."""

    strategy: str = "beam"
    beam_size: int = 5
    n_best: int = 1
    length_penalty: float = 0.6
    max_length: int = 60
    max_length_ratio: Optional[float] = 2.0
    max_length_offset: int = 10
    temperature: float = 1.0
    top_k: int = 0
    block_unk: bool = False
    block_repeats: int = 0  # 0 = off; N = never repeat an n-gram (n <= N) back to back
    batch_size: int = 64


MAX_BLOCK_REPEATS = 16  # decode.block_repeats upper bound


@dataclass
class Config:
    """A whole experiment."""

    task: str = "translation"
    data: DataConfig = field(default_factory=TranslationDataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)

    def to_dict(self) -> dict:
        """Plain nested dict (YAML/JSON-safe)."""
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------------------------
# Loading and validation


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp))


def _coerce(value, tp, key: str):
    """Check `value` against the annotation `tp`; return it (ints accepted where floats are)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as err:
                errors.append(err)
        raise ConfigError(f"{key}: got {value!r}; expected {_type_name(tp)}")
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{key}: got {value!r}; allowed values: {', '.join(map(repr, allowed))}")
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping of keys, got {value!r}")
        return _build(tp, value, key)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: got {value!r}; expected true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: got {value!r}; expected an integer")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: got {value!r}; expected a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: got {value!r}; expected a string")
        return value
    raise TypeError(f"unsupported annotation {tp} for {key}")


def _task_kind(task: str):
    """The registered task class named `task` (ConfigError naming `task` and the allowed values)."""
    return registry_for("task").get(task, "task")


def _data_section(values: dict, task: str) -> type:
    """The dataclass of the `data` section of `task`; ConfigError for a key only another task has."""
    cls = _task_kind(task).data_config
    names = {f.name for f in dataclasses.fields(cls)}
    for name in values.get("data") or {}:
        if name in names:
            continue
        for other in registry_for("task"):
            other_cls = registry_for("task").get(other).data_config
            if other != task and name in {f.name for f in dataclasses.fields(other_cls)}:
                raise ConfigError(
                    f"data.{name} is a {other} key; a {task} config's data keys are: {', '.join(sorted(names))}"
                )
    return cls


def config_keys(cls=None, prefix: str = "") -> list[str]:
    """Every dotted key of the config, sections included (``data``, ``data.path``, ...), in declaration order."""
    keys = []
    for item in dataclasses.fields(cls or Config):
        key = f"{prefix}.{item.name}" if prefix else item.name
        keys.append(key)
        tp = typing.get_type_hints(cls or Config)[item.name]
        if tp is DataConfig:  # the data section of every task
            tasks = registry_for("task")
            sections = [tasks.get(name).data_config for name in tasks] if tasks else [DataConfig]
            keys.extend(dict.fromkeys(k for section in sections for k in config_keys(section, key)))
        elif dataclasses.is_dataclass(tp):
            keys.extend(config_keys(tp, key))
    return keys


def closest_key(key: str) -> str | None:
    """The declared dotted key closest to the unknown ``key`` (``difflib``), or None when none is close.

    Whole keys are compared first (``train.max_step`` -> ``train.max_steps``); failing that, the last
    part alone (``max_step`` -> ``train.max_steps``, ``trian.batch_size`` -> ``train.batch_size``).
    """
    keys = config_keys()
    match = difflib.get_close_matches(key, keys, n=1, cutoff=0.75)
    if match:
        return match[0]
    last = key.rsplit(".", 1)[-1]
    by_last = {}
    for candidate in keys:
        by_last.setdefault(candidate.rsplit(".", 1)[-1], candidate)
    match = difflib.get_close_matches(last, list(by_last), n=1, cutoff=0.8)
    return by_last[match[0]] if match else None


def _unknown_key(key: str, detail: str = "") -> ConfigError:
    """``unknown config key 'train.max_step'; did you mean 'train.max_steps'?`` plus ``detail``."""
    suggestion = closest_key(key)
    message = f"unknown config key {key!r}" + (f"; did you mean {suggestion!r}?" if suggestion else "")
    return ConfigError(message + (f" {detail}" if detail else ""))


def _build(cls, values: dict, prefix: str = ""):
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    if cls is Config:
        task = values.get("task", Config.task)
        if not isinstance(task, str):
            raise ConfigError(f"task: got {task!r}; expected a string")
        hints = {**hints, "data": _data_section(values, task)}
    kwargs = {}
    for name, value in values.items():
        key = f"{prefix}.{name}" if prefix else str(name)
        if name not in names:
            raise _unknown_key(key, f"(known keys here: {', '.join(sorted(names))})")
        kwargs[name] = _coerce(value, hints[name], key)
    if cls is Config and "data" not in kwargs:
        kwargs["data"] = hints["data"]()
    return cls(**kwargs)


def _value_at(config: "Config", key: str):
    node = config
    for part in key.split("."):
        node = getattr(node, part)
    return node


def _check(cond: bool, key: str, message: str) -> None:
    if not cond:
        raise ConfigError(f"{key}: {message}")


def validate_decode(dc: DecodeConfig) -> None:
    """The value checks of the `decode` section (also applied to command-line overrides by `decode_settings`).

    Raises:
      ConfigError: naming the first bad `decode.*` key.
    """
    _check(dc.n_best <= dc.beam_size, "decode.n_best", f"got {dc.n_best}; must be <= decode.beam_size ({dc.beam_size})")
    _check(dc.length_penalty >= 0, "decode.length_penalty", "must be >= 0 (0 = no penalty)")
    _check(dc.temperature > 0, "decode.temperature", "must be > 0")
    _check(dc.top_k >= 0, "decode.top_k", "must be >= 0 (0 = whole vocabulary)")
    _check(
        0 <= dc.block_repeats <= MAX_BLOCK_REPEATS,
        "decode.block_repeats",
        f"got {dc.block_repeats}; must be 0..{MAX_BLOCK_REPEATS} (0 = off, N = no n-gram of n <= N repeated back "
        f"to back; each n adds work to every decoding step, and repeats longer than a few pieces are rare)",
    )
    _check(dc.max_length_ratio is None or dc.max_length_ratio > 0, "decode.max_length_ratio", "must be > 0 or null")


def validate(config: Config) -> Config:
    """Reject impossible values. Returns `config`; raises ConfigError naming the key.

    Kinds (cells, attention, encoder type, decoding strategy, ...) are checked against their registries
    (`seq2seq.registry`, filled when `import seq2seq` imports the modules that implement them), and each
    task checks its own keys (`Task.validate_config`).
    """
    d, t, m, tr, dc = config.data, config.tokenizer, config.model, config.train, config.decode
    for key, value in [
        ("data.max_target_length", d.max_target_length),
        ("data.max_line_bytes", d.max_line_bytes),
        ("tokenizer.source_vocab_size", t.source_vocab_size),
        ("tokenizer.target_vocab_size", t.target_vocab_size),
        ("model.embedding.dim", m.embedding.dim),
        ("model.encoder.units", m.encoder.units),
        ("model.encoder.layers", m.encoder.layers),
        ("model.decoder.units", m.decoder.units),
        ("model.decoder.layers", m.decoder.layers),
        ("train.batch_size", tr.batch_size),
        ("train.max_steps", tr.max_steps),
        ("train.eval_every", tr.eval_every),
        ("train.checkpoint_every", tr.checkpoint_every),
        ("train.keep_checkpoints", tr.keep_checkpoints),
        ("train.validation_beam_size", tr.validation_beam_size),
        ("decode.beam_size", dc.beam_size),
        ("decode.n_best", dc.n_best),
        ("decode.max_length", dc.max_length),
        ("decode.batch_size", dc.batch_size),
    ]:
        _check(value >= 1, key, f"got {value}; must be a positive integer (>= 1)")
    _check(d.limit is None or d.limit >= 1, "data.limit", f"got {d.limit}; must be >= 1 or null (no limit)")
    for key, value in [("data.validation_fraction", d.validation_fraction), ("data.test_fraction", d.test_fraction)]:
        _check(0.0 <= value < 1.0, key, f"got {value}; must be in [0, 1)")
    _check(
        d.validation_fraction + d.test_fraction < 1.0,
        "data.test_fraction",
        "validation_fraction + test_fraction must leave some training data (< 1)",
    )
    _check(
        t.source_vocab_size >= 8 and t.target_vocab_size >= 8,
        "tokenizer.source_vocab_size",
        "vocabulary sizes must be at least 8 (4 special tokens + pieces)",
    )
    _check(0.0 < t.character_coverage <= 1.0, "tokenizer.character_coverage", "must be in (0, 1]")
    _check(
        not m.embedding.share or t.shared,
        "model.embedding.share",
        "needs one vocabulary for both sides: set tokenizer.shared: true",
    )
    for key, value in [
        ("model.encoder.dropout", m.encoder.dropout),
        ("model.decoder.dropout", m.decoder.dropout),
        ("model.encoder.output_dropout", m.encoder.output_dropout),
        ("model.embedding.dropout", m.embedding.dropout),
        ("model.decoder.output_dropout", m.decoder.output_dropout),
        ("train.label_smoothing", tr.label_smoothing),
    ]:
        _check(value is None or 0.0 <= value < 1.0, key, f"got {value}; must be in [0, 1)")
    _check(
        not m.decoder.layer_norm or m.decoder.attention != "none",
        "model.decoder.layer_norm",
        "normalises the attentional layer, so it needs model.decoder.attention 'bahdanau' or 'luong'",
    )
    if m.decoder.type == "conditional":  # cGRU (Sennrich et al., 2017): two GRU transitions around attention
        _check(m.decoder.cell == "gru", "model.decoder.cell", f"got {m.decoder.cell!r}; type 'conditional' needs 'gru'")
        _check(m.decoder.layers == 1, "model.decoder.layers", f"got {m.decoder.layers}; type 'conditional' needs 1")
        _check(
            m.decoder.attention != "none",
            "model.decoder.attention",
            "type 'conditional' needs 'bahdanau' or 'luong' (its second GRU reads the attention context)",
        )
        _check(
            not m.decoder.input_feeding,
            "model.decoder.input_feeding",
            "type 'conditional' already feeds the context to its second GRU; set input_feeding: false",
        )
    _check(tr.learning_rate > 0, "train.learning_rate", f"got {tr.learning_rate}; must be > 0")
    _check(tr.max_minutes is None or tr.max_minutes > 0, "train.max_minutes", "must be > 0 or null")
    _check(tr.warmup_steps >= 0, "train.warmup_steps", "must be >= 0")
    _check(tr.clipnorm is None or tr.clipnorm > 0, "train.clipnorm", "must be > 0 or null")
    _check(tr.tbptt_steps is None or tr.tbptt_steps >= 1, "train.tbptt_steps", "must be >= 1 or null")
    _check(
        tr.early_stopping_patience is None or tr.early_stopping_patience >= 1,
        "train.early_stopping_patience",
        "must be >= 1 or null",
    )
    _check(tr.doubly_stochastic >= 0, "train.doubly_stochastic", "must be >= 0")
    validate_decode(dc)
    trainable = m.encoder.trainable
    _check(
        isinstance(trainable, bool) or (isinstance(trainable, int) and trainable >= 0),
        "model.encoder.trainable",
        f"got {trainable!r}; allowed values: false, true, or N (top N layers)",
    )
    _check(
        m.bridge != "copy" or (m.encoder.type == "recurrent"),
        "model.bridge",
        "'copy' needs a recurrent encoder; use 'dense' or 'zero' for images",
    )
    for key in registered_keys():
        registry_for(key).check(_value_at(config, key), key)
    _task_kind(config.task).validate_config(config)
    return config


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``key=value`` (value parsed as YAML: ``3``, ``true``, ``null``, ``[1, 2]``)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value, e.g. train.max_steps=100")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as err:
        raise ConfigError(f"override {key}: cannot parse value {raw!r}: {err}") from err
    return key, value


def apply_overrides(values: dict, overrides: list[str]) -> dict:
    """Return a copy of nested dict `values` with dotted ``key=value`` overrides applied.

    Raises:
      ConfigError: a key that the config does not declare (named in full).
    """
    values = copy.deepcopy(values)
    for text in overrides or []:
        key, value = parse_override(text)
        parts = key.split(".")
        node, cls, path = values, Config, []
        for part in parts[:-1]:
            path.append(part)
            hints = typing.get_type_hints(cls)
            if cls is Config and part == "data":
                hints["data"] = _task_kind(values.get("task", Config.task)).data_config
            if part not in hints or not dataclasses.is_dataclass(hints[part]):
                raise _unknown_key(key, f"(in override {text!r})")
            cls = hints[part]
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"config key {'.'.join(path)!r} is not a section")
        if parts[-1] not in typing.get_type_hints(cls):
            raise _unknown_key(key, f"(in override {text!r})")
        node[parts[-1]] = value
    return values


def config_from_dict(values: dict, overrides: list[str] | None = None) -> Config:
    """Build and validate a Config from a nested dict plus ``key=value`` overrides."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"a config must be a mapping of sections, got {type(values).__name__}")
    return validate(_build(Config, apply_overrides(values, overrides or [])))


def load_config(path: str, overrides: list[str] | None = None) -> Config:
    """Read a YAML config file, apply overrides, validate.

    Raises:
      ConfigError: unreadable YAML (with the file and line), unknown key, wrong type, impossible value.
      FileNotFoundError: `path` does not exist.
    """
    with open(path, encoding="utf-8") as f:
        try:
            values = yaml.safe_load(f)
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: invalid YAML: {err}") from err
    try:
        return config_from_dict(values, overrides)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def save_config(config: Config, path: str) -> None:
    """Write `config` as YAML atomically (temp file + rename)."""
    write_atomically(path, yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True))


def data_root(config: Config) -> str:
    """The folder relative data paths resolve against: data.data_dir, $SEQ2SEQ_DATA_DIR, or '.'."""
    return config.data.data_dir or os.environ.get(DATA_DIR_ENV) or "."


def resolve_path(config: Config, path: Optional[str]) -> Optional[str]:
    """Absolute paths and None pass through; relative ones are joined to `data_root(config)`."""
    if path is None:
        return None
    path = os.path.expanduser(path)
    return path if os.path.isabs(path) else os.path.join(data_root(config), path)
