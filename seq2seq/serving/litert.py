"""On-device export: a model as one LiteRT (TensorFlow Lite) flatbuffer, with its tokenizer inside.

The file holds the whole path of the task's serving module (`ServingModule.best`) for one input per call:

* translation (`TranslationModule`): ``text: tf.string [1]`` → SentencePiece tokenisation, the encoder, greedy
  or beam search (`seq2seq.decoding`, the same `tf.while_loop` code as the SavedModel), SentencePiece
  detokenisation → ``translation: tf.string [1]``, ``score: float32 [1]``;
* captioning (`PixelCaptioningModule`): ``image: uint8 [1, height, width, 3]`` (decoded RGB, any size; LiteRT
  has no JPEG/PNG decoding kernels, so the caller decodes, as mobile apps do with the platform's decoder) →
  bilinear resize, the CNN backbone, the image encoder, decoding, detokenisation → ``caption``, ``score``.

The ops are LiteRT built-ins plus at most three custom ops that tensorflow-text implements for LiteRT
(`TF_TEXT_OPS`), and no select TensorFlow ops: an interpreter runs the file once tensorflow-text's registrar
has added them (`tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS`; on Android / iOS the same kernels are
linked from tensorflow-text's sources). :class:`LiteRTModel` does this with the ``ai-edge-litert`` interpreter.

Why one input per call: LiteRT's SentencePiece detokenizer kernel writes as many strings as its output tensor
was allocated with, so the batch size is fixed when the graph is traced. What differs from the SavedModel:
`pipelines.tokenizers.OnDeviceSentencePieceTokenizer` (SentencePiece's own ``nmt_nfkc`` normalisation inside the
model; no byte fallback, so characters outside the vocabulary become ``<unk>`` and byte pieces in an output are
dropped; a word vocabulary detokenises through a SentencePiece model of its words). Outputs equal the
SavedModel's on ordinary inputs (measured by ``benchmarks/litert_speed.py``).
"""

from __future__ import annotations

import os
from typing import Sequence

import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from pipelines.atomic import write_atomically
from seq2seq.config import DecodeConfig
from seq2seq.errors import LiteRTExportError

SIGNATURE = "serving_default"
TF_TEXT_OPS = ("TFText>FastSentencepieceTokenize", "TFText>FastSentencepieceDetokenize", "RaggedTensorToTensor")

__all__ = [
    "LiteRTExportError",
    "LiteRTModel",
    "convert",
    "custom_ops",
    "litert_module",
    "on_device_tokenizer",
    "write_litert",
]


def on_device_tokenizer(tokenizer):
    """The LiteRT-compatible twin of a `pipelines.tokenizers` tokenizer (its `on_device()`).

    Raises:
      LiteRTExportError: a tokenizer that has none (e.g. a SentencePiece BPE model), naming it.
    """
    try:
        return tokenizer.on_device()
    except ValueError as err:
        raise LiteRTExportError(str(err)) from None


def litert_module(task, model, tokenizers: dict, decode: DecodeConfig):
    """The task's serving module for one input per call on LiteRT-compatible tokenizers (`Task.litert_module`).

    Args:
      task: the model's `seq2seq.tasks.base.Task`.
      model: a built `Seq2Seq` (or an ensemble of them).
      tokenizers: the task's `pipelines.tokenizers` tokenizers by name.
      decode: DecodeConfig (greedy or beam search; sampling is refused: its output is not fixed).

    Raises:
      LiteRTExportError: sampling, or what the task refuses (a word-level or BPE translation tokenizer).
    """
    if decode.strategy not in ("greedy", "beam"):
        raise LiteRTExportError(
            f"LiteRT export decodes with greedy or beam search, not decode.strategy={decode.strategy}"
        )
    return task.litert_module(model, tokenizers, decode)


