"""Torch dataset of one split: waveforms, labels and cached MFCC features.

`FeatureDataset(root, split)` loads every waveform of the split once (peak-normalised,
1 s, as `audio.load_wav`), computes the 32 x 101 MFCCs and keeps both in
`<root>/.cache/<split>-seed<seed>.npz` (the seed picks the balanced `_unknown_` and
`_silence_` examples, so runs with different seeds keep separate caches).  The cache is keyed on the example list (paths, labels,
noise offsets, file sizes and modification times), the balancing seed and the feature
settings, so it is rebuilt when any of them changes and reused otherwise.  Waveforms are
kept as int16 (the peak-normalised clip times 32767), and the cached features are
computed from exactly those samples, so `mfcc_torch(ds.waveforms)` reproduces
`ds.features` to float32 tolerance.

Training with waveform augmentation (SPARKNET.md recipe: time shift +-100 ms with p 0.8,
white noise at -90..-46 dB with p 0.8), batched and cheap:

    g = torch.Generator().manual_seed(1948)
    waves = ds.wave_batch(idx)                    # or ds.waveforms[idx]
    x = mfcc_torch(augment_batch(waves, g))       # [B, 32, 101]
    y = ds.labels[idx]

`ds[i]` gives (features [32, 101], label); with augment=True it augments that one clip
(fine for a DataLoader with num_workers=0; the batched path above is much faster).
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch.utils.data import Dataset

from ..audio import CLIP_SAMPLES, SAMPLE_RATE, fit_clip, load_wav, peak_normalise, read_audio
from ..features import (HOP_LENGTH, LOG_GUARD, N_FFT, N_FRAMES, N_MELS, N_MFCC, WIN_LENGTH,
                        mfcc_torch)
from .labels import LABELS
from .speech_commands import HOLDOUT_PERCENT, NOISE_REGIONS, Example, list_split, scan

CACHE_VERSION = 2                 # 2: clips below audio.SILENCE_FLOOR are zeroed
SHIFT_MS = 100
P_SHIFT = 0.8
NOISE_DB = (-90.0, -46.0)
P_NOISE = 0.8


def augment_batch(waves: torch.Tensor, generator: torch.Generator | None = None, *,
                  shift_ms: float = SHIFT_MS, p_shift: float = P_SHIFT,
                  noise_db: tuple[float, float] = NOISE_DB, p_noise: float = P_NOISE,
                  background: torch.Tensor | None = None, p_background: float = 0.0,
                  snr_db: tuple[float, float] = (0.0, 20.0), speed: float = 0.0,
                  p_speed: float = 0.0) -> torch.Tensor:
    """Augmented copy of a batch of waveforms [B, N] (SparkNet recipe).

    Each clip independently: with p_shift, shifted in time by a uniform whole number of
    samples in +-shift_ms (zeros fill in); with p_noise, white Gaussian noise added with
    standard deviation 10^(dB/20), dB uniform in noise_db (the clips are peak-normalised,
    so dB is relative to full scale).  Optionally (p_background > 0, the C=32 recipe)
    a random row of `background` [M, N] mixed in at a uniform SNR in snr_db.
    Optionally (p_speed > 0) a speed change first: each chosen clip is resampled by a
    factor uniform in 1 +- speed (tempo and pitch together, as Kaldi's speed perturbation),
    about its centre, by linear interpolation.
    Random numbers come from `generator` (CPU), so a seeded generator repeats exactly.
    """
    if waves.dim() != 2:
        raise ValueError(f"augment_batch expects [B, samples], got {tuple(waves.shape)}")
    b, n = waves.shape
    g = generator
    out = waves
    if p_speed > 0 and speed > 0:
        do = torch.rand(b, generator=g) < p_speed
        factor = 1 + torch.empty(b).uniform_(-speed, speed, generator=g) * do
        out = change_speed(out, factor.to(out.device))
    max_shift = int(round(SAMPLE_RATE * shift_ms / 1000))
    if p_shift > 0 and max_shift > 0:
        do = torch.rand(b, generator=g) < p_shift
        shifts = torch.randint(-max_shift, max_shift + 1, (b,), generator=g) * do
        src = torch.arange(n).unsqueeze(0) - shifts.unsqueeze(1)      # out[t] = in[t - s]
        valid = ((src >= 0) & (src < n)).to(waves.device)
        out = torch.gather(out, 1, src.clamp(0, n - 1).to(waves.device)) * valid
    if p_background > 0 and background is not None and len(background):
        do = torch.rand(b, generator=g) < p_background
        pick = torch.randint(len(background), (b,), generator=g)
        snr = torch.empty(b).uniform_(snr_db[0], snr_db[1], generator=g)
        noise = background[pick].to(out.device, out.dtype)
        sig_rms = out.pow(2).mean(1).sqrt()
        noise_rms = noise.pow(2).mean(1).sqrt().clamp_min(1e-8)
        gain = (sig_rms / noise_rms / 10 ** (snr.to(out.device) / 20)) * do.to(out.device)
        out = out + noise * gain.unsqueeze(1)
    if p_noise > 0:
        do = torch.rand(b, generator=g) < p_noise
        db = torch.empty(b).uniform_(noise_db[0], noise_db[1], generator=g)
        amp = (10 ** (db / 20)) * do
        out = out + torch.randn(b, n, generator=g).to(out.device, out.dtype) \
            * amp.to(out.device, out.dtype).unsqueeze(1)
    return out if out is not waves else waves.clone()


def change_speed(waves: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Each row played `factor` times faster about its centre (linear interpolation;
    zeros where the source runs out)."""
    b, n = waves.shape
    centre = (n - 1) / 2
    pos = centre + (torch.arange(n, device=waves.device, dtype=torch.float32) - centre) \
        * factor.unsqueeze(1)
    lo_c = pos.floor().long().clamp(0, n - 2)
    frac = pos - lo_c                 # in [0, 1] wherever the position is inside the clip
    valid = (pos >= 0) & (pos <= n - 1)
    a = torch.gather(waves, 1, lo_c)
    c = torch.gather(waves, 1, lo_c + 1)
    return (a + (c - a) * frac) * valid


def spec_augment(features: torch.Tensor, generator: torch.Generator | None = None, *,
                 time_masks: int = 2, time_width: int = 10, freq_masks: int = 2,
                 freq_width: int = 4) -> torch.Tensor:
    """SpecAugment on MFCC [B, F, T] as NeMo's MatchboxNet recipe applies it: up to
    `time_masks` runs of 0..time_width frames and `freq_masks` runs of 0..freq_width
    coefficients set to zero per clip."""
    b, f, t = features.shape
    keep = torch.ones(b, f, t, dtype=torch.bool)
    for count, width, size, dim in ((time_masks, time_width, t, 2), (freq_masks, freq_width, f, 1)):
        axis = torch.arange(size).unsqueeze(0)
        for _ in range(count):
            w = torch.randint(0, width + 1, (b,), generator=generator)
            start = (torch.rand(b, generator=generator) * (size - w + 1)).long()
            hit = (axis >= start.unsqueeze(1)) & (axis < (start + w).unsqueeze(1))
            keep &= ~hit.unsqueeze(3 - dim)
    return features * keep.to(features.device, features.dtype)


def _file_stamp(path: str | None) -> list:
    if path is None:
        return [None, 0, 0]
    st = os.stat(path)
    return [path, st.st_size, st.st_mtime_ns]


def _cache_key(root: str, split: str, seed: int, examples: list[Example],
               holdout: float = HOLDOUT_PERCENT) -> str:
    h = hashlib.sha1()
    h.update(json.dumps({
        "version": CACHE_VERSION, "split": split, "seed": int(seed), "holdout": holdout,
        "features": [SAMPLE_RATE, CLIP_SAMPLES, N_FFT, WIN_LENGTH, HOP_LENGTH, N_MELS, N_MFCC,
                     N_FRAMES, LOG_GUARD],
    }).encode())
    stamps = {}
    for ex in examples:
        if ex.path not in stamps:
            stamps[ex.path] = _file_stamp(ex.path)
        rel = None if ex.path is None else os.path.relpath(ex.path, root)
        h.update(json.dumps([rel, ex.label, ex.offset, stamps[ex.path][1:]]).encode())
    return h.hexdigest()


def load_examples(examples: list[Example], jobs: int = 2) -> np.ndarray:
    """int16 [N, 16000]: each example's peak-normalised clip times 32767."""
    noise_cache: dict[str, np.ndarray] = {}

    def one(ex: Example) -> np.ndarray:
        if ex.path is None:
            clip = np.zeros(CLIP_SAMPLES, np.float32)
        elif ex.offset or ex.label == LABELS.index("_silence_"):
            if ex.path not in noise_cache:
                noise_cache[ex.path] = read_audio(ex.path)
            clip = peak_normalise(fit_clip(noise_cache[ex.path][ex.offset:ex.offset + CLIP_SAMPLES]))
        else:
            clip = load_wav(ex.path)
        return np.round(clip * 32767).astype(np.int16)

    # read the (few, long) noise files before the thread pool shares the dict
    for ex in examples:
        if ex.path is not None and ex.label == LABELS.index("_silence_") and ex.path not in noise_cache:
            noise_cache[ex.path] = read_audio(ex.path)
    out = np.zeros((len(examples), CLIP_SAMPLES), np.int16)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for i, clip in enumerate(pool.map(one, examples, chunksize=64)):
            out[i] = clip
    return out


def features_of(waves16: np.ndarray, batch: int = 512) -> np.ndarray:
    """float32 [N, 32, 101] MFCCs of int16 clips (via mfcc_torch, batched)."""
    feats = np.zeros((len(waves16), N_MFCC, N_FRAMES), np.float32)
    with torch.no_grad():
        for i in range(0, len(waves16), batch):
            w = torch.from_numpy(waves16[i:i + batch].astype(np.float32) / 32767)
            feats[i:i + batch] = mfcc_torch(w).numpy()
    return feats


def cache_folder(root: str) -> str:
    """`<root>/.cache` for a folder of the user's; for a read-only one (a shared copy of
    the real clips) a folder per dataset under ~/.cache/sparknet_hw/features, so that
    reading a dataset never writes into it."""
    if os.stat(root).st_mode & stat.S_IWUSR:
        return os.path.join(root, ".cache")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    tag = hashlib.sha1(root.encode()).hexdigest()[:12]
    return os.path.join(base, "sparknet_hw", "features", f"{os.path.basename(root)}-{tag}")


class FeatureDataset(Dataset):
    """One split of a Speech-Commands-shaped folder as (features [32, 101], label)."""

    def __init__(self, root, split: str, augment: bool = False, seed: int = 0,
                 cache: bool = True, jobs: int = 2, holdout: float = HOLDOUT_PERCENT):
        self.root = os.path.abspath(os.fspath(root))
        self.split = split
        self.augment = augment
        self.seed = int(seed)
        self.holdout = holdout
        self.examples = list_split(self.root, split, seed=self.seed, holdout=holdout)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.cache_path = os.path.join(cache_folder(self.root),
                                       f"{split}-seed{self.seed}.npz")
        self.from_cache = False
        key = _cache_key(self.root, split, self.seed, self.examples, holdout)
        data = self._read_cache(key) if cache else None
        if data is None:
            waves16 = load_examples(self.examples, jobs=jobs)
            feats = features_of(waves16)
            if cache:
                self._write_cache(key, waves16, feats)
        else:
            waves16, feats = data
            self.from_cache = True
        self._waves16 = torch.from_numpy(waves16)
        self._waves = None
        self.features = torch.from_numpy(feats)
        self.labels = torch.tensor([ex.label for ex in self.examples], dtype=torch.long)
        self._bank = None

    # -- cache
    def _read_cache(self, key: str):
        try:
            with np.load(self.cache_path, allow_pickle=False) as z:
                if str(z["key"]) != key:
                    return None
                waves16, feats = z["waves"], z["features"]
        except (OSError, KeyError, ValueError, EOFError):
            return None
        if len(waves16) != len(self.examples):
            return None
        return waves16, feats

    def _write_cache(self, key: str, waves16: np.ndarray, feats: np.ndarray) -> None:
        tmp = f"{self.cache_path}.{os.getpid()}.tmp.npz"
        try:
            os.makedirs(os.path.dirname(self.cache_path), exist_ok=True)
            np.savez(tmp, key=np.array(key), waves=waves16, features=feats)
            os.replace(tmp, self.cache_path)
        except OSError as exc:
            print(f"warning: cannot write feature cache {self.cache_path} ({exc}); "
                  f"features will be recomputed next time", file=sys.stderr)
            try:
                os.remove(tmp)
            except OSError:
                pass

    # -- accessors
    @property
    def waveforms(self) -> torch.Tensor:
        """float32 [N, 16000], peak-normalised clips (materialised on first use)."""
        if self._waves is None:
            self._waves = self._waves16.to(torch.float32) / 32767
        return self._waves

    def wave_batch(self, indices) -> torch.Tensor:
        """float32 [B, 16000] for the given indices (without materialising all of them)."""
        if self._waves is not None:
            return self._waves[indices]
        return self._waves16[indices].to(torch.float32) / 32767

    @property
    def noise_files(self) -> list[str]:
        """The folder's background-noise recordings (`_background_noise_/`)."""
        return scan(self.root)["noise"]

    @property
    def noise_bank(self) -> torch.Tensor:
        """float32 [M, 16000]: 1-s background-noise segments of this split's noise region
        (0.5-s hop), for augment_batch(background=...); empty if the folder has none."""
        if self._bank is None:
            lo, hi = NOISE_REGIONS[self.split]
            rows = []
            for path in scan(self.root)["noise"]:
                x = read_audio(path)
                seg = x[int(len(x) * lo):int(len(x) * hi)]
                for s in range(0, max(1, len(seg) - CLIP_SAMPLES + 1), CLIP_SAMPLES // 2):
                    rows.append(peak_normalise(fit_clip(seg[s:s + CLIP_SAMPLES])))
            self._bank = (torch.from_numpy(np.stack(rows)) if rows
                          else torch.zeros((0, CLIP_SAMPLES)))
        return self._bank

    def counts(self) -> dict[str, int]:
        c = torch.bincount(self.labels, minlength=len(LABELS)).tolist()
        return dict(zip(LABELS, c))

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i):
        label = int(self.labels[i])
        if not self.augment:
            return self.features[i], label
        wave = self.wave_batch([i])
        with torch.no_grad():
            return mfcc_torch(augment_batch(wave, self.generator))[0], label
