"""load_wav: the clip every stage sees, and a clear error for every unusable file."""
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from sparknet_hw.audio import CLIP_SAMPLES, SAMPLE_RATE, AudioError, load_wav
from sparknet_hw.cli import main
from sparknet_hw.errors import UserError


def tone(n, rate=SAMPLE_RATE, freq=440.0, amp=0.3):
    t = np.arange(n) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write(path, x, rate=SAMPLE_RATE, subtype="PCM_16"):
    sf.write(str(path), x, rate, subtype=subtype)
    return path


def test_short_clip_is_padded_and_peak_normalised(tmp_path):
    x = tone(12000)
    y = load_wav(write(tmp_path / "a.wav", x))
    assert y.dtype == np.float32 and y.shape == (CLIP_SAMPLES,)
    assert np.max(np.abs(y)) == pytest.approx(1.0, abs=1e-6)
    assert np.all(y[12000:] == 0)
    np.testing.assert_allclose(y[:12000], x / np.max(np.abs(x)), atol=1e-3)


def test_clips_below_the_silence_floor_become_zero(tmp_path):
    """7 LSB of 16-bit audio is silence; 8 LSB is normalised like any clip."""
    from sparknet_hw.audio import peak_normalise
    for peak, zeroed in ((7, True), (8, False)):
        x = np.zeros(16000, np.int16)
        x[::50] = peak
        x[25::50] = -peak
        y = load_wav(write(tmp_path / f"p{peak}.wav", x))
        assert np.all(y == 0) == zeroed, peak
        if not zeroed:
            assert np.max(np.abs(y)) == pytest.approx(1.0)
    assert peak_normalise(np.zeros(0, np.float32)).shape == (0,)


def test_long_clip_keeps_the_middle_second(tmp_path):
    x = np.zeros(20000, np.float32)
    x[2000:18000] = tone(16000)
    x[:2000] = 0.9                      # outside the middle second: must be cut
    x[18000:] = -0.9
    y = load_wav(write(tmp_path / "long.wav", x, subtype="FLOAT"))
    assert y.shape == (CLIP_SAMPLES,)
    np.testing.assert_allclose(y, x[2000:18000] / 0.3, atol=1e-5)


def test_silent_clip_stays_zero(tmp_path):
    y = load_wav(write(tmp_path / "z.wav", np.zeros(8000, np.float32)))
    assert y.shape == (CLIP_SAMPLES,) and not np.any(y)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_other_sample_rates_are_resampled(tmp_path, rate):
    y = load_wav(write(tmp_path / f"r{rate}.wav", tone(rate, rate=rate, freq=1000.0), rate=rate))
    assert y.shape == (CLIP_SAMPLES,)
    spectrum = np.abs(np.fft.rfft(y))
    assert np.argmax(spectrum) == pytest.approx(1000, abs=2)   # 1 Hz per bin over 1 s


def _bad_files(tmp_path):
    stereo = write(tmp_path / "stereo.wav", np.stack([tone(16000), tone(16000)], axis=1))
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    no_samples = write(tmp_path / "nosamples.wav", np.zeros(0, np.float32))
    full = write(tmp_path / "full.wav", tone(16000)).read_bytes()
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(full[:20000])
    header_only = tmp_path / "headeronly.wav"
    header_only.write_bytes(full[:30])
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio at all\n" * 20)
    return {
        "stereo": (stereo, "mono"),
        "empty": (empty, "empty"),
        "no samples": (no_samples, "no samples"),
        "truncated": (truncated, "truncated"),
        "header only": (header_only, "WAV"),
        "not audio": (text, "not a readable audio file"),
        "missing": (tmp_path / "missing.wav", "no such file"),
        "directory": (tmp_path, "directory"),
    }


@pytest.mark.parametrize("case", ["stereo", "empty", "no samples", "truncated", "header only",
                                  "not audio", "missing", "directory"])
def test_bad_input_raises_audio_error_naming_the_file(tmp_path, case):
    path, words = _bad_files(tmp_path)[case]
    with pytest.raises(AudioError) as info:
        load_wav(path)
    msg = str(info.value)
    assert isinstance(info.value, UserError)
    assert str(path) in msg and words in msg
    assert "\n" not in msg


def test_stereo_message_says_how_to_fix(tmp_path):
    path, _ = _bad_files(tmp_path)["stereo"]
    with pytest.raises(AudioError, match=r"sox in\.wav -c 1 out\.wav"):
        load_wav(path)


def test_cli_bad_wav_is_one_line_error(tmp_path, capsys):
    path, _ = _bad_files(tmp_path)["truncated"]
    assert main(["data", "mfcc", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and str(path) in err and len(err.splitlines()) == 1


def test_cli_subprocess_has_no_traceback(tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    res = subprocess.run([sys.executable, "-m", "sparknet_hw", "data", "mfcc", str(text)],
                         capture_output=True, text=True)
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == [res.stderr.strip()]
    assert str(text) in res.stderr


def test_cli_mfcc_saves_features(tmp_path, capsys):
    wav = write(tmp_path / "ok.wav", tone(16000))
    out = tmp_path / "f.npy"
    assert main(["data", "mfcc", str(wav), "--out", str(out)]) == 0
    assert np.load(out).shape == (32, 101)
    assert "32 x 101" in capsys.readouterr().out
