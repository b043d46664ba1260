"""Speech Commands loader, cached feature dataset, augmentation and the synthetic corpus."""
import json
import os
import shutil
from collections import Counter

import numpy as np
import pytest
import soundfile as sf
import torch

from sparknet_hw.audio import load_wav
from sparknet_hw.cli import main
from sparknet_hw.data.dataset import FeatureDataset, augment_batch
from sparknet_hw.data.labels import KEYWORDS, LABELS
from sparknet_hw.data.speech_commands import (DatasetError, Example, list_split, split_counts)
from sparknet_hw.errors import UserError
from sparknet_hw.features import mfcc

SILENCE, UNKNOWN = LABELS.index("_silence_"), LABELS.index("_unknown_")
OTHER_WORDS = ["cat", "dog", "tree"]


def _clip(rng, freq, n=16000):
    t = np.arange(n) / 16000
    x = 0.3 * np.sin(2 * np.pi * freq * t) + 0.02 * rng.standard_normal(n)
    return x.astype(np.float32)


def make_speech_commands(root, per_word=5, noise=True):
    """A tiny Speech-Commands-shaped folder: 1 validation and 1 test clip per word."""
    rng = np.random.default_rng(0)
    val, test = [], []
    for w, word in enumerate(KEYWORDS + OTHER_WORDS):
        os.makedirs(root / word)
        for i in range(per_word):
            rel = f"{word}/spk{i:02d}_nohash_0.wav"
            sf.write(str(root / rel), _clip(rng, 200 + 50 * w, 12000 + 400 * i), 16000,
                     subtype="PCM_16")
            if i == 0:
                val.append(rel)
            elif i == 1:
                test.append(rel)
    (root / "validation_list.txt").write_text("".join(r + "\n" for r in val))
    (root / "testing_list.txt").write_text("".join(r + "\n" for r in test))
    if noise:
        os.makedirs(root / "_background_noise_")
        for k in range(2):
            sf.write(str(root / "_background_noise_" / f"noise{k}.wav"),
                     (0.1 * rng.standard_normal(16000 * 5)).astype(np.float32), 16000,
                     subtype="PCM_16")
    return root


@pytest.fixture
def sc(tmp_path):
    return make_speech_commands(tmp_path / "sc")


# ------------------------------------------------------------------------------ loader

def test_splits_follow_the_lists_and_are_balanced(sc):
    train = list_split(sc, "train")
    val = list_split(sc, "validation")
    test = list_split(sc, "test")
    assert split_counts(train) == {name: 3 for name in LABELS}
    assert split_counts(val) == {name: 1 for name in LABELS}
    assert split_counts(test) == {name: 1 for name in LABELS}
    val_list = set((sc / "validation_list.txt").read_text().split())
    test_list = set((sc / "testing_list.txt").read_text().split())
    rel = lambda ex: os.path.relpath(ex.path, sc).replace(os.sep, "/")
    assert all(rel(ex) in val_list for ex in val if ex.label != SILENCE)
    assert all(rel(ex) in test_list for ex in test if ex.label != SILENCE)
    assert not any(rel(ex) in val_list | test_list for ex in train if ex.label != SILENCE)
    for ex in train + val + test:
        assert isinstance(ex, Example)
        if ex.label == UNKNOWN:
            assert rel(ex).split("/")[0] in OTHER_WORDS
        elif ex.label < 10:
            assert rel(ex).split("/")[0] == LABELS[ex.label]


def test_silence_comes_from_disjoint_noise_regions(sc):
    n = 16000 * 5
    regions = {"train": (0, 0.8 * n), "validation": (0.8 * n, 0.9 * n), "test": (0.9 * n, n)}
    for split, (lo, hi) in regions.items():
        sil = [ex for ex in list_split(sc, split) if ex.label == SILENCE]
        assert sil and all("_background_noise_" in ex.path for ex in sil)
        # segments start inside the split's region (short regions: at its start)
        assert all(lo <= ex.offset <= max(lo, hi - 16000) for ex in sil)


def test_balancing_is_deterministic_for_a_seed(sc):
    assert list_split(sc, "train", seed=3) == list_split(sc, "train", seed=3)
    picks = {tuple(ex for ex in list_split(sc, "train", seed=s) if ex.label in (UNKNOWN, SILENCE))
             for s in range(6)}
    assert len(picks) > 1


def test_no_background_noise_gives_zero_silence(tmp_path):
    root = make_speech_commands(tmp_path / "sc", noise=False)
    sil = [ex for ex in list_split(root, "train") if ex.label == SILENCE]
    assert len(sil) == 3 and all(ex.path is None for ex in sil)


def _break(root, how):
    if how == "missing folder":
        return root / "nope"
    if how == "file not folder":
        f = root / "file.txt"
        f.write_text("x")
        return f
    if how == "no words":
        empty = root / "empty"
        empty.mkdir()
        return empty
    if how == "missing keyword":
        shutil.rmtree(root / "sc" / "stop")
    if how == "missing list":
        os.remove(root / "sc" / "testing_list.txt")
    return root / "sc"


