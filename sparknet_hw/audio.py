"""Audio in: one-second, 16 kHz, mono clips, peak-normalised as SparkNet loads them.

`load_wav(path)` is what every other stage calls.  It reads with soundfile, resamples a
wrong sample rate with `scipy.signal.resample_poly`, keeps the middle second of a
longer clip, zero-pads a shorter one at the end, and divides by the peak (an all-zero
clip stays zero).  Anything it cannot use (missing file, not audio, truncated or corrupt
WAV, empty, more than one channel) raises `AudioError` with a one-line message that
names the file and says what to do.
"""
from __future__ import annotations

import os
import struct
from math import gcd

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from .errors import UserError

SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000


class AudioError(UserError):
    """An audio file that cannot be used as a keyword clip."""


def _check_wav_container(path: str) -> None:
    """Catch WAV files whose data chunk is cut short (libsndfile reads those silently)."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return  # not a RIFF/WAVE file: soundfile decides what it is
        endian = "<" if head[:4] == b"RIFF" else ">"
        pos = 12
        while pos + 8 <= size:
            fh.seek(pos)
            chunk = fh.read(8)
            if len(chunk) < 8:
                break
            cid, csize = chunk[:4], struct.unpack(endian + "I", chunk[4:])[0]
            if cid == b"data":
                # 0 and values near 4 GiB are "unknown length" placeholders written by
                # streaming writers (sox to a pipe); only trust a real length.
                if 0 < csize < 0x7FFF0000 and pos + 8 + csize > size:
                    raise AudioError(
                        f"{path}: truncated WAV (header promises {csize} data bytes, file has "
                        f"{size - pos - 8}); re-record or re-export the file")
                return
            pos += 8 + csize + (csize & 1)
    raise AudioError(f"{path}: corrupt WAV (no 'data' chunk); re-export it as 16-bit PCM WAV")


def read_audio(path) -> np.ndarray:
    """Whole file as float32 mono at 16 kHz (not cropped, not normalised)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise AudioError(f"{path}: no such file; check the path")
    if os.path.isdir(path):
        raise AudioError(f"{path}: is a directory, expected a .wav file")
    if os.path.getsize(path) == 0:
        raise AudioError(f"{path}: empty file (0 bytes); re-record or re-export it")
    try:
        _check_wav_container(path)
        data, rate = sf.read(path, dtype="float32", always_2d=True)
    except AudioError:
        raise
    except sf.LibsndfileError as exc:
        reason = str(getattr(exc, "error_string", "") or exc).strip().rstrip(".")
        raise AudioError(f"{path}: not a readable audio file ({reason}); "
                         f"convert it to WAV: sox in.xxx -r 16000 -c 1 out.wav") from None
    except (RuntimeError, ValueError, OSError) as exc:
        raise AudioError(f"{path}: cannot read audio ({exc}); "
                         f"convert it to WAV: sox in.xxx -r 16000 -c 1 out.wav") from None
    if data.shape[1] != 1:
        raise AudioError(f"{path}: has {data.shape[1]} channels, expected mono; "
                         f"convert to mono: sox in.wav -c 1 out.wav")
    if data.shape[0] == 0:
        raise AudioError(f"{path}: contains no samples; re-record or re-export it")
    audio = data[:, 0]
    if not np.all(np.isfinite(audio)):
        raise AudioError(f"{path}: contains NaN or infinite samples; re-export it as 16-bit PCM")
    if rate != SAMPLE_RATE:
        g = gcd(int(rate), SAMPLE_RATE)
        audio = resample_poly(audio, SAMPLE_RATE // g, int(rate) // g).astype(np.float32)
    return np.ascontiguousarray(audio, dtype=np.float32)


def fit_clip(audio: np.ndarray) -> np.ndarray:
    """Exactly CLIP_SAMPLES: middle second of a longer clip, zeros appended to a shorter one."""
    n = audio.shape[0]
    if n > CLIP_SAMPLES:
        start = (n - CLIP_SAMPLES) // 2
        return np.ascontiguousarray(audio[start:start + CLIP_SAMPLES], dtype=np.float32)
    out = np.zeros(CLIP_SAMPLES, dtype=np.float32)
    out[:n] = audio
    return out


# A clip whose peak stays below 8 LSB of 16-bit audio (-72 dBFS) is digital silence: peak
# normalisation would blow its dither or hum up to a full-scale signal, which a model may
# take for a word (a 3-LSB 50 Hz hum was "on" for the C = 32 int8 model). The quietest
# real clip in the Speech Commands test speakers we have is a 7-LSB `_silence_` clip; their
# quietest word peaks at more than 48.
SILENCE_FLOOR = 8 / 32768


def peak_normalise(audio: np.ndarray) -> np.ndarray:
    """Divide by the largest magnitude; a clip below SILENCE_FLOOR becomes all zero."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak < SILENCE_FLOOR:
        return np.zeros(audio.shape, dtype=np.float32)
    return (audio / peak).astype(np.float32, copy=False)


def load_wav(path) -> np.ndarray:
    """One clip as float32 [16000], mono, 16 kHz, cropped/padded, peak-normalised."""
    return peak_normalise(fit_clip(read_audio(path)))
