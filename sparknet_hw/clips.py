"""Loading clips: the one boundary between a clip on disk (or an array) and the network input.

A clip is a float MFCC matrix [32 features, 101 frames] (sparknet_hw.features). Given an
export, it becomes the export's integer input: float MFCC are quantized with the export's
per-feature input frac (quant.features: round half to even, clamp), integer features are
taken as already quantized and checked against the export's input range.

    load_features("yes.wav")                 # float32 [32, 101]: load_wav -> MFCC
    load_features("yes.wav", export)         # int64 [32, 101]: what the hardware gets
    load_clip_batch("clips.npz", export, n=4)  # ClipBatch: int64 [4, 32, 101], labels, names
    shipped_clips(export)                    # the shipped real test clips (shipped.test_clips)

Sources: an audio file (anything that is not a .npy / .npz: .wav, .flac, ... read by
sparknet_hw.audio, one clip), a .npy of features ([32, 101] or [N, 32, 101]), a .npz with a
`features` array (or a single array) and optional `labels` / `names` (what `data clips`
writes), or an array. Whatever cannot be used raises FeatureError (a UserError: one line
naming the file). The training dataset's feature cache (sparknet_hw.data) is separate.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import shipped
from .quant.golden import FeatureError

FEATURE_SUFFIXES = (".npy", ".npz")


@dataclass
class ClipBatch:
    """N clips: `features` [N, 32, 101] (float32 MFCC, or int64 export input when an export
    was given; as stored for `read_features`), `labels` (class indices) when the source
    has them, and a name per clip."""
    features: np.ndarray
    labels: np.ndarray | None
    names: list

    def __len__(self) -> int:
        return len(self.features)

    def head(self, n: int | None) -> "ClipBatch":
        """The first n clips (all of them for None)."""
        if n is None or self.features.ndim == 0:
            return self
        labels = self.labels[:n] if self.labels is not None else None
        return ClipBatch(self.features[:n], labels, self.names[:n])


def audio_features(path) -> np.ndarray:
    """float32 MFCC [32, 101] of one audio file (load_wav: mono, 16 kHz, the middle second,
    peak-normalised; AudioError names what is wrong with the file)."""
    from .audio import load_wav
    from .features import mfcc
    return mfcc(load_wav(path))


def is_features_file(path) -> bool:
    """.npy / .npz by name, or by content (NumPy's magic, a zip archive) whatever the name."""
    path = Path(path)
    if path.suffix.lower() in FEATURE_SUFFIXES:
        return True
    try:
        with path.open("rb") as fh:
            head = fh.read(6)
    except OSError:
        return False
    return head.startswith((b"\x93NUMPY", b"PK\x03\x04"))


def read_features(path) -> ClipBatch:
    """The contents of a .npy / .npz features file as stored (dtype unchanged, not checked
    against an export; a single [32, 101] clip becomes [1, 32, 101])."""
    path = Path(path)
    if not path.is_file():
        raise FeatureError(f"{path}: no such file")
    labels = names = None
    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.lib.npyio.NpzFile):
            with data:
                keys = list(data.files)
                key = "features" if "features" in keys else (keys[0] if len(keys) == 1
                                                             else None)
                if key is None:
                    raise FeatureError(
                        f"{path}: .npz without a 'features' array"
                        + (f" (it holds {', '.join(keys)})" if keys else " (it holds no arrays)"))
                x = data[key]
                labels = data["labels"] if "labels" in keys else None
                names = data["names"] if "names" in keys else None
        else:
            x = data
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise FeatureError(f"{path}: not a readable .npy/.npz file ({str(exc)[:80]})") from None
    x = np.asarray(x)
    if x.ndim == 2:
        x = x[None]
    n = len(x) if x.ndim else 0
    for what, v in (("labels", labels), ("names", names)):
        if v is not None and (v.ndim != 1 or len(v) != n):
            raise FeatureError(f"{path}: '{what}' has shape {v.shape} for {n} clips")
    if labels is not None and not np.issubdtype(labels.dtype, np.integer):
        raise FeatureError(f"{path}: 'labels' has dtype {labels.dtype}; expected class indices")
    return ClipBatch(x, None if labels is None else labels.astype(np.int64),
                     [str(s) for s in names] if names is not None
                     else [f"clip{i}" for i in range(n)])


