"""sparknet_hw.clips, the one way a clip file (audio, .npy, .npz) or an array becomes float
MFCC or an export's integer input (`run`, `sim --inputs`, `build --inputs`, `export
--features`, the shipped test clips): same numbers as MFCC + quant.features, one-line errors
that name the file."""
import numpy as np
import pytest

from sparknet_hw import clips, shipped
from sparknet_hw.errors import UserError
from sparknet_hw.quant.features import quantize_features
from sparknet_hw.quant.random_export import random_export


@pytest.fixture(scope="module")
def model():
    return random_export(4, seed=2)


def _tone(path, seconds=1.0):
    import soundfile as sf

    t = np.arange(int(16000 * seconds)) / 16000
    sf.write(path, 0.3 * np.sin(2 * np.pi * 440 * t), 16000)
    return path


def test_one_clip_from_wav_and_npy(tmp_path, model):
    from sparknet_hw.audio import load_wav
    from sparknet_hw.features import mfcc

    wav = _tone(tmp_path / "tone.wav")
    x = clips.load_features(wav, model)
    assert x.shape == (32, 101) and x.dtype == np.int64 and x.min() >= -128 and x.max() <= 127
    want = mfcc(load_wav(wav))
    np.testing.assert_array_equal(clips.load_features(wav), want)
    np.testing.assert_array_equal(x, quantize_features(want, model))
    np.save(tmp_path / "f.npy", np.full((32, 101), 0.5, np.float32))
    assert (clips.load_features(tmp_path / "f.npy", model) == 4).all()   # 0.5 * 2**3
    np.save(tmp_path / "bad.npy", np.zeros((3, 3)))
    with pytest.raises(UserError, match=r"bad.npy: features have shape \(3, 3\), expected"):
        clips.load_features(tmp_path / "bad.npy", model)
    np.save(tmp_path / "three.npy", np.zeros((3, 32, 101), np.float32))
    with pytest.raises(UserError, match="shape"):                       # a batch, not a clip
        clips.load_features(tmp_path / "three.npy", model)


def test_batch_from_npz_keeps_labels_and_names(tmp_path, model):
    x = np.random.default_rng(0).normal(0, 4, (5, 32, 101)).astype(np.float32)
    np.savez(tmp_path / "c.npz", features=x, labels=np.arange(5), names=[f"n{i}" for i in range(5)])
    batch = clips.load_clip_batch(tmp_path / "c.npz", model, n=3)
    assert len(batch) == 3 and batch.names == ["n0", "n1", "n2"]
    assert batch.labels.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(batch.features, quantize_features(x[:3], model))
    floats = clips.load_clip_batch(tmp_path / "c.npz")
    assert floats.features.dtype == np.float32 and floats.features.shape == (5, 32, 101)
    np.save(tmp_path / "one.npy", x[0])                                # [32, 101] -> N = 1
    one = clips.load_clip_batch(tmp_path / "one.npy", model)
    assert one.features.shape == (1, 32, 101) and one.names == ["clip0"] and one.labels is None
    wav = clips.load_clip_batch(_tone(tmp_path / "yes.wav"), model)
    assert wav.features.shape == (1, 32, 101) and wav.names == ["yes"]
    with open(tmp_path / "features.dat", "wb") as fh:                  # found by content
        np.save(fh, x)
    np.testing.assert_array_equal(clips.load_clip_batch(tmp_path / "features.dat").features, x)


def test_integer_features_are_checked_not_requantized(tmp_path, model):
    lo, hi = model["input"]["lo"], model["input"]["hi"]
    x = np.random.default_rng(1).integers(lo, hi + 1, (2, 32, 101)).astype(np.int8)
    np.save(tmp_path / "q.npy", x)
    np.testing.assert_array_equal(clips.load_clip_batch(tmp_path / "q.npy", model).features, x)
    np.save(tmp_path / "wide.npy", np.full((32, 101), 1000, np.int16))
    with pytest.raises(UserError, match="wide.npy: .*outside the input range"):
        clips.load_clip_batch(tmp_path / "wide.npy", model)
    with pytest.raises(UserError, match="dtype int8; expected float MFCC"):
        clips.load_clip_batch(tmp_path / "q.npy")                     # no export: no floats


def test_unusable_files_are_one_line_errors(tmp_path, model):
    with pytest.raises(UserError, match="none.npy: no such file"):
        clips.load_clip_batch(tmp_path / "none.npy", model)
    (tmp_path / "junk.npy").write_bytes(b"junk")
    with pytest.raises(UserError, match="junk.npy: not a readable .npy/.npz file"):
        clips.load_clip_batch(tmp_path / "junk.npy", model)
    np.savez(tmp_path / "two.npz", a=np.zeros((32, 101)), b=np.zeros(3))
    with pytest.raises(UserError, match="without a 'features' array \\(it holds a, b\\)"):
        clips.load_clip_batch(tmp_path / "two.npz", model)
    np.savez(tmp_path / "lab.npz", features=np.zeros((2, 32, 101)), labels=np.arange(3))
    with pytest.raises(UserError, match="'labels' has shape \\(3,\\) for 2 clips"):
        clips.load_clip_batch(tmp_path / "lab.npz", model)
    np.save(tmp_path / "nan.npy", np.full((32, 101), np.nan, np.float32))
    with pytest.raises(UserError, match="NaN"):
        clips.load_clip_batch(tmp_path / "nan.npy", model)
    (tmp_path / "notes.wav").write_text("not audio")
    with pytest.raises(UserError, match="notes.wav"):
        clips.load_features(tmp_path / "notes.wav", model)


def test_shipped_clips_are_the_shipped_file(model):
    with np.load(shipped.test_clips()) as z:
        raw, labels, names = z["features"], z["labels"], [str(n) for n in z["names"]]
    batch = clips.shipped_clips(model, n=4)
    np.testing.assert_array_equal(batch.features, quantize_features(raw[:4], model))
    assert batch.features.dtype == np.int64
    assert batch.labels.tolist() == labels[:4].tolist() and batch.names == names[:4]
    np.testing.assert_array_equal(clips.shipped_clips().features, raw)