@pytest.mark.parametrize("how,words", [
    ("missing folder", "no such folder"), ("file not folder", "not a folder"),
    ("no words", "no word subfolders"), ("missing keyword", "stop"),
    ("missing list", "testing_list.txt")])
def test_bad_dataset_folder_raises_dataset_error(tmp_path, how, words):
    make_speech_commands(tmp_path / "sc")
    root = _break(tmp_path, how)
    with pytest.raises(DatasetError) as info:
        list_split(root, "train")
    msg = str(info.value)
    assert isinstance(info.value, UserError)
    assert str(root) in msg and words in msg and "expected" in msg and "\n" not in msg


def test_unknown_split_name(sc):
    with pytest.raises(DatasetError, match="split"):
        list_split(sc, "dev")


def test_cli_missing_dataset_is_one_line_error(tmp_path, capsys):
    assert main(["data", "stats", "--root", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "nope" in err and len(err.splitlines()) == 1


def test_cli_stats(sc, capsys):
    assert main(["data", "stats", "--root", str(sc)]) == 0
    out = capsys.readouterr().out
    assert "_silence_" in out and "total" in out


# ------------------------------------------------------------------------------ dataset

def test_feature_dataset_and_cache(sc):
    ds = FeatureDataset(sc, "train")
    assert len(ds) == 36 and not ds.from_cache
    x, y = ds[0]
    assert x.shape == (32, 101) and x.dtype == torch.float32 and isinstance(y, int)
    assert ds.labels.tolist() == [ex.label for ex in ds.examples]
    assert ds.waveforms.shape == (36, 16000) and ds.waveforms.dtype == torch.float32
    # cached features are the MFCC of the loaded clip
    ex = ds.examples[0]
    np.testing.assert_allclose(ds.features[0].numpy(), mfcc(load_wav(ex.path)), atol=5e-2)
    np.testing.assert_allclose(ds.waveforms[0].numpy(), load_wav(ex.path), atol=1e-4)
    assert os.path.isfile(sc / ".cache" / "train-seed0.npz")

    again = FeatureDataset(sc, "train")
    assert again.from_cache
    torch.testing.assert_close(again.features, ds.features)
    torch.testing.assert_close(again.wave_batch([1, 2]), ds.waveforms[[1, 2]])

    # a new clip changes the file list: the cache is rebuilt
    sf.write(str(sc / "yes" / "new_nohash_0.wav"), np.full(8000, 0.1, np.float32), 16000)
    rebuilt = FeatureDataset(sc, "train")
    assert not rebuilt.from_cache and len(rebuilt) > len(ds)


def test_augmented_items_and_noise_bank(sc):
    ds = FeatureDataset(sc, "validation", augment=True, seed=1, cache=False)
    x, _ = ds[0]
    assert x.shape == (32, 101)
    bank = ds.noise_bank
    assert bank.ndim == 2 and bank.shape[1] == 16000 and len(bank) >= 2


def test_augment_batch_recipe():
    waves = torch.zeros(64, 16000)
    waves[:, 8000] = 1.0
    a = augment_batch(waves, torch.Generator().manual_seed(5))
    b = augment_batch(waves, torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b)
    assert waves[:, 8000].eq(1).all()          # input untouched

    shifted = augment_batch(waves, torch.Generator().manual_seed(0), p_shift=1.0, p_noise=0.0)
    pos = shifted.argmax(dim=1) - 8000
    assert pos.abs().max() <= 1600 and (pos != 0).float().mean() > 0.9
    assert torch.allclose(shifted.sum(dim=1), torch.ones(64))   # a pure shift, zero fill

    noisy = augment_batch(torch.zeros(400, 16000), torch.Generator().manual_seed(0),
                          p_shift=0.0, p_noise=1.0)
    db = 20 * torch.log10(noisy.std(dim=1))
    assert db.min() > -90.5 and db.max() < -45.5

    some = augment_batch(torch.zeros(600, 16000), torch.Generator().manual_seed(0))
    assert 0.72 < (some.abs().sum(dim=1) > 0).float().mean() < 0.88   # p 0.8


def test_augment_batch_background():
    waves = torch.randn(8, 16000) * 0.1
    bank = torch.randn(3, 16000)
    out = augment_batch(waves, torch.Generator().manual_seed(0), p_shift=0.0, p_noise=0.0,
                        background=bank, p_background=1.0, snr_db=(10.0, 10.0))
    added = out - waves
    snr = 20 * torch.log10(waves.std(dim=1) / added.std(dim=1))
    assert torch.allclose(snr, torch.full((8,), 10.0), atol=0.2)


# ------------------------------------------------------------------------------ synth

needs_tools = pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")
                                      and shutil.which("flite")),
                                 reason="espeak-ng, flite and sox are needed")


def _tree(root):
    out = {}
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".cache"]
        for f in files:
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = fh.read()
    return out