def convert(module) -> bytes:
    """The LiteRT flatbuffer of `module.best` of a `ServingModule` traced for one input per call (built-in ops
    plus tensorflow-text's custom ops).

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


def custom_ops(flatbuffer: bytes) -> list[str]:
    """Names of the custom ops a LiteRT flatbuffer uses (those outside LiteRT's built-in kernels).

    Raises:
      LiteRTExportError: the ai-edge-litert package (which reads the file's schema) is not installed.
    """
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        raise LiteRTExportError("LiteRT export needs the ai-edge-litert package: pip install ai-edge-litert") from None

    model = schema.ModelT.InitFromPackedBuf(flatbuffer, 0)
    return [
        op.customCode.decode("utf-8") if isinstance(op.customCode, bytes) else op.customCode
        for op in model.operatorCodes
        if op.customCode
    ]


def _is_litert_file(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(8)[4:8] == b"TFL3"  # the flatbuffer file identifier of LiteRT models


def check_output_file(output_file: str) -> None:
    """Refuse an output path that would replace something other than an earlier LiteRT file.

    Raises:
      LiteRTExportError: `output_file` is a folder, a special file (FIFO, device), or an existing file that is
        not a LiteRT model (e.g. a model directory's model.keras): it is never overwritten.
    """
    if not os.path.lexists(output_file):
        return
    if os.path.isdir(output_file):
        raise LiteRTExportError(f"{output_file!r} is a folder; give a file name for the LiteRT file, e.g. model.tflite")
    if not os.path.isfile(output_file) or not _is_litert_file(output_file):
        raise LiteRTExportError(
            f"refusing to overwrite {output_file!r}: it exists and is not an earlier LiteRT file; choose a new path, "
            f"e.g. MODEL_DIR/model.tflite"
        )


def write_litert(flatbuffer: bytes, output_file: str) -> str:
    """Write the flatbuffer atomically (temp file + rename); returns the absolute path.

    Raises:
      LiteRTExportError: see `check_output_file` (nothing is written).
    """
    output_file = os.path.abspath(output_file)
    check_output_file(output_file)
    os.makedirs(os.path.dirname(output_file), exist_ok=True)
    write_atomically(output_file, flatbuffer)
    return output_file


class LiteRTModel:
    """Runs a LiteRT file of `seq2seq export --format litert` in the ``ai-edge-litert`` interpreter, with
    tensorflow-text's ops registered.

    Args:
      path: the `.tflite` file.
      num_threads: interpreter threads (default None: LiteRT's default).

    Attributes:
      task: "translation" (input "text") or "captioning" (input "image").

    Raises:
      FileNotFoundError: no such file.
      ValueError: the file is not a LiteRT model of this toolkit (the interpreter's message, with the path).
    """

    def __init__(self, path: str, num_threads: int | None = None):
        import tensorflow_text as tf_text

        try:
            from ai_edge_litert.interpreter import InterpreterWithCustomOps
        except ImportError:
            raise ValueError(
                "running a LiteRT file needs the ai-edge-litert package: pip install ai-edge-litert"
            ) from None
        if os.path.isdir(path):
            raise ValueError(f"{path!r} is a folder, not a LiteRT file (a SavedModel folder goes with --saved-model)")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path!r}: no such LiteRT file (write one with `seq2seq export --format litert`)")
        try:
            self._interpreter = InterpreterWithCustomOps(
                model_path=path,
                custom_op_registerers=tf_text.tflite_registrar.SELECT_TFTEXT_OPS,
                num_threads=num_threads,
            )
            self._runner = self._interpreter.get_signature_runner(SIGNATURE)
            signature = self._interpreter.get_signature_list()[SIGNATURE]
        except (ValueError, RuntimeError, KeyError) as err:
            raise ValueError(f"{path!r} is not a LiteRT model of seq2seq: {err}") from None
        inputs = signature["inputs"]
        if inputs not in (["text"], ["image"]):
            raise ValueError(f"{path!r} is not a LiteRT model of seq2seq (its inputs: {', '.join(inputs)})")
        self.task = "translation" if inputs == ["text"] else "captioning"
        output = "translation" if self.task == "translation" else "caption"
        # Freezing the weights drops the output names; the outputs keep the sorted order of the module's keys.
        self._outputs = dict(zip(signature["outputs"], sorted([output, "score"])))
        self._output = output
        self.path = path

    def _run(self, **inputs) -> tuple[str, float]:
        out = {self._outputs[name]: value for name, value in self._runner(**inputs).items()}
        return out[self._output][0].decode("utf-8"), float(out["score"][0])

    def translate_one(self, sentence: str) -> tuple[str, float]:
        """(translation, score) of one sentence (score as in the SavedModel's `serving_default`)."""
        import numpy as np

        return self._run(text=np.array([sentence.encode("utf-8")], dtype=object))

    def caption_one(self, image_bytes: bytes) -> tuple[str, float]:
        """(caption, score) of one encoded image (JPEG/PNG/GIF/BMP), decoded here as `decode_image` does.

        Raises:
          tf.errors.InvalidArgumentError: bytes that are not a decodable image.
        """
        pixels = tf.io.decode_image(image_bytes, channels=3, expand_animations=False, dtype=tf.uint8)
        return self._run(image=pixels.numpy()[None])

    def predict(self, items: Sequence) -> tuple[list[str], list[float]]:
        """Outputs and scores of sentences (translation) or encoded images (captioning), one call each."""
        one = self.translate_one if self.task == "translation" else self.caption_one
        pairs = [one(item) for item in items]
        return [p[0] for p in pairs], [p[1] for p in pairs]
