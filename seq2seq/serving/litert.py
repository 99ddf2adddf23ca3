"""On-device export: a translation model as one LiteRT (TensorFlow Lite) flatbuffer, text in, text out.

The file holds the whole path of `TranslationModule.best` for one sentence per call: SentencePiece
tokenisation, the encoder, greedy or beam search (`seq2seq.decoding`, the same `tf.while_loop` code as the
SavedModel) and SentencePiece detokenisation. Its one signature, ``serving_default``, maps
``text: tf.string [1]`` to ``translation: tf.string [1]`` and ``score: float32 [1]``.

The ops are LiteRT built-ins except four custom ops that tensorflow-text implements for LiteRT
(``TFText>FastSentencepieceTokenize``, ``TFText>FastSentencepieceDetokenize``, ``RaggedTensorToTensor``, and
no select TensorFlow ops): an interpreter runs the file once tensorflow-text's registrar has added them
(`tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS`; on Android / iOS the same kernels are linked from
tensorflow-text's sources). :class:`LiteRTTranslator` does this with the ``ai-edge-litert`` interpreter.

Why one sentence per call: LiteRT's SentencePiece detokenizer kernel writes as many strings as its output
tensor was allocated with, so the batch size is fixed when the graph is traced. Why the text normalisation
differs from the SavedModel's: see `pipelines.tokenizers.OnDeviceSentencePieceTokenizer` (SentencePiece's own
``nmt_nfkc`` rule inside the model; characters outside the vocabulary become ``<unk>``, as the fast kernels
have no byte fallback). Translations equal the SavedModel's on ordinary text (measured by
``benchmarks/litert_speed.py``).

Captioning does not export to LiteRT yet: `litert_module` refuses it (see its error).
"""

from __future__ import annotations

import os
from typing import Sequence

import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from pipelines.atomic import write_atomically
from pipelines.tokenizers import SentencePieceTokenizer
from seq2seq.config import DecodeConfig
from seq2seq.serving.modules import TranslationModule

SIGNATURE = "serving_default"


class LiteRTExportError(ValueError):
    """A model that cannot be written as LiteRT; the message names the part that blocks it."""


def litert_module(config, model, tokenizers: dict, decode: DecodeConfig):
    """The translation serving module for one sentence per call, on LiteRT-compatible tokenizers.

    Args:
      config: the model's `seq2seq.config.Config` (its `task` must be "translation"; `data.max_source_length`).
      model: a built translation `Seq2Seq` (or an ensemble of them).
      tokenizers: {"source": ..., "target": ...} `pipelines.tokenizers` tokenizers.
      decode: DecodeConfig (greedy or beam search; sampling is refused: it has no fixed output).

    Returns:
      a `TranslationModule` with `batch_size=1` whose tokenizers are `OnDeviceSentencePieceTokenizer`s.

    Raises:
      LiteRTExportError: a captioning model, a word-level or BPE tokenizer, or sampling.
    """
    if config.task != "translation":
        raise LiteRTExportError(
            f"LiteRT export supports translation models; this is a {config.task} model (its image decoding, "
            f"tf.io.decode_image inside tf.map_fn, has no LiteRT kernel)"
        )
    if decode.strategy not in ("greedy", "beam"):
        raise LiteRTExportError(
            f"LiteRT export decodes with greedy or beam search, not decode.strategy={decode.strategy}"
        )
    on_device = {}
    for side in ("source", "target"):
        tokenizer = tokenizers[side]
        if not isinstance(tokenizer, SentencePieceTokenizer):
            raise LiteRTExportError(
                f"LiteRT export needs SentencePiece tokenizers; the {side} tokenizer is "
                f"{type(tokenizer).__name__} (its regex_split and hash-table lookup ops have no LiteRT kernels)"
            )
        try:
            on_device[side] = tokenizer.on_device()
        except ValueError as err:
            raise LiteRTExportError(str(err)) from None
    return TranslationModule(
        model, on_device["source"], on_device["target"], decode, config.data.max_source_length, batch_size=1
    )


