"""MFCC front end: one 16 kHz one-second clip -> float32 [32 features, 101 frames].

Exactly the SparkNet settings (SPARKNET.md):
  * STFT: n_fft 512, 25 ms periodic Hann window (400 samples, zero-padded to 512 in the
    middle), hop 10 ms (160), centred frames with zero padding (n_fft // 2 each side),
    so 16000 samples give 1 + 16000 // 160 = 101 frames;
  * power spectrum |X|^2 -> 32 mel bands, 0..8 kHz (librosa's default Slaney mel scale
    with Slaney area normalisation);
  * log guard: natural log of (mel power + 1e-6)  (LOG_GUARD below);  a silent frame
    gives log(1e-6) = -13.8 in every band instead of -inf;
  * DCT-II, orthonormal, keep all 32 coefficients;
  * cropped or zero-padded to 101 frames.

`mfcc` is the reference (librosa + scipy, numpy in and out). `mfcc_torch` computes the
same numbers on a batch with torch (used in training after waveform augmentation); the
two agree to float32 tolerance (tests/test_features.py).
"""
from __future__ import annotations

import functools

import numpy as np
import librosa
import scipy.fft

from .audio import CLIP_SAMPLES, SAMPLE_RATE

N_FFT = 512
WIN_LENGTH = 400
HOP_LENGTH = 160
N_MELS = 32
N_MFCC = 32
N_FRAMES = 101
LOG_GUARD = 1e-6


@functools.lru_cache(maxsize=None)
def mel_matrix() -> np.ndarray:
    """[32 mel bands, 257 FFT bins] filterbank (float32)."""
    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=0.0,
                               fmax=SAMPLE_RATE / 2, htk=False, norm="slaney",
                               dtype=np.float32)


@functools.lru_cache(maxsize=None)
def dct_matrix() -> np.ndarray:
    """[32 coefficients, 32 bands] orthonormal DCT-II matrix (float32): c = D @ logmel."""
    return scipy.fft.dct(np.eye(N_MELS), type=2, norm="ortho", axis=0)[:N_MFCC].astype(np.float32)


def _fit_frames(x: np.ndarray) -> np.ndarray:
    if x.shape[-1] >= N_FRAMES:
        return x[..., :N_FRAMES]
    pad = [(0, 0)] * (x.ndim - 1) + [(0, N_FRAMES - x.shape[-1])]
    return np.pad(x, pad)


def mfcc(audio: np.ndarray) -> np.ndarray:
    """float32 [32, 101] MFCC of one clip (any length; 16000 samples gives 101 frames)."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"mfcc expects a 1-D waveform, got shape {audio.shape}")
    spec = librosa.stft(audio, n_fft=N_FFT, hop_length=HOP_LENGTH, win_length=WIN_LENGTH,
                        window="hann", center=True, pad_mode="constant")
    power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
    mel = mel_matrix() @ power
    logmel = np.log(mel + LOG_GUARD)
    coeffs = scipy.fft.dct(logmel, type=2, norm="ortho", axis=0)[:N_MFCC]
    return np.ascontiguousarray(_fit_frames(coeffs), dtype=np.float32)


def mfcc_torch(batch):
    """torch float32 [B, 32, 101] MFCC of a batch of waveforms [B, 16000] (or [16000]).

    Differentiable, runs on the batch's device; same numbers as `mfcc`.
    """
    import torch

    squeeze = batch.dim() == 1
    if squeeze:
        batch = batch.unsqueeze(0)
    if batch.dim() != 2:
        raise ValueError(f"mfcc_torch expects [B, samples], got shape {tuple(batch.shape)}")
    batch = batch.to(torch.float32)
    dev = batch.device
    window = torch.hann_window(WIN_LENGTH, periodic=True, dtype=torch.float32, device=dev)
    spec = torch.stft(batch, n_fft=N_FFT, hop_length=HOP_LENGTH, win_length=WIN_LENGTH,
                      window=window, center=True, pad_mode="constant", return_complex=True)
    power = spec.real ** 2 + spec.imag ** 2                       # [B, 257, T]
    mel = torch.matmul(torch.from_numpy(mel_matrix()).to(dev), power)
    logmel = torch.log(mel + LOG_GUARD)
    coeffs = torch.matmul(torch.from_numpy(dct_matrix()).to(dev), logmel)   # [B, 32, T]
    t = coeffs.shape[-1]
    if t > N_FRAMES:
        coeffs = coeffs[..., :N_FRAMES]
    elif t < N_FRAMES:
        coeffs = torch.nn.functional.pad(coeffs, (0, N_FRAMES - t))
    coeffs = coeffs.contiguous()
    return coeffs[0] if squeeze else coeffs


__all__ = ["mfcc", "mfcc_torch", "mel_matrix", "dct_matrix", "N_FFT", "WIN_LENGTH",
           "HOP_LENGTH", "N_MELS", "N_MFCC", "N_FRAMES", "LOG_GUARD", "CLIP_SAMPLES"]
