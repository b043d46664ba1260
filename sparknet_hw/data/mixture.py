"""Several dataset folders read as one split: what `train --data A --data B` trains on.

`DataMix(roots, split)` loads each folder as a `FeatureDataset` (its own cache, its own
split rule: the folder's lists, or held-out speakers) and concatenates clips, features
and labels; `source[i]` says which folder clip i came from, so validation is reported
per source.  A folder with `corpus.json` is the synthetic (TTS) corpus; every other
folder counts as real speech, and `real` marks its clips.
"""
from __future__ import annotations

import hashlib
import os

import numpy as np
import torch

from .dataset import FeatureDataset
from .labels import LABELS
from .speech_commands import BACKGROUND_DIR, HOLDOUT_PERCENT, scan, speaker_of, speakers_in


def is_synthetic(root) -> bool:
    return os.path.isfile(os.path.join(os.fspath(root), "corpus.json"))


def source_names(roots) -> list[str]:
    """Short, unique names for the folders (their base names, numbered on a clash)."""
    names = []
    for root in roots:
        base = os.path.basename(os.path.abspath(os.fspath(root))) or "data"
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


class DataMix:
    """One split of several Speech-Commands-shaped folders, concatenated."""

    def __init__(self, roots, split: str, seed: int = 0, holdout: float = HOLDOUT_PERCENT,
                 cache: bool = True, speaker_fraction: float = 1.0,
                 folder_holdout: dict[str, float] | None = None):
        """speaker_fraction < 1 keeps only that fraction of the speakers of each real folder
        split by speaker (a fixed subset, nested as the fraction grows): the learning curve.
        folder_holdout overrides `holdout` for the folders it names (by base name)."""
        roots = [roots] if isinstance(roots, (str, os.PathLike)) else list(roots)
        if not roots:
            raise ValueError("DataMix needs at least one folder")
        if not 0 <= speaker_fraction <= 1:
            raise ValueError(f"speaker_fraction {speaker_fraction} is not in [0, 1]")
        self.roots = [os.path.abspath(os.fspath(r)) for r in roots]
        self.names = source_names(self.roots)
        self.split = split
        self.parts = [FeatureDataset(r, split, seed=seed, cache=cache,
                                     holdout=holdout_for(r, holdout, folder_holdout))
                      for r in self.roots]
        self.synthetic = [is_synthetic(r) for r in self.roots]
        self.modes = [scan(r)["mode"] for r in self.roots]
        source = torch.cat([torch.full((len(p),), i, dtype=torch.long)
                            for i, p in enumerate(self.parts)])
        examples = [ex for p in self.parts for ex in p.examples]
        keep = torch.ones(len(examples), dtype=torch.bool)
        if speaker_fraction < 1:
            for j, ex in enumerate(examples):
                i = int(source[j])
                if (not self.synthetic[i] and self.modes[i] == "speakers" and ex.path
                        and BACKGROUND_DIR not in ex.path):
                    keep[j] = speaker_rank(speaker_of(ex.path)) < speaker_fraction
        self.examples = [ex for ex, k in zip(examples, keep.tolist()) if k]
        self.source = source[keep]
        self.features = torch.cat([p.features for p in self.parts])[keep]
        self.labels = torch.cat([p.labels for p in self.parts])[keep]
        self._waves16 = torch.cat([p._waves16 for p in self.parts])[keep]
        self.real = torch.tensor([not self.synthetic[int(s)] for s in self.source],
                                 dtype=torch.bool)

    def __len__(self) -> int:
        return len(self.labels)

    def wave_batch(self, indices) -> torch.Tensor:
        """float32 [B, 16000] peak-normalised clips."""
        return self._waves16[indices].to(torch.float32) / 32767

    @property
    def noise_bank(self) -> torch.Tensor:
        """1-s segments of every folder's background noise (this split's region)."""
        return torch.cat([p.noise_bank for p in self.parts])

    def describe(self) -> list[dict]:
        """Per folder: where it is, how it is split, how many clips and speakers."""
        return [{"name": self.names[i], "path": root, "mode": self.modes[i],
                 "synthetic": self.synthetic[i], "holdout_percent": part.holdout,
                 "clips": int((self.source == i).sum()), "speakers": len(self.speakers(i)),
                 "noise_files": len(part.noise_files)}
                for i, (root, part) in enumerate(zip(self.roots, self.parts))]

    def speakers(self, source: int) -> list[str]:
        """The speakers (hash before `_nohash_`) of one folder's clips in this split."""
        return sorted(speakers_in(ex for ex, s in zip(self.examples, self.source.tolist())
                                  if s == source))


