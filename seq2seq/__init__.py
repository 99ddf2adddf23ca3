"""seq2seq: encoder–decoder models for translation and image captioning on TensorFlow 2 / Keras 3.

`import seq2seq` registers every Keras class of the toolkit (so `keras.saving.load_model("MODEL_DIR/model.keras")`
works after it) and every kind of component (cells, attention, encoders, decoding strategies, tasks, data
formats), and exposes the public API:

- configs: `load_config`, `config_from_dict`, `Config`, `ConfigError`;
- the model: `Seq2Seq`, `build_model`;
- the runner: `train`, `load`, `evaluate`, `predict`, `export`, `serving_module`;
- metrics: `corpus_bleu`, `sentence_bleu` (sacreBLEU, effective order);
- serving: `TranslationModule`, `CaptioningModule`, `load_saved_model`.
"""

import os as _os

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from seq2seq.tasks import translation as _translation  # noqa: E402,F401,I001  (registered first: the default task)
from seq2seq.config import Config, ConfigError, config_from_dict, load_config  # noqa: E402
from seq2seq.evaluation import corpus_bleu, sentence_bleu  # noqa: E402
from seq2seq.model.seq2seq import Seq2Seq, build_model  # noqa: E402
from seq2seq.runner import Loaded, evaluate, export, load, predict, serving_module, train  # noqa: E402
from seq2seq.serving.export import load_saved_model  # noqa: E402
from seq2seq.serving.modules import CaptioningModule, TranslationModule  # noqa: E402
from seq2seq.tasks import captioning as _captioning  # noqa: E402,F401  (registers the task)
from seq2seq.training import trainer as _trainer  # noqa: E402,F401  (registers TrainingSeq2Seq, loss, optimizer)
from seq2seq.training import losses as _losses  # noqa: E402,F401
from seq2seq.training import optimizers as _optimizers  # noqa: E402,F401

__all__ = [
    "CaptioningModule",
    "Config",
    "ConfigError",
    "Loaded",
    "Seq2Seq",
    "TranslationModule",
    "build_model",
    "config_from_dict",
    "corpus_bleu",
    "evaluate",
    "export",
    "load",
    "load_config",
    "load_saved_model",
    "predict",
    "sentence_bleu",
    "serving_module",
    "train",
]
