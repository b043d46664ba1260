"""Digital silence and near-silent input are `_silence_` for every shipped model.

An all-zero clip stays all zero through peak normalisation, so its MFCC is the log guard in
every band: a matrix no speech or noise clip resembles.  The trainer puts such clips into
`_silence_` (Recipe.p_zero_silence); before it did, the shipped models called them keywords.
A near-silent clip (a few LSBs of dither) is peak-normalised to full scale and looks like
noise.  Checked through the float model, the Brevitas model and the integer golden model,
on WAV files read the way `infer` reads them.
"""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from sparknet_hw.checkpoint import shipped_checkpoint
from sparknet_hw.shipped import int8_export
from sparknet_hw.data.labels import LABELS
from sparknet_hw.inference import Classifier
from sparknet_hw.model import WIDTHS

SILENCE = LABELS.index("_silence_")

def _clips(tmp_path):
    rng = np.random.default_rng(7)
    zeros = np.zeros(16000, np.int16)
    dither = rng.integers(-2, 3, 16000).astype(np.int16)         # +-2 LSB of 16-bit audio
    hum = np.round(3 * np.sin(2 * np.pi * 50 * np.arange(16000) / 16000)).astype(np.int16)
    out = {}
    for name, clip in (("zeros", zeros), ("dither", dither), ("hum", hum)):
        path = tmp_path / f"{name}.wav"
        sf.write(path, clip, 16000, subtype="PCM_16")
        out[name] = path
    return out

@pytest.mark.parametrize("C", WIDTHS)
@pytest.mark.parametrize("kind", ["float", "qat"])
def test_quiet_input_is_silence(tmp_path, C, kind):
    classifier = Classifier.from_checkpoint(shipped_checkpoint(C, kind))
    for name, path in _clips(tmp_path).items():
        label, _ = classifier.classify_file(path)
        assert label == "_silence_", f"C={C} {kind}: {name} clip classified as {label}"

@pytest.mark.parametrize("C", WIDTHS)
def test_zero_clip_is_silence_in_the_integer_model(C):
    from sparknet_hw.audio import peak_normalise
    from sparknet_hw.features import mfcc
    from sparknet_hw.quant import golden
    from sparknet_hw.quant.export_format import load_export
    from sparknet_hw.quant.features import quantize_features
    path = int8_export(C)
    export = load_export(path)
    x = quantize_features(mfcc(peak_normalise(np.zeros(16000, np.float32)))[None], export)
    assert int(golden.run_batch(export, x)["classes"][0]) == SILENCE