def holdout_for(root, default: float, folder_holdout: dict[str, float] | None) -> float:
    """The held-out-speaker percentage of one folder: its own entry (keyed by the folder's
    base name, as the checkpoint metadata records it) or the default."""
    name = os.path.basename(os.path.abspath(os.fspath(root)))
    return float((folder_holdout or {}).get(name, default))


def speaker_rank(speaker: str) -> float:
    """A fixed position in [0, 1) per speaker, independent of the validation hold-out:
    keeping the speakers below f gives nested subsets as f grows."""
    digest = hashlib.sha1(f"sparknet-hw speaker subset v1/{speaker}".encode()).hexdigest()
    return int(digest[:12], 16) / 16 ** 12


def class_balanced_order(labels: torch.Tensor, generator: torch.Generator,
                         unknown_weight: float = 1.0,
                         within_class: torch.Tensor | None = None) -> torch.Tensor:
    """One epoch's worth of indices (len(labels)), drawn with replacement so that every
    class present is equally likely: the test lists weigh the 12 classes about equally,
    the training folders do not (two real clips of `on` for every hundred of `yes`).
    `unknown_weight` draws `_unknown_` that many times as often as each other class: it
    stands for 25 words, each of the others for one. `within_class` (one factor per clip,
    averaging 1 over each class, as `unknown_word_factors` gives) moves draws between the
    clips of a class without changing the class's share."""
    counts = torch.bincount(labels, minlength=len(LABELS)).double()
    per_class = 1.0 / counts.clamp_min(1)
    per_class[LABELS.index("_unknown_")] *= unknown_weight
    weights = per_class[labels]
    if within_class is not None:
        weights = weights * within_class.double()
    return torch.multinomial(weights, len(labels), replacement=True, generator=generator)


def unknown_word_factors(mix: "DataMix") -> torch.Tensor:
    """Per clip, the factor that makes every word of `_unknown_` equally likely within its
    folder, each folder keeping its share of the class; 1 for the other classes.

    The real `_unknown_` clips are mostly bed, cat and happy (300 clips each in
    gsc-train) while the test lists draw from 25 words about equally; drawn clip by clip,
    three words take 70 % of the class."""
    unknown = LABELS.index("_unknown_")
    factors = torch.ones(len(mix.labels), dtype=torch.float64)
    by_source: dict[int, dict[str, list[int]]] = {}
    for j in (mix.labels == unknown).nonzero().flatten().tolist():
        path = mix.examples[j].path
        word = os.path.basename(os.path.dirname(path)) if path else ""
        by_source.setdefault(int(mix.source[j]), {}).setdefault(word, []).append(j)
    for words in by_source.values():
        clips = sum(map(len, words.values()))
        for members in words.values():
            factors[members] = clips / (len(words) * len(members))
    return factors


def source_factors(mix: "DataMix", weights: dict[str, float]) -> torch.Tensor:
    """Per clip, the factor that draws the clips of each folder named in `weights` (by
    base name) that many times as often as those of the other folders within the same
    class, every class keeping its share: the folder moves draws, not classes."""
    per_source = torch.tensor([float(weights.get(name, 1.0)) for name in mix.names],
                              dtype=torch.float64)
    factors = per_source[mix.source.long()]
    for label in mix.labels.unique().tolist():
        members = mix.labels == label
        factors[members] *= int(members.sum()) / float(factors[members].sum())
    return factors


def within_class_factors(mix: "DataMix", unknown_by_word: bool = False,
                         source_weight: dict[str, float] | None = None):
    """The `within_class` factors of a recipe's class-balanced draw, or None when the draw
    is clip by clip within each class."""
    factors = unknown_word_factors(mix) if unknown_by_word else None
    if source_weight:
        by_source = source_factors(mix, source_weight)
        factors = by_source if factors is None else factors * by_source
    return factors


def per_source_accuracy(mix: DataMix, predictions) -> dict[str, dict]:
    """{source: {"accuracy", "samples", "per_class": {label: accuracy or None}}}."""
    pred = np.asarray(predictions)
    y = mix.labels.numpy()
    src = mix.source.numpy()
    out = {}
    for i, name in enumerate(mix.names):
        m = src == i
        per_class = {}
        for k, label in enumerate(LABELS):
            mk = m & (y == k)
            per_class[label] = float((pred[mk] == k).mean()) if mk.any() else None
        out[name] = {"accuracy": float((pred[m] == y[m]).mean()) if m.any() else None,
                     "samples": int(m.sum()), "per_class": per_class}
    return out
