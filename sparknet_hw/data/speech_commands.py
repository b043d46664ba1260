"""Google Speech Commands (v1 or v2) folder -> the 12-class SparkNet splits.

Expected layout (both the real download and `python -m sparknet_hw data synth` output):

    ROOT/yes/<speaker>_nohash_<n>.wav     one folder per spoken word, 1-s 16 kHz clips
    ROOT/.../                             other words -> `_unknown_`
    ROOT/validation_list.txt              "word/file.wav" lines -> validation split
    ROOT/testing_list.txt                 "word/file.wav" lines -> test split
    ROOT/_background_noise_/*.wav         long noise recordings -> `_silence_` (optional)

Every clip listed in neither file is training data.  Per split, `_unknown_` is a
seeded sample (without replacement) of the clips of all non-keyword words and
`_silence_` is that many 1-s segments of the background-noise files (all-zero clips if
there are none); both are sized to the average keyword class count of that split (the
BC-ResNet balance).  Each noise file is cut in time so that the splits never share noise:
the first 80 % feeds training, the next 10 % validation, the last 10 % test.
"""
from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np
import soundfile as sf

from ..audio import CLIP_SAMPLES, SAMPLE_RATE
from ..errors import UserError
from .labels import KEYWORDS, LABELS, SILENCE, UNKNOWN

SPLITS = ("train", "validation", "test")
SPLIT_FILES = {"validation": "validation_list.txt", "test": "testing_list.txt"}
BACKGROUND_DIR = "_background_noise_"
NOISE_REGIONS = {"train": (0.0, 0.8), "validation": (0.8, 0.9), "test": (0.9, 1.0)}

EXPECTED = ("expected a Google Speech Commands folder: one subfolder of 1-s .wav clips per "
            "word (yes/, no/, ...), validation_list.txt and testing_list.txt, optionally "
            "_background_noise_/; make an offline one with "
            "`python -m sparknet_hw data synth --out DIR`")


class DatasetError(UserError):
    """A dataset folder that is missing or not shaped like Speech Commands."""


class Example(NamedTuple):
    """One clip of a split: where its audio comes from and its class index."""

    path: str | None      # wav file; None means an all-zero (digital silence) clip
    label: int            # index into LABELS
    offset: int = 0       # first sample (16 kHz) inside `path`: for background-noise segments


def _read_list(root: str, name: str) -> set[str]:
    path = os.path.join(root, name)
    if not os.path.isfile(path):
        raise DatasetError(f"{root}: no {name}; {EXPECTED}")
    with open(path, encoding="utf-8") as fh:
        return {line.strip().replace("\\", "/") for line in fh if line.strip()}


def scan(root) -> dict:
    """Word folders, split lists and noise files of a dataset folder (validated)."""
    root = os.path.abspath(os.fspath(root))
    if not os.path.exists(root):
        raise DatasetError(f"{root}: no such folder; {EXPECTED}")
    if not os.path.isdir(root):
        raise DatasetError(f"{root}: is a file, not a folder; {EXPECTED}")
    words: dict[str, list[str]] = {}
    for entry in sorted(os.listdir(root)):
        full = os.path.join(root, entry)
        if entry.startswith((".", "_")) or not os.path.isdir(full):
            continue
        files = sorted(f for f in os.listdir(full) if f.lower().endswith(".wav"))
        if files:
            words[entry] = [f"{entry}/{f}" for f in files]
    if not words:
        raise DatasetError(f"{root}: no word subfolders with .wav files; {EXPECTED}")
    missing = [k for k in KEYWORDS if k not in words]
    if missing:
        raise DatasetError(f"{root}: no clips for keyword(s) {', '.join(missing)}; {EXPECTED}")
    lists = {split: _read_list(root, name) for split, name in SPLIT_FILES.items()}
    noise_dir = os.path.join(root, BACKGROUND_DIR)
    noise = []
    if os.path.isdir(noise_dir):
        noise = sorted(os.path.join(noise_dir, f) for f in os.listdir(noise_dir)
                       if f.lower().endswith(".wav"))
    return {"root": root, "words": words, "lists": lists, "noise": noise}


def _split_of(rel: str, lists: dict) -> str:
    if rel in lists["validation"]:
        return "validation"
    if rel in lists["test"]:
        return "test"
    return "train"


def _noise_length(path: str) -> int:
    """Length in 16 kHz samples (after the resampling load_wav would do)."""
    try:
        info = sf.info(path)
    except Exception:
        raise DatasetError(f"{path}: background-noise file is not readable audio; "
                           f"remove it or re-export it as 16 kHz mono WAV") from None
    return int(info.frames * SAMPLE_RATE // max(1, int(info.samplerate)))


def list_split(root, split: str, seed: int = 0) -> list[Example]:
    """The examples of one split: keyword clips, then `_unknown_`, then `_silence_`.

    Deterministic for a given folder content and seed.
    """
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    info = scan(root)
    root, lists = info["root"], info["lists"]
    rng = np.random.default_rng([int(seed), SPLITS.index(split)])

    examples: list[Example] = []
    counts = []
    for k, word in enumerate(KEYWORDS):
        mine = [rel for rel in info["words"][word] if _split_of(rel, lists) == split]
        counts.append(len(mine))
        examples += [Example(os.path.join(root, rel), k) for rel in mine]
    target = int(round(sum(counts) / len(KEYWORDS)))

    others = [rel for word, rels in info["words"].items() if word not in KEYWORDS
              for rel in rels if _split_of(rel, lists) == split]
    if others and target:
        pick = rng.choice(len(others), size=min(target, len(others)), replace=False)
        examples += [Example(os.path.join(root, others[i]), UNKNOWN) for i in sorted(pick)]

    if target:
        if info["noise"]:
            lengths = [_noise_length(p) for p in info["noise"]]
            lo, hi = NOISE_REGIONS[split]
            for _ in range(target):
                i = int(rng.integers(len(info["noise"])))
                start, stop = int(lengths[i] * lo), int(lengths[i] * hi)
                last = max(start, stop - CLIP_SAMPLES)
                offset = int(rng.integers(start, last + 1))
                examples.append(Example(info["noise"][i], SILENCE, offset))
        else:
            examples += [Example(None, SILENCE, 0)] * target
    return examples


def split_counts(examples) -> dict[str, int]:
    """{label name: number of examples}, in LABELS order."""
    counts = {name: 0 for name in LABELS}
    for ex in examples:
        counts[LABELS[ex.label]] += 1
    return counts