def convert(module: TranslationModule) -> bytes:
    """The LiteRT flatbuffer of `module.best` (built-in ops plus tensorflow-text's custom ops).

    Raises:
      LiteRTExportError: the converter failed; the message carries its last error lines (the op that blocks).
    """
    # The weights are folded into constants first: given the function as it is, the converter keeps the
    # variables that the decoding loop reads as LiteRT resource variables, which nothing initialises.
    frozen = convert_variables_to_constants_v2(module.best.get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.allow_custom_ops = True  # only tensorflow-text's, checked below
    try:
        flatbuffer = converter.convert()
    except Exception as err:  # the converter raises ConverterError with MLIR diagnostics
        lines = [line for line in str(err).splitlines() if "error:" in line]
        detail = " | ".join(lines[-3:] or [str(err)[-500:]])
        raise LiteRTExportError(f"the LiteRT converter failed: {detail}") from None
    unknown = sorted(set(custom_ops(flatbuffer)) - set(TF_TEXT_OPS))
    if unknown:
        raise LiteRTExportError(f"the model needs ops with no LiteRT kernel: {', '.join(unknown)}")
    return flatbuffer


TF_TEXT_OPS = ("TFText>FastSentencepieceTokenize", "TFText>FastSentencepieceDetokenize", "RaggedTensorToTensor")


def custom_ops(flatbuffer: bytes) -> list[str]:
    """Names of the custom ops a LiteRT flatbuffer uses (those outside LiteRT's built-in kernels)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(flatbuffer, 0)
    return [
        op.customCode.decode("utf-8") if isinstance(op.customCode, bytes) else op.customCode
        for op in model.operatorCodes
        if op.customCode
    ]


def write_litert(flatbuffer: bytes, output_file: str) -> str:
    """Write the flatbuffer atomically (temp file + rename); returns the absolute path.

    Raises:
      IsADirectoryError: `output_file` is a folder (nothing is written).
    """
    output_file = os.path.abspath(output_file)
    if os.path.isdir(output_file):
        raise IsADirectoryError(f"{output_file!r} is a folder; give a file name for the LiteRT file, e.g. model.tflite")
    os.makedirs(os.path.dirname(output_file), exist_ok=True)
    write_atomically(output_file, flatbuffer)
    return output_file


class LiteRTTranslator:
    """Runs a LiteRT translation file in the ``ai-edge-litert`` interpreter with tensorflow-text's ops.

    Args:
      path: a `.tflite` file written by `seq2seq export --format litert`.
      num_threads: interpreter threads (default None: LiteRT's default).

    Raises:
      FileNotFoundError: no such file.
      ValueError: the file is not a LiteRT model (the interpreter's message, with the path).
    """

    def __init__(self, path: str, num_threads: int | None = None):
        import tensorflow_text as tf_text
        from ai_edge_litert.interpreter import InterpreterWithCustomOps

        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path!r}: no such LiteRT file (write one with `seq2seq export --format litert`)")
        try:
            self._interpreter = InterpreterWithCustomOps(
                model_path=path,
                custom_op_registerers=tf_text.tflite_registrar.SELECT_TFTEXT_OPS,
                num_threads=num_threads,
            )
            self._runner = self._interpreter.get_signature_runner(SIGNATURE)
            outputs = self._interpreter.get_signature_list()[SIGNATURE]["outputs"]
        except (ValueError, RuntimeError, KeyError) as err:
            raise ValueError(f"{path!r} is not a LiteRT translation model: {err}") from None
        # Freezing the weights drops the output names; the outputs keep the sorted order of the module's keys.
        self._outputs = dict(zip(outputs, sorted(["translation", "score"])))
        self.path = path

    def translate_one(self, sentence: str) -> tuple[str, float]:
        """(translation, score) of one sentence (score as in the SavedModel's `serving_default`)."""
        import numpy as np

        raw = self._runner(text=np.array([sentence.encode("utf-8")], dtype=object))
        out = {self._outputs[name]: value for name, value in raw.items()}
        return out["translation"][0].decode("utf-8"), float(out["score"][0])

    def translate(self, sentences: Sequence[str]) -> tuple[list[str], list[float]]:
        """Translations and scores of `sentences`, one interpreter call each."""
        pairs = [self.translate_one(s) for s in sentences]
        return [p[0] for p in pairs], [p[1] for p in pairs]
