"""Google Speech Commands (v1 or v2) folder -> the 12-class SparkNet splits.

Expected layout (both the real download and `python -m sparknet_hw data synth` output):

    ROOT/yes/<speaker>_nohash_<n>.wav     one folder per spoken word, 1-s 16 kHz clips
    ROOT/.../                             other words -> `_unknown_`
    ROOT/validation_list.txt              "word/file.wav" lines -> validation split
    ROOT/testing_list.txt                 "word/file.wav" lines -> test split
    ROOT/_background_noise_/*.wav         long noise recordings -> `_silence_` (optional)

Clips are `.wav` or `.flac`.  Every clip listed in neither file is training data.  Per
split, `_unknown_` is a seeded sample (without replacement) of the clips of all
non-keyword words and `_silence_` is that many 1-s segments of the background-noise
files (all-zero clips if there are none); both are sized to the average keyword class
count of that split (the BC-ResNet balance).  Each noise file is cut in time so that the
splits never share noise: the first 80 % feeds training, the next 10 % validation, the
last 10 % test.

A folder without split lists (or whose validation list is empty, as `shared/data/gsc-dev`,
whose testing list names every clip) is split by speaker instead (`split_mode`): the
speaker is the hash before `_nohash_`, and a speaker whose salted SHA-1 falls in the
lowest `holdout` percent is a validation speaker, all others train.  The rule depends on
the speaker name alone, so the split is the same on every machine and never puts one
speaker on both sides.  Such a folder has no test split: its held-out speakers are its
validation split.  One-second clips in `_silence_clips/` are `_silence_` (split by file
name); `_silence_` is topped up from the background noise as above, and stays empty when
the folder has neither.  `_unknown_` and `_silence_clips/` keep every clip of the split
there (real ones are scarce; class balancing is the trainer's job).
"""
from __future__ import annotations

import hashlib
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
SILENCE_DIR = "_silence_clips"
AUDIO_EXTENSIONS = (".wav", ".flac")
HOLDOUT_PERCENT = 15.0     # validation speakers of a folder that is split by speaker
SPEAKER_SALT = "sparknet-hw speaker split v1"
NOISE_REGIONS = {"train": (0.0, 0.8), "validation": (0.8, 0.9), "test": (0.9, 1.0)}

