"""Attention plots (matplotlib, Agg backend, no pyplot global state), written atomically as PNG.

* `plot_caption_attention`: one panel per generated word, the word's attention over the image regions
  drawn over the image (as in Xu et al., 2015, "Show, Attend and Tell", Fig. 2-3);
* `plot_translation_attention`: the alignment heat map source pieces × target pieces (as in Bahdanau et
  al., 2015, Fig. 3).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pipelines.atomic import atomic_path
from pipelines.vocab import EOS_PIECE, PAD_PIECE


def _save_png(figure: Figure, path: str) -> str:
    """Render `figure` to PNG at `path` through a temporary file in the same folder and a rename."""
    FigureCanvasAgg(figure)
    with atomic_path(path) as tmp, open(tmp, "wb") as file:
        figure.savefig(file, format="png", dpi=100, bbox_inches="tight")
    return path


def plot_caption_attention(
    image, words: Sequence[str], attention, grid: tuple[int, int], path: str, columns: int = 5
) -> str:
    """Draw each word's attention map over the image, one panel per word; write a PNG.

    Args:
      image: uint8 [H, W, 3] (or float in [0, 255]) the image as it was captioned (any size: the
        attention grid is stretched over the whole image, like the model's resize).
      words: the generated pieces, `time` of them (EOS included if wanted).
      attention: float [time, regions] attention weights, regions = h * w in row-major order.
      grid: (h, w) of the backbone grid.
      path: output PNG path (written atomically).
      columns: panels per row (default 5).

    The map is upsampled bilinearly by matplotlib (`imshow(..., interpolation="bilinear")` over the image
    extent) and drawn with alpha 0.6 on top of the grayscale-dimmed image.

    Returns:
      `path`.

    Raises:
      ValueError: `attention` is not [len(words), h * w], or the image is not [H, W, 3].
    """
    image = np.asarray(image)
    attention = np.asarray(attention, dtype=np.float32)
    height, width = (int(g) for g in grid)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image must be [H, W, 3], got shape {image.shape}")
    if attention.shape != (len(words), height * width):
        raise ValueError(f"attention must be [words={len(words)}, regions={height * width}], got {attention.shape}")
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    rows = max(1, math.ceil(len(words) / columns))
    cols = max(1, min(columns, len(words)))
    figure = Figure(figsize=(2.6 * cols, 2.8 * rows))
    extent = (0, image.shape[1], image.shape[0], 0)
    for index, word in enumerate(words):
        axes = figure.add_subplot(rows, cols, index + 1)
        axes.imshow(image, extent=extent)
        axes.imshow(
            attention[index].reshape(height, width),
            extent=extent,
            cmap="inferno",
            alpha=0.6,
            interpolation="bilinear",
            vmin=0.0,
            vmax=max(float(attention[index].max()), 1e-6),
        )
        axes.set_title(word, fontsize=11)
        axes.axis("off")
    return _save_png(figure, path)


def _strings(values) -> list[str]:
    values = values.numpy() if hasattr(values, "numpy") else np.asarray(values)
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def plot_translation_attention(out: dict, path: str, index: int = 0) -> str:
    """Heat map of target pieces (rows) × source pieces (columns) for one sentence; write a PNG.

    Args:
      out: the dict of `seq2seq.serving.modules.TranslationModule.translate_with_attention` (tensors or arrays):
        "source_pieces" tf.string [batch, source_time], "target_pieces" tf.string [batch, time],
        "attention" float32 [batch, time, source_time], "translation" tf.string [batch].
      path: output PNG path (written atomically).
      index: which sentence of the batch (default 0).

    Source padding is dropped; target pieces stop after the first EOS ("</s>").

    Returns:
      `path`.
    """
    source = [p for p in _strings(out["source_pieces"][index]) if p != PAD_PIECE]
    target = _strings(out["target_pieces"][index])
    if EOS_PIECE in target:
        target = target[: target.index(EOS_PIECE) + 1]
    target = [p for p in target if p != PAD_PIECE]
    attention = out["attention"][index]
    attention = np.asarray(attention.numpy() if hasattr(attention, "numpy") else attention, dtype=np.float32)
    attention = attention[: len(target), : len(source)]
    figure = Figure(figsize=(max(4.0, 0.45 * len(source) + 2), max(3.0, 0.4 * len(target) + 1.5)))
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(attention, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    axes.set_xticks(range(len(source)), labels=source, rotation=60, ha="right")
    axes.set_yticks(range(len(target)), labels=target)
    axes.set_xlabel("source")
    axes.set_ylabel("target")
    if "translation" in out:
        axes.set_title(_strings(out["translation"])[index])
    figure.colorbar(image, ax=axes, fraction=0.046)
    return _save_png(figure, path)


def plot_curve(points: Sequence[tuple[float, float]], path: str, xlabel: str, ylabel: str, title: str = "") -> str:
    """A line plot of (x, y) points with markers, e.g. validation BLEU against training steps; returns `path`.

    Args:
      points: (x, y) pairs in x order (at least one).
      path: PNG file to write (atomically).
      xlabel, ylabel, title: axis labels and an optional title.

    Raises:
      ValueError: no points.
    """
    if not points:
        raise ValueError("plot_curve: no points to plot")
    xs, ys = zip(*points)
    figure = Figure(figsize=(6, 4))
    axes = figure.add_subplot(1, 1, 1)
    axes.plot(xs, ys, marker="o")
    for x, y in points:
        axes.annotate(f"{y:.1f}", (x, y), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    if title:
        axes.set_title(title)
    axes.grid(alpha=0.3)
    return _save_png(figure, path)