def read_clips(path) -> ClipBatch:
    """Raw clips of a file: a features file as stored (read_features), or one audio file
    as its float MFCC [1, 32, 101] (named after the file)."""
    path = Path(path)
    if is_features_file(path):
        return read_features(path)
    if not path.is_file():
        raise FeatureError(f"{path}: no such file")
    return ClipBatch(audio_features(path)[None], None, [path.stem])


def to_model_input(x, model: dict, source=None) -> np.ndarray:
    """int64 [N, 32, 101] export input of features [32, 101] or [N, 32, 101]: float MFCC are
    quantized, integer features range-checked (quant.features.as_golden_input); errors name
    `source` when given."""
    from .quant.features import as_golden_input
    try:
        return as_golden_input(x, model)
    except FeatureError as exc:
        if source is None:
            raise
        raise FeatureError(f"{source}: {exc}") from None


def _as_float(x, source, shape) -> np.ndarray:
    x = np.asarray(x)
    where = f"{source}: " if source is not None else ""
    if not np.issubdtype(x.dtype, np.floating):
        raise FeatureError(f"{where}features have dtype {x.dtype}; expected float MFCC "
                           f"(integer features need the export they were quantized for)")
    if x.ndim != 3 or x.shape[1:] != shape:
        raise FeatureError(f"{where}features have shape {x.shape}, expected [N, {shape[0]}, "
                           f"{shape[1]}] (clips x features x frames)")
    return x.astype(np.float32, copy=False)


def _convert(batch: ClipBatch, model: dict | None, source) -> ClipBatch:
    if model is not None:
        x = to_model_input(batch.features, model, source)
    else:
        from .features import N_FRAMES, N_MFCC
        x = _as_float(batch.features, source, (N_MFCC, N_FRAMES))
    return ClipBatch(x, batch.labels, batch.names)


def load_clip_batch(source, model: dict | None = None, n: int | None = None) -> ClipBatch:
    """N clips from a file (audio, .npy, .npz) or an array [32, 101] / [N, 32, 101]: float32
    MFCC, or with `model` (an export) its int64 input. `n` keeps the first n clips."""
    if isinstance(source, (str, Path)):
        batch, where = read_clips(source), source
    else:
        x = np.asarray(source)
        if x.ndim == 2:
            x = x[None]
        batch, where = ClipBatch(x, None, [f"clip{i}" for i in range(len(x))]), None
    return _convert(batch.head(n), model, where)


def load_features(source, model: dict | None = None) -> np.ndarray:
    """One clip [32, 101] from an audio file, a .npy / .npz of one clip, or an array: float32
    MFCC, or with `model` (an export) its int64 input."""
    if isinstance(source, (str, Path)):
        x, where = read_clips(source).features, source
    else:
        x, where = np.asarray(source)[None], None
    if model is not None:
        from .quant.export_types import as_export
        model = as_export(model)            # converted once for the checks below
        shape = (model.features, model.frames)
    else:
        from .features import N_FRAMES, N_MFCC
        shape = (N_MFCC, N_FRAMES)
    if x.ndim != 3 or len(x) != 1 or x.shape[1:] != shape:
        got = x.shape[1:] if x.ndim >= 1 and len(x) == 1 else x.shape
        raise FeatureError(f"{f'{where}: ' if where is not None else ''}features have shape "
                           f"{got}, expected {shape}")
    return _convert(ClipBatch(x, None, ["clip0"]), model, where).features[0]


def shipped_clips(model: dict | None = None, n: int | None = None) -> ClipBatch | None:
    """The shipped real test clips (float MFCC, labels, names; shipped.test_clips()), the
    first n of them, as float32 MFCC or with `model` its int64 input; None when the package
    ships none."""
    path = shipped.test_clips()
    if not path.is_file():
        return None
    return load_clip_batch(path, model, n)


__all__ = ["ClipBatch", "FeatureError", "audio_features", "read_features", "read_clips",
           "to_model_input", "load_clip_batch", "load_features", "shipped_clips"]