EXPECTED = ("expected a Google Speech Commands folder: one subfolder of 1-s .wav or .flac clips "
            "per word (yes/, no/, ...), validation_list.txt and testing_list.txt (or neither: "
            "then it is split by speaker), optionally _background_noise_/; make an offline one with "
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
        return {_as_listed(line.strip().replace("\\", "/")) for line in fh if line.strip()}


def _as_listed(rel: str) -> str:
    """Split lists name .wav files; a FLAC copy of the dataset keeps the names otherwise."""
    stem, ext = os.path.splitext(rel)
    return stem + ".wav" if ext.lower() in AUDIO_EXTENSIONS else rel


def _audio_files(folder: str) -> list[str]:
    return sorted(f for f in os.listdir(folder) if f.lower().endswith(AUDIO_EXTENSIONS))


def speaker_of(rel: str) -> str:
    """Speaker ID of a clip: the hash before `_nohash_` (the file stem when there is none)."""
    name = os.path.basename(rel)
    return name.split("_nohash_")[0] if "_nohash_" in name else os.path.splitext(name)[0]


def speakers_in(examples) -> set[str]:
    """The speakers of the examples that name one (`<speaker>_nohash_<n>` clips)."""
    return {speaker_of(ex.path) for ex in examples
            if ex.path and "_nohash_" in os.path.basename(ex.path)}


def is_holdout_speaker(speaker: str, holdout: float = HOLDOUT_PERCENT) -> bool:
    """True for the validation speakers of a folder split by speaker (deterministic)."""
    digest = hashlib.sha1(f"{SPEAKER_SALT}/{speaker}".encode()).hexdigest()
    return int(digest[:12], 16) % 10000 < round(100 * holdout)


def scan(root) -> dict:
    """Word folders, split lists (or speaker mode), silence clips and noise files of a
    dataset folder (validated)."""
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
        files = _audio_files(full)
        if files:
            words[entry] = [f"{entry}/{f}" for f in files]
    if not words:
        raise DatasetError(f"{root}: no word subfolders with .wav or .flac files; {EXPECTED}")
    missing = [k for k in KEYWORDS if k not in words]
    if missing:
        raise DatasetError(f"{root}: no clips for keyword(s) {', '.join(missing)}; {EXPECTED}")
    present = [os.path.isfile(os.path.join(root, name)) for name in SPLIT_FILES.values()]
    if any(present) and not all(present):
        absent = [name for name, ok in zip(SPLIT_FILES.values(), present) if not ok][0]
        raise DatasetError(f"{root}: no {absent} (but the other split list is there); {EXPECTED}")
    lists = ({split: _read_list(root, name) for split, name in SPLIT_FILES.items()}
             if all(present) else {split: set() for split in SPLIT_FILES})
    mode = "lists" if lists["validation"] else "speakers"
    noise_dir = os.path.join(root, BACKGROUND_DIR)
    noise = ([os.path.join(noise_dir, f) for f in _audio_files(noise_dir)]
             if os.path.isdir(noise_dir) else [])
    silence_dir = os.path.join(root, SILENCE_DIR)
    silence = ([f"{SILENCE_DIR}/{f}" for f in _audio_files(silence_dir)]
               if os.path.isdir(silence_dir) else [])
    return {"root": root, "words": words, "lists": lists, "noise": noise, "mode": mode,
            "silence": silence}


def split_mode(root) -> str:
    """"lists" (validation_list.txt / testing_list.txt) or "speakers" (held-out speakers)."""
    return scan(root)["mode"]


def _split_of(rel: str, info: dict, holdout: float) -> str:
    if info["mode"] == "speakers":
        return "validation" if is_holdout_speaker(speaker_of(rel), holdout) else "train"
    listed = _as_listed(rel)
    if listed in info["lists"]["validation"]:
        return "validation"
    if listed in info["lists"]["test"]:
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


def list_split(root, split: str, seed: int = 0,
               holdout: float = HOLDOUT_PERCENT) -> list[Example]:
    """The examples of one split: keyword clips, then `_unknown_`, then `_silence_`.

    Deterministic for a given folder content, seed and (speaker mode) holdout percent.
    """
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    if not 0 <= holdout < 100:
        raise DatasetError(f"holdout {holdout} %: use a percentage of speakers in [0, 100)")
    info = scan(root)
    root = info["root"]
    if info["mode"] == "speakers" and split == "test":
        raise DatasetError(f"{root}: has no test split (no validation_list.txt / "
                           f"testing_list.txt that separate one); it is split by speaker, "
                           f"so evaluate its held-out speakers with the validation split")
    rng = np.random.default_rng([int(seed), SPLITS.index(split)])

    examples: list[Example] = []
    counts = []
    for k, word in enumerate(KEYWORDS):
        mine = [rel for rel in info["words"][word] if _split_of(rel, info, holdout) == split]
        counts.append(len(mine))
        examples += [Example(os.path.join(root, rel), k) for rel in mine]
    target = int(round(sum(counts) / len(KEYWORDS)))

    others = [rel for word, rels in info["words"].items() if word not in KEYWORDS
              for rel in rels if _split_of(rel, info, holdout) == split]
    if others and target:
        # a folder split by speaker keeps all its other words: real ones are scarce there
        size = len(others) if info["mode"] == "speakers" else min(target, len(others))
        pick = rng.choice(len(others), size=size, replace=False)
        examples += [Example(os.path.join(root, others[i]), UNKNOWN) for i in sorted(pick)]

    clips = [rel for rel in info["silence"] if _split_of(rel, info, holdout) == split]
    if info["mode"] == "lists":
        clips = clips[:target]
    examples += [Example(os.path.join(root, rel), SILENCE) for rel in clips]
    missing = target - min(target, len(clips))
    if missing:
        if info["noise"]:
            lengths = [_noise_length(p) for p in info["noise"]]
            lo, hi = NOISE_REGIONS[split]
            for _ in range(missing):
                i = int(rng.integers(len(info["noise"])))
                start, stop = int(lengths[i] * lo), int(lengths[i] * hi)
                last = max(start, stop - CLIP_SAMPLES)
                offset = int(rng.integers(start, last + 1))
                examples.append(Example(info["noise"][i], SILENCE, offset))
        elif info["mode"] == "lists":
            examples += [Example(None, SILENCE, 0)] * missing
    return examples


def split_counts(examples) -> dict[str, int]:
    """{label name: number of examples}, in LABELS order."""
    counts = {name: 0 for name in LABELS}
    for ex in examples:
        counts[LABELS[ex.label]] += 1
    return counts
