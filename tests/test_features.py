"""MFCC front end against an independent straight-DFT implementation, and torch == numpy."""
import numpy as np
import pytest
import torch

from sparknet_hw.features import LOG_GUARD, mfcc, mfcc_torch


# ---------------------------------------------------------------- independent reference
# Written from the definitions only (no librosa/scipy/torch): explicit DFT matrix,
# Slaney mel scale with area normalisation, explicit orthonormal DCT-II.

def _hz_to_mel(f):
    f = np.asarray(f, dtype=np.float64)
    lin = f / (200.0 / 3)
    log = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log, lin)


def _mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    lin = m * (200.0 / 3)
    log = 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0))
    return np.where(m >= 15.0, log, lin)


def _reference_mfcc(x):
    sr, n_fft, win, hop, n_mels = 16000, 512, 400, 160, 32
    x = np.asarray(x, dtype=np.float64)
    padded = np.concatenate([np.zeros(n_fft // 2), x, np.zeros(n_fft // 2)])
    n_frames = 1 + len(x) // hop
    window = np.zeros(n_fft)
    n = np.arange(win)
    window[(n_fft - win) // 2:(n_fft - win) // 2 + win] = 0.5 - 0.5 * np.cos(2 * np.pi * n / win)
    frames = np.stack([padded[t * hop:t * hop + n_fft] * window for t in range(n_frames)], axis=1)
    k = np.arange(n_fft // 2 + 1)[:, None]
    dft = np.exp(-2j * np.pi * k * np.arange(n_fft)[None, :] / n_fft)
    power = np.abs(dft @ frames) ** 2                                    # [257, T]
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2), n_mels + 2))
    freqs = np.arange(n_fft // 2 + 1) * sr / n_fft
    fb = np.zeros((n_mels, len(freqs)))
    for i in range(n_mels):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        up = (freqs - lo) / (mid - lo)
        down = (hi - freqs) / (hi - mid)
        fb[i] = np.maximum(0, np.minimum(up, down)) * 2.0 / (hi - lo)
    logmel = np.log(fb @ power + 1e-6)
    N = n_mels
    dct = np.array([[np.cos(np.pi * q * (2 * m + 1) / (2 * N)) for m in range(N)]
                    for q in range(N)]) * np.sqrt(2.0 / N)
    dct[0] /= np.sqrt(2.0)
    return dct @ logmel


def _signals():
    rng = np.random.default_rng(7)
    t = np.arange(16000) / 16000
    chirp = 0.5 * np.sin(2 * np.pi * (200 * t + 1500 * t ** 2))
    burst = np.zeros(16000)
    burst[4000:9000] = rng.standard_normal(5000) * 0.2
    return {
        "tone": (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32),
        "chirp": chirp.astype(np.float32),
        "noise": (rng.standard_normal(16000) * 0.1).astype(np.float32),
        "burst": burst.astype(np.float32),
    }


@pytest.mark.parametrize("name", ["tone", "chirp", "noise", "burst"])
def test_mfcc_matches_independent_dft_reference(name):
    x = _signals()[name]
    got = mfcc(x)
    assert got.shape == (32, 101) and got.dtype == np.float32
    ref = _reference_mfcc(x)
    assert ref.shape == (32, 101)
    np.testing.assert_allclose(got, ref, atol=2e-3, rtol=1e-4)


def test_silence_is_the_log_guard():
    got = mfcc(np.zeros(16000, np.float32))
    expected = np.zeros((32, 101), np.float32)
    expected[0] = np.log(LOG_GUARD) * np.sqrt(32)
    np.testing.assert_allclose(got, expected, atol=1e-3)


def test_other_lengths_are_cropped_or_padded_to_101_frames():
    x = _signals()["noise"]
    assert mfcc(x[:8000]).shape == (32, 101)
    assert mfcc(np.concatenate([x, x])).shape == (32, 101)
    np.testing.assert_array_equal(mfcc(x[:8000])[:, 51:], 0)


def test_torch_batch_equals_numpy():
    sig = _signals()
    batch = np.stack(list(sig.values()) + [np.zeros(16000, np.float32)])
    got = mfcc_torch(torch.from_numpy(batch))
    assert got.shape == (5, 32, 101) and got.dtype == torch.float32
    for i in range(len(batch)):
        np.testing.assert_allclose(got[i].numpy(), mfcc(batch[i]), atol=2e-3, rtol=1e-4)
    single = mfcc_torch(torch.from_numpy(batch[1]))
    assert single.shape == (32, 101)


def test_torch_is_differentiable():
    x = torch.from_numpy(_signals()["chirp"]).unsqueeze(0).requires_grad_(True)
    mfcc_torch(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