@needs_tools
def test_synth_layout_and_determinism(tmp_path):
    from sparknet_hw.data.synth import synthesize

    a = synthesize(tmp_path / "a", per_class=3, seed=11, jobs=2, progress=False,
                   engines=("espeak", "flite"))
    synthesize(tmp_path / "b", per_class=3, seed=11, jobs=1, progress=False,
               engines=("espeak", "flite"))
    ta, tb = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert ta == tb                                   # same seed: byte-identical corpus

    root = tmp_path / "a"
    assert a["clips"] == 33 and a["split_sizes"] == {"train": 1, "validation": 1, "test": 1}
    for word in KEYWORDS:
        assert len(os.listdir(root / word)) == 3
    assert (root / "validation_list.txt").is_file() and (root / "testing_list.txt").is_file()
    assert len(os.listdir(root / "_background_noise_")) >= 3
    manifest = json.loads((root / "corpus.json").read_text())
    assert manifest["seed"] == 11 and manifest["per_class"] == 3
    voices = manifest["voices"]
    flat = {s: {v for vs in voices[s].values() for v in vs} for s in voices}
    assert not flat["train"] & flat["test"] and not flat["train"] & flat["validation"]
    for rel in [r for r in ta if r.endswith(".wav") and not r.startswith("_")]:
        info = sf.info(str(root / rel))
        assert (info.samplerate, info.channels, info.frames, info.subtype) == \
            (16000, 1, 16000, "PCM_16")
    for split in ("train", "validation", "test"):
        assert split_counts(list_split(root, split)) == {name: 1 for name in LABELS}
        for ex in list_split(root, split):      # every speaker hash maps back to its voice
            if ex.path and "_background_noise_" not in ex.path:
                spk = os.path.basename(ex.path).split("_nohash_")[0]
                assert manifest["speakers"][spk] in flat[split]

    from sparknet_hw.checkpoint import shipped_checkpoint
    from sparknet_hw.evaluate import evaluate_checkpoint
    result = evaluate_checkpoint(shipped_checkpoint(4, "float"), root, "test")
    groups = result["per_voice"]
    assert sum(g["samples"] for g in groups.values()) == result["samples"] == 12
    assert "noise (_silence_)" in groups and any(k.startswith("flite:") for k in groups)
    correct = sum(round(g["accuracy"] * g["samples"]) for g in groups.values())
    assert correct == round(result["accuracy"] * result["samples"])

    c = synthesize(tmp_path / "c", per_class=3, seed=12, jobs=2, progress=False,
                   engines=("espeak", "flite"))
    assert c["clips"] == 33 and _tree(tmp_path / "c") != ta


@needs_tools
@pytest.mark.skipif(not shutil.which("text2wave"), reason="festival is needed")
def test_cli_synth_all_engines_and_refuses_non_empty(tmp_path, capsys):
    out = tmp_path / "corpus"
    cmd = ["data", "synth", "--out", str(out), "--per-class", "3", "--seed", "2", "--quiet"]
    assert main(cmd) == 0
    assert "wrote 33 clips" in capsys.readouterr().out
    assert json.loads((out / "corpus.json").read_text())["engines"] == \
        ["espeak", "flite", "festival"]

    assert main(cmd) == 2
    err = capsys.readouterr().err.strip()
    assert "not empty" in err and len(err.splitlines()) == 1

    (out / "stop" / "stale_nohash_0.wav").write_bytes(b"old")
    (out / "keep.txt").write_text("user file")
    assert main(cmd + ["--force", "--engines", "espeak"]) == 0
    assert not (out / "stop" / "stale_nohash_0.wav").exists() and (out / "keep.txt").exists()
    assert split_counts(list_split(out, "test")) == {name: 1 for name in LABELS}


def test_synth_rejects_tiny_per_class(tmp_path):
    from sparknet_hw.data.synth import synthesize

    with pytest.raises(UserError, match="at least 3"):
        synthesize(tmp_path / "x", per_class=2, progress=False)


def test_plan_unknown_per_class_only_appends_unknown_clips():
    from sparknet_hw.data.synth import UNKNOWN_WORDS, plan, split_sizes

    base, more = plan(20, 5), plan(20, 5, unknown_per_class=200)
    keyword = [c for c in base if c["label"] != "_unknown_"]
    assert keyword and keyword == [c for c in more if c["label"] != "_unknown_"]
    for split, n in split_sizes(200).items():
        small = [c for c in base if c["label"] == "_unknown_" and c["split"] == split]
        large = [c for c in more if c["label"] == "_unknown_" and c["split"] == split]
        assert len(small) == split_sizes(20)[split] and len(large) == n
        assert large[:len(small)] == small
    train_words = Counter(c["word"] for c in more
                          if c["label"] == "_unknown_" and c["split"] == "train")
    assert set(train_words) == set(UNKNOWN_WORDS)         # 140 clips over 45 words
    assert max(train_words.values()) - min(train_words.values()) <= 1
    with pytest.raises(UserError, match="--unknown-per-class 2 is too small"):
        plan(20, 5, unknown_per_class=2)
