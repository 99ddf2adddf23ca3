"""seq2seq.plots.plot_curve: a readable PNG of the points, written atomically; no points is an error."""

import os

import numpy as np
import pytest
from PIL import Image

from seq2seq.plots import plot_curve


def test_plot_curve_writes_a_png(tmp_path):
    path = str(tmp_path / "curve.png")
    assert plot_curve([(1000, 26.8), (2000, 33.3), (3000, 34.7)], path, "step", "BLEU", "val") == path
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 200 and image.size[1] > 150
        assert np.asarray(image.convert("L")).std() > 0  # not a blank canvas
    assert os.listdir(tmp_path) == ["curve.png"]  # no temporary file left behind


def test_plot_curve_without_points_raises(tmp_path):
    with pytest.raises(ValueError, match="no points"):
        plot_curve([], str(tmp_path / "x.png"), "step", "BLEU")
    assert not os.listdir(tmp_path)
