"""Real-speech data paths: a folder shaped exactly like the Speech Commands v0.02 download
(WAV and FLAC), folders split by held-out speaker, `_silence_clips/`, the read-only
feature cache, speed change / SpecAugment, class balancing and digital-silence examples.

Every folder here is built by the test from synthetic audio; the only real data used is
../shared/data (skipped when absent), which is only listed, never read or written.
"""
import hashlib
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from sparknet_hw.data.dataset import FeatureDataset, cache_folder, change_speed, spec_augment
from sparknet_hw.data.labels import KEYWORDS, LABELS, SILENCE, UNKNOWN
from sparknet_hw.data.mixture import DataMix, class_balanced_order, per_source_accuracy
from sparknet_hw.data.speech_commands import (NOISE_REGIONS, DatasetError, is_holdout_speaker,
                                              list_split, scan, split_mode)
from sparknet_hw.errors import UserError

RATE = 16000
OTHER_WORDS = ["bed", "bird"]
NOISE_SECONDS = 10
REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


# ------------------------------------------------------------------------------ helpers

def _hex8(*parts) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()[:8]


def _tone(rng, freq, n=RATE):
    t = np.arange(n) / RATE
    return (0.3 * np.sin(2 * np.pi * freq * t) + 0.02 * rng.standard_normal(n)).astype(np.float32)


def _write(path, data, ext):
    # int16 samples, so that the WAV and FLAC writers store exactly the same values
    # (libsndfile's float -> 16-bit conversion differs by 1 LSB between the two formats)
    pcm = np.round(np.clip(data, -1, 1) * 32767).astype(np.int16)
    if ext == ".flac":
        sf.write(str(path), pcm, RATE, format="FLAC", subtype="PCM_16")
    else:
        sf.write(str(path), pcm, RATE, subtype="PCM_16")


def make_gsc_v2(root: Path, ext: str = ".wav") -> Path:
    """A miniature of the Speech Commands v0.02 download.

    Per word folder four clips `<8-hex>_nohash_<n><ext>`: one validation speaker, one test
    speaker and one training speaker with two takes (_nohash_0, _nohash_1), as the real
    lists keep speakers apart.  validation_list.txt / testing_list.txt name `.wav` files
    whatever `ext` is (as a FLAC copy of the real lists would).  `_background_noise_/`
    holds two 10-s noise recordings and the README.md the download has there; the root
    has LICENSE and README.md files.  Audio content depends only on the layout, so the
    WAV and FLAC versions carry the same samples.
    """
    rng = np.random.default_rng(7)
    root.mkdir(parents=True)
    val, test = [], []
    for w, word in enumerate(KEYWORDS + OTHER_WORDS):
        (root / word).mkdir()
        takes = [(_hex8(word, "val"), 0), (_hex8(word, "test"), 0),
                 (_hex8(word, "train"), 0), (_hex8(word, "train"), 1)]
        for i, (spk, n) in enumerate(takes):
            stem = f"{word}/{spk}_nohash_{n}"
            _write(root / (stem + ext), _tone(rng, 180 + 60 * w + 7 * i), ext)
            if i == 0:
                val.append(stem + ".wav")
            elif i == 1:
                test.append(stem + ".wav")
    (root / "validation_list.txt").write_text("".join(r + "\n" for r in sorted(val)))
    (root / "testing_list.txt").write_text("".join(r + "\n" for r in sorted(test)))
    (root / "LICENSE").write_text("CC-BY 4.0\n")
    (root / "README.md").write_text("Speech Commands v0.02 (synthetic stand-in)\n")
    noise = root / "_background_noise_"
    noise.mkdir()
    (noise / "README.md").write_text("The files in this folder are long noise recordings.\n")
    for name in ("white_noise", "pink_noise"):
        _write(noise / (name + ext),
               (0.2 * rng.standard_normal(RATE * NOISE_SECONDS)).astype(np.float32), ext)
    return root


def make_speaker_folder(root: Path, n_speakers: int = 120, silence_clips=(),
                        noise: bool = False) -> Path:
    """A folder without split lists (like shared/data/gsc-*): speaker i says keyword i % 10
    (every third speaker twice), every other speaker also says an other word; short clips
    (list_split only needs the names).  `silence_clips`: file names for `_silence_clips/`."""
    rng = np.random.default_rng(3)
    root.mkdir(parents=True)
    for word in KEYWORDS + OTHER_WORDS:
        (root / word).mkdir()
    for i in range(n_speakers):
        spk = _hex8("speaker", i)
        word = KEYWORDS[i % len(KEYWORDS)]
        for n in range(2 if i % 3 == 0 else 1):
            _write(root / word / f"{spk}_nohash_{n}.flac", _tone(rng, 300 + i, 4000), ".flac")
        if i % 2 == 0:
            other = OTHER_WORDS[(i // 2) % len(OTHER_WORDS)]
            _write(root / other / f"{spk}_nohash_0.flac", _tone(rng, 900 + i, 4000), ".flac")
    if silence_clips:
        (root / "_silence_clips").mkdir()
        for name in silence_clips:
            _write(root / "_silence_clips" / name,
                   (0.05 * rng.standard_normal(RATE)).astype(np.float32), ".flac")
    if noise:
        (root / "_background_noise_").mkdir()
        _write(root / "_background_noise_" / "white_noise.flac",
               (0.2 * rng.standard_normal(RATE * NOISE_SECONDS)).astype(np.float32), ".flac")
    return root


def _rel(ex, root) -> str:
    return os.path.relpath(ex.path, root).replace(os.sep, "/")


def _speaker(path) -> str:
    # parsed here independently of speech_commands.speaker_of
    return os.path.basename(path).split("_nohash_")[0]


def _clips_on_disk(root, words) -> set[str]:
    return {f"{w}/{f}" for w in words for f in os.listdir(root / w)}


def _tree(root) -> dict:
    """Every file and folder under root with size and modification time."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            st = os.stat(p)
            out[os.path.relpath(p, root)] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def gsc(tmp_path_factory):
    return make_gsc_v2(tmp_path_factory.mktemp("wav") / "speech_commands_v0.02")


# ------------------------------------------------------------------------------ 1. v0.02 layout

def test_v2_layout_splits_follow_the_lists_exactly(gsc):
    info = scan(gsc)
    assert info["mode"] == "lists" and split_mode(gsc) == "lists"
    # README.md inside _background_noise_ is not a noise recording
    assert sorted(os.path.basename(p) for p in info["noise"]) == ["pink_noise.wav",
                                                                  "white_noise.wav"]
    listed = {s: set((gsc / f).read_text().split())
              for s, f in (("validation", "validation_list.txt"), ("test", "testing_list.txt"))}
    all_clips = _clips_on_disk(gsc, KEYWORDS + OTHER_WORDS)
    listed["train"] = all_clips - listed["validation"] - listed["test"]

    for split in ("train", "validation", "test"):
        examples = list_split(gsc, split)
        kw = {_rel(ex, gsc) for ex in examples if ex.label < len(KEYWORDS)}
        # every keyword clip of the split, and nothing else
        assert kw == {r for r in listed[split] if r.split("/")[0] in KEYWORDS}
        for ex in examples:
            if ex.label < len(KEYWORDS):
                assert _rel(ex, gsc).split("/")[0] == LABELS[ex.label]
        unknown = [_rel(ex, gsc) for ex in examples if ex.label == UNKNOWN]
        others = [r for r in listed[split] if r.split("/")[0] in OTHER_WORDS]
        target = round(len(kw) / len(KEYWORDS))
        assert set(unknown) <= set(others) and len(set(unknown)) == len(unknown)
        assert len(unknown) == min(target, len(others))
        silence = [ex for ex in examples if ex.label == SILENCE]
        assert len(silence) == target

    # test split: _silence_ cut from the last 10 % of the noise recordings
    test = list_split(gsc, "test")
    silence = [ex for ex in test if ex.label == SILENCE]
    assert silence
    lo, hi = NOISE_REGIONS["test"]
    n = RATE * NOISE_SECONDS
    for ex in silence:
        assert Path(ex.path).parent.name == "_background_noise_" and ex.path.endswith(".wav")
        assert lo * n <= ex.offset and ex.offset + RATE <= hi * n


def test_v2_layout_trains_and_evaluates(gsc, tmp_path):
    from sparknet_hw.checkpoint import load_checkpoint
    from sparknet_hw.evaluate import evaluate_checkpoint
    from sparknet_hw.train import Recipe, train

    out = tmp_path / "c4.pt"
    logs = []
    summary = train(4, [gsc], out, Recipe(epochs=1, batch_size=16), progress=False,
                    log=logs.append)
    assert out.is_file() and summary["epochs"] == 1

    meta = load_checkpoint(out, kind="float", C=4)["meta"]
    assert "commit" in meta
    assert meta["commit"] is None or isinstance(meta["commit"], str) and len(meta["commit"]) >= 40
    assert meta["data"] == [str(gsc)]
    for split in ("train", "validation"):
        (row,) = meta["sources"][split]
        assert row["path"] == str(gsc) and row["mode"] == "lists" and not row["synthetic"]
        assert row["clips"] == len(list_split(gsc, split, seed=Recipe().seed))
    assert meta["validation_speakers"] == {}          # a folder with lists holds out none

    result = evaluate_checkpoint(out, gsc, "test")
    assert result["split"] == "test"
    assert result["samples"] == len(list_split(gsc, "test"))
    assert result["per_class"]["_silence_"] is not None
    assert set(result["per_class"]) == set(LABELS)


# ------------------------------------------------------------------------------ 2. FLAC

def test_flac_copy_with_wav_lists_finds_the_same_clips(gsc, tmp_path):
    flac = make_gsc_v2(tmp_path / "flac" / "speech_commands_v0.02", ext=".flac")
    assert not list((flac / "yes").glob("*.wav"))
    assert split_mode(flac) == "lists"
    as_wav = lambda ex: (None if ex.path is None else
                         os.path.splitext(_rel(ex, flac))[0] + ".wav")
    for split in ("train", "validation", "test"):
        a = [(_rel(ex, gsc), ex.label, ex.offset) for ex in list_split(gsc, split)]
        b = [(as_wav(ex), ex.label, ex.offset) for ex in list_split(flac, split)]
        assert b == a, split

    # the FLAC clips decode to the same samples, and a mix reports each folder on its own
    other = tmp_path / "flac2" / gsc.name            # same base name: numbered
    other.parent.mkdir()
    os.rename(flac, other)
    mix = DataMix([gsc, other], "validation", cache=False)
    assert mix.names == [gsc.name, f"{gsc.name}-2"]
    half = len(mix.parts[0])
    assert len(mix.parts[1]) == half
    torch.testing.assert_close(mix._waves16[:half], mix._waves16[half:], rtol=0, atol=0)
    y = mix.labels.numpy()
    preds = np.where(mix.source.numpy() == 0, y, (y + 1) % len(LABELS))
    acc = per_source_accuracy(mix, preds)
    assert acc[mix.names[0]]["accuracy"] == 1.0 and acc[mix.names[1]]["accuracy"] == 0.0
    assert acc[mix.names[0]]["samples"] == acc[mix.names[1]]["samples"] == half
    present = set(y[:half].tolist())
    for k, label in enumerate(LABELS):
        expect = 1.0 if k in present else None
        assert acc[mix.names[0]]["per_class"][label] == expect


# ------------------------------------------------------------------------------ 3. speakers

@pytest.fixture(scope="module")
def by_speaker(tmp_path_factory):
    return make_speaker_folder(tmp_path_factory.mktemp("spk") / "gsc-like")


def test_folder_without_lists_is_split_by_speaker(by_speaker):
    root = by_speaker
    assert split_mode(root) == "speakers"
    train, val = list_split(root, "train"), list_split(root, "validation")
    spk_train = {_speaker(ex.path) for ex in train if ex.path}
    spk_val = {_speaker(ex.path) for ex in val if ex.path}
    assert spk_val and spk_train and not spk_train & spk_val

    # every keyword clip exactly once, under its word's label
    kw = [_rel(ex, root) for ex in train + val if ex.label < len(KEYWORDS)]
    assert len(kw) == len(set(kw)) and set(kw) == _clips_on_disk(root, KEYWORDS)
    for ex in train + val:
        if ex.label < len(KEYWORDS):
            assert _rel(ex, root).split("/")[0] == LABELS[ex.label]
    # a folder split by speaker keeps all its other-word clips as _unknown_
    unk = [_rel(ex, root) for ex in train + val if ex.label == UNKNOWN]
    assert len(unk) == len(set(unk)) and set(unk) == _clips_on_disk(root, OTHER_WORDS)
    # no noise and no _silence_clips: no invented (all-zero) silence in speaker mode
    assert not [ex for ex in train + val if ex.label == SILENCE]

    # deterministic, and independent of the balancing seed
    assert list_split(root, "train") == train and list_split(root, "validation") == val
    assert {_rel(ex, root) for ex in list_split(root, "validation", seed=5)} == \
        {_rel(ex, root) for ex in val}


def test_holdout_share_of_speakers_matches_the_percentage():
    rng = np.random.default_rng(0)
    names = {f"{v:08x}" for v in rng.integers(0, 2 ** 32, 20000)}
    n = len(names)
    for holdout in (5, 15, 40):
        p = holdout / 100
        held = sum(is_holdout_speaker(s, holdout) for s in names)
        sd = (n * p * (1 - p)) ** 0.5
        assert abs(held - n * p) < 5 * sd, holdout
    assert not any(is_holdout_speaker(s, 0) for s in names)


def test_holdout_zero_and_monotone(by_speaker):
    root = by_speaker
    assert list_split(root, "validation", holdout=0) == []
    everything = _clips_on_disk(root, KEYWORDS)
    assert {_rel(ex, root) for ex in list_split(root, "train", holdout=0)
            if ex.label < len(KEYWORDS)} == everything

    previous = set()
    sizes = []
    for holdout in (0, 1, 5, 15, 30, 50, 80, 99):
        val = {_speaker(ex.path) for ex in list_split(root, "validation", holdout=holdout)}
        train = {_speaker(ex.path) for ex in list_split(root, "train", holdout=holdout)}
        assert previous <= val, holdout              # raising the holdout only adds speakers
        assert not val & train
        previous = val
        sizes.append(len(val))
    assert sizes[0] == 0 and sizes[-1] > sizes[3] > 0


def test_holdout_per_folder(tmp_path, monkeypatch):
    """`train --holdout 20 --holdout b=0`: folder b trains on all its speakers, folder a
    holds out 20 %; the checkpoint's recipe gives each folder its own share back."""
    import argparse

    from sparknet_hw.commands.train import holdout_settings, parse_holdout
    from sparknet_hw.evaluate import checkpoint_holdout

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    a = make_speaker_folder(tmp_path / "a", n_speakers=40)
    b = make_speaker_folder(tmp_path / "b", n_speakers=40)
    default, folders = holdout_settings([parse_holdout("20"), parse_holdout(f"{b}=0")])
    assert (default, folders) == (20.0, {"b": 0.0})
    with pytest.raises(argparse.ArgumentTypeError, match="0 <= holdout < 100"):
        parse_holdout("b=100")
    with pytest.raises(argparse.ArgumentTypeError, match="PERCENT or FOLDER=PERCENT"):
        parse_holdout("b=x")

    train = DataMix([a, b], "train", holdout=default, folder_holdout=folders)
    val = DataMix([a, b], "validation", holdout=default, folder_holdout=folders)
    assert [r["holdout_percent"] for r in val.describe()] == [20.0, 0.0]
    assert val.speakers(0) and not val.speakers(1)
    assert set(train.speakers(1)) == {_speaker(p) for w in KEYWORDS + OTHER_WORDS
                                      for p in os.listdir(b / w)}
    assert set(val.speakers(0)) == {_speaker(ex.path) for ex in
                                    list_split(a, "validation", holdout=20)}
    payload = {"meta": {"recipe": {"holdout": 20.0, "folder_holdout": {"b": 0.0}}}}
    assert checkpoint_holdout(payload, a) == 20.0 and checkpoint_holdout(payload, b) == 0.0


def test_speaker_folder_has_no_test_split(by_speaker, tmp_path):
    with pytest.raises(DatasetError) as info:
        list_split(by_speaker, "test")
    assert isinstance(info.value, UserError) and "validation" in str(info.value)

    # gsc-dev style: empty validation list, testing list naming every clip -> by speaker too
    root = make_speaker_folder(tmp_path / "dev", n_speakers=30)
    (root / "validation_list.txt").write_text("")
    (root / "testing_list.txt").write_text(
        "".join(r + "\n" for r in sorted(_clips_on_disk(root, KEYWORDS + OTHER_WORDS))))
    assert split_mode(root) == "speakers"
    assert {_rel(ex, root) for ex in list_split(root, "train") + list_split(root, "validation")
            if ex.label < len(KEYWORDS)} == _clips_on_disk(root, KEYWORDS)
    with pytest.raises(DatasetError, match="validation"):
        list_split(root, "test")


@pytest.mark.parametrize("present,missing", [("validation_list.txt", "testing_list.txt"),
                                             ("testing_list.txt", "validation_list.txt")])
def test_only_one_split_list_names_the_missing_one(tmp_path, present, missing):
    root = make_speaker_folder(tmp_path / "half", n_speakers=20)
    (root / present).write_text(f"yes/{_hex8('speaker', 0)}_nohash_0.wav\n")
    with pytest.raises(DatasetError) as info:
        list_split(root, "train")
    # (the generic advice at the end of the message names both lists: look at the start)
    msg = str(info.value)
    assert isinstance(info.value, UserError)
    assert msg.startswith(f"{root}: no {missing}") and f"no {present}" not in msg
    with pytest.raises(DatasetError, match=f"no {missing}"):
        split_mode(root)


@pytest.mark.parametrize("name", ["gsc-dev", "gsc-train"])
def test_real_folder_split_by_speaker(name):
    root = REAL_DATA / name
    if not root.is_dir():
        pytest.skip(f"../shared/data not present: no {root}")
    assert split_mode(root) == "speakers"
    train, val = list_split(root, "train"), list_split(root, "validation")
    spk_train = {_speaker(ex.path) for ex in train if ex.path and "_nohash_" in ex.path}
    spk_val = {_speaker(ex.path) for ex in val if ex.path and "_nohash_" in ex.path}
    assert spk_train and spk_val and not spk_train & spk_val
    # roughly the default 15 % of the speakers are held out (5 binomial sd)
    n, p = len(spk_train | spk_val), 0.15
    assert abs(len(spk_val) - n * p) < 5 * (n * p * (1 - p)) ** 0.5
    with pytest.raises(DatasetError, match="validation"):
        list_split(root, "test")


# ------------------------------------------------------------------------------ 4. silence clips

def test_silence_clips_are_silence_split_by_file_name(tmp_path):
    names = [f"{1000 + 7 * k}.flac" for k in range(12)]
    root = make_speaker_folder(tmp_path / "sil", n_speakers=200, silence_clips=names)
    train, val = list_split(root, "train"), list_split(root, "validation")
    # the documented rule: a clip's file stem is its "speaker" for the held-out-speaker hash
    side = {n: "validation" if is_holdout_speaker(os.path.splitext(n)[0]) else "train"
            for n in names}
    assert set(side.values()) == {"train", "validation"}      # the names cover both sides
    seen = {}
    for split, examples in (("train", train), ("validation", val)):
        sil = [ex for ex in examples if ex.label == SILENCE]
        assert all(Path(ex.path).parent.name == "_silence_clips" and ex.offset == 0
                   for ex in sil)
        target = round(sum(ex.label < len(KEYWORDS) for ex in examples) / len(KEYWORDS))
        mine = [n for n in names if side[n] == split]
        # a folder split by speaker keeps every silence clip of its side (real ones are
        # scarce), topped up from noise to the keyword average when it has noise
        assert len(sil) == len(mine) > 0 and target > 0
        for ex in sil:
            name = os.path.basename(ex.path)
            assert name not in seen and side[name] == split
            seen[name] = split

    # the side depends on the file name alone: the same names in another folder agree
    other = make_speaker_folder(tmp_path / "sil2", n_speakers=200, silence_clips=names)
    for ex in list_split(other, "validation"):
        if ex.label == SILENCE:
            assert seen[os.path.basename(ex.path)] == "validation"

    # they load as the clip itself (peak-normalised, not cut from a noise recording)
    ds = FeatureDataset(root, "validation", cache=False)
    from sparknet_hw.audio import load_wav
    for i, ex in enumerate(ds.examples):
        if ex.label == SILENCE:
            np.testing.assert_allclose(ds.waveforms[i].numpy(), load_wav(ex.path), atol=1e-4)


def test_silence_clips_are_topped_up_from_noise(tmp_path):
    root = make_speaker_folder(tmp_path / "top", n_speakers=200, silence_clips=["1024.flac"],
                               noise=True)
    train = list_split(root, "train")
    target = round(sum(ex.label < len(KEYWORDS) for ex in train) / len(KEYWORDS))
    sil = [ex for ex in train if ex.label == SILENCE]
    assert len(sil) == target > 1
    clips = [ex for ex in sil if Path(ex.path).parent.name == "_silence_clips"]
    noise = [ex for ex in sil if Path(ex.path).parent.name == "_background_noise_"]
    assert len(clips) + len(noise) == target and noise
    assert sil[:len(clips)] == clips                   # the real clips come first
    n = RATE * NOISE_SECONDS
    lo, hi = NOISE_REGIONS["train"]
    assert all(lo * n <= ex.offset and ex.offset + RATE <= hi * n for ex in noise)


# ------------------------------------------------------------------------------ 5. speed, SpecAugment

def test_change_speed_factor_one_is_identity():
    x = torch.rand(3, RATE, generator=torch.Generator().manual_seed(0)) + 0.5
    y = change_speed(x, torch.ones(3))
    torch.testing.assert_close(y, x)


def test_change_speed_factor_two_samples_the_ramp_about_the_centre():
    n = RATE
    ramp = torch.arange(n, dtype=torch.float32)          # value = sample index
    waves = torch.stack([ramp, ramp])
    out = change_speed(waves, torch.tensor([2.0, 1.0]))
    centre = (n - 1) / 2
    pos = centre + (torch.arange(n, dtype=torch.float64) - centre) * 2
    inside = (pos >= 0) & (pos <= n - 1)
    expected = torch.where(inside, pos, torch.zeros_like(pos)).float()
    # linear interpolation of a ramp is exact: off by a tenth of a sample fails
    torch.testing.assert_close(out[0], expected, atol=0.1, rtol=0)
    assert int(inside.sum()) == pytest.approx(n / 2, abs=2)   # twice as fast: half the clip
    assert out[0][~inside].eq(0).all()
    # the other row of the batch used its own factor (1: the ramp itself, ends included)
    torch.testing.assert_close(out[1], ramp)


def _runs(mask_1d: torch.Tensor) -> list[int]:
    """Lengths of the runs of True."""
    runs, length = [], 0
    for v in mask_1d.tolist() + [False]:
        if v:
            length += 1
        elif length:
            runs.append(length)
            length = 0
    return runs


def test_spec_augment_masks_whole_frames_and_coefficients():
    b, f, t = 64, 32, 101
    x = torch.rand(b, f, t, generator=torch.Generator().manual_seed(1)) + 0.5   # no zeros
    same = spec_augment(x, torch.Generator().manual_seed(2), time_width=0, freq_width=0)
    assert torch.equal(same, x)

    settings = dict(time_masks=2, time_width=10, freq_masks=2, freq_width=4)
    out = spec_augment(x, torch.Generator().manual_seed(3), **settings)
    torch.testing.assert_close(out, spec_augment(x, torch.Generator().manual_seed(3), **settings),
                               rtol=0, atol=0)
    assert not torch.equal(out, spec_augment(x, torch.Generator().manual_seed(4), **settings))

    zero = out == 0
    rows = zero.all(dim=2)        # [b, f] coefficients zeroed over every frame
    cols = zero.all(dim=1)        # [b, t] frames zeroed over every coefficient
    assert torch.equal(zero, rows.unsqueeze(2) | cols.unsqueeze(1))   # nothing partial
    assert torch.equal(out[~zero], x[~zero])                           # the rest untouched
    for i in range(b):
        time_runs, freq_runs = _runs(cols[i]), _runs(rows[i])
        assert len(time_runs) <= settings["time_masks"]
        assert sum(time_runs) <= settings["time_masks"] * settings["time_width"]
        assert len(freq_runs) <= settings["freq_masks"]
        assert sum(freq_runs) <= settings["freq_masks"] * settings["freq_width"]
    assert cols.any(dim=1).float().mean() > 0.5 and rows.any(dim=1).float().mean() > 0.5


# ------------------------------------------------------------------------------ 6. balancing

def test_class_balanced_order_draws_classes_uniformly():
    sizes = {0: 3000, 3: 600, 5: 100, 7: 20, 10: 5, 11: 2}
    labels = torch.cat([torch.full((m,), k, dtype=torch.long) for k, m in sizes.items()])
    labels = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))]
    order = class_balanced_order(labels, torch.Generator().manual_seed(1))
    assert len(order) == len(labels)
    assert int(order.min()) >= 0 and int(order.max()) < len(labels)
    drawn = torch.bincount(labels[order], minlength=len(LABELS))
    n, k = len(labels), len(sizes)
    p = 1 / k
    sd = (n * p * (1 - p)) ** 0.5
    for c in range(len(LABELS)):
        if c in sizes:
            assert abs(int(drawn[c]) - n * p) < 5 * sd, (c, drawn.tolist())
        else:
            assert drawn[c] == 0
    again = class_balanced_order(labels, torch.Generator().manual_seed(1))
    assert torch.equal(order, again)


def test_class_balanced_order_weighs_unknown():
    unknown = LABELS.index("_unknown_")
    sizes = {0: 3000, 3: 600, unknown: 100}
    labels = torch.cat([torch.full((m,), k, dtype=torch.long) for k, m in sizes.items()])
    order = class_balanced_order(labels, torch.Generator().manual_seed(2), unknown_weight=2.0)
    drawn = torch.bincount(labels[order], minlength=len(LABELS))
    n = len(labels)
    p = 2 / 4  # _unknown_ counts twice among three classes
    sd = (n * p * (1 - p)) ** 0.5
    assert abs(int(drawn[unknown]) - n * p) < 5 * sd, drawn.tolist()
    assert abs(int(drawn[0]) - n / 4) < 5 * sd and abs(int(drawn[3]) - n / 4) < 5 * sd


def _unknown_mix(words_per_source):
    """A stand-in for DataMix: keyword `yes` clips plus `_unknown_` clips laid out as
    {source: {word: clips}}, with the attributes unknown_word_factors reads."""
    from types import SimpleNamespace
    from sparknet_hw.data.speech_commands import Example
    unknown, yes = LABELS.index("_unknown_"), LABELS.index("yes")
    examples, source = [], []
    for s, words in words_per_source.items():
        for n in range(50):
            examples.append(Example(f"/d{s}/yes/{n:04d}_nohash_0.wav", yes))
            source.append(s)
        for word, count in words.items():
            for n in range(count):
                examples.append(Example(f"/d{s}/{word}/{n:04d}_nohash_0.wav", unknown))
                source.append(s)
    return SimpleNamespace(examples=examples, source=torch.tensor(source),
                           labels=torch.tensor([e.label for e in examples]))


def test_unknown_word_factors_level_words_within_each_folder():
    from sparknet_hw.data.mixture import unknown_word_factors
    layout = {0: {"bed": 300, "cat": 300, "bird": 10, "dog": 5}, 1: {"tree": 12, "wow": 4}}
    mix = _unknown_mix(layout)
    f = unknown_word_factors(mix)
    unknown = mix.labels == LABELS.index("_unknown_")
    assert torch.all(f[~unknown] == 1)
    words = [os.path.basename(os.path.dirname(e.path)) for e in mix.examples]
    for s, per_word in layout.items():
        in_source = unknown & (mix.source == s)
        total = float(f[in_source].sum())
        # the folder keeps its clip count as its mass, shared equally by its words
        assert total == pytest.approx(sum(per_word.values()))
        for word in per_word:
            rows = [j for j in range(len(words)) if words[j] == word and bool(in_source[j])]
            assert float(f[rows].sum()) == pytest.approx(total / len(per_word))


def test_class_balanced_order_by_word_keeps_the_class_share():
    from sparknet_hw.data.mixture import unknown_word_factors
    mix = _unknown_mix({0: {"bed": 900, "bird": 30, "dog": 30}})
    gen = torch.Generator().manual_seed(3)
    order = class_balanced_order(mix.labels, gen, within_class=unknown_word_factors(mix))
    n = len(order)
    drawn = torch.bincount(mix.labels[order], minlength=len(LABELS))
    sd = (n * 0.25) ** 0.5
    assert abs(int(drawn[LABELS.index("_unknown_")]) - n / 2) < 5 * sd, drawn.tolist()
    words = [os.path.basename(os.path.dirname(mix.examples[j].path)) for j in order.tolist()]
    counts = {w: words.count(w) for w in ("bed", "bird", "dog")}
    third = (n / 2) / 3
    for w, c in counts.items():
        assert abs(c - third) < 5 * (third ** 0.5), counts
    plain = class_balanced_order(mix.labels, torch.Generator().manual_seed(3))
    plain_words = [os.path.basename(os.path.dirname(mix.examples[j].path))
                   for j in plain.tolist()]
    assert plain_words.count("bed") > 10 * plain_words.count("bird")


def test_source_weight_moves_draws_between_folders_not_classes():
    from sparknet_hw.data.mixture import source_factors
    mix = _unknown_mix({0: {"bed": 300}, 1: {"bird": 100}})
    mix.names = ["corpus", "gsc-dev"]
    f = source_factors(mix, {"gsc-dev": 3.0})
    for label in mix.labels.unique().tolist():
        members = mix.labels == label
        # every class keeps its clip count as its mass ...
        assert float(f[members].sum()) == pytest.approx(int(members.sum()))
        # ... and a gsc-dev clip weighs three times a corpus clip of the same class
        dev, corpus = f[members & (mix.source == 1)], f[members & (mix.source == 0)]
        assert torch.allclose(dev, 3 * corpus[0].expand_as(dev))
    order = class_balanced_order(mix.labels, torch.Generator().manual_seed(5), within_class=f)
    unknown = mix.labels[order] == LABELS.index("_unknown_")
    from_dev = float((mix.source[order][unknown] == 1).double().mean())
    assert abs(from_dev - 0.5) < 0.05, from_dev     # 100 x 3 against 300 x 1
    assert abs(float(unknown.double().mean()) - 0.5) < 0.05


def test_train_source_weight_is_recorded_and_checked(tmp_path, capsys):
    from sparknet_hw.checkpoint import load_checkpoint
    from sparknet_hw.cli import main
    from test_data import make_speech_commands
    sc = make_speech_commands(tmp_path / "sc")
    common = ["train", "--C", "4", "--data", str(sc), "--epochs", "1", "--batch-size", "16",
              "--recipe", "real-speech"]
    assert main(common + ["--source-weight", "elsewhere=2",
                          "--out", str(tmp_path / "bad.pt")]) != 0
    assert "elsewhere" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(common + ["--source-weight", f"{sc.name}=0", "--out", str(tmp_path / "bad.pt")])
    assert not (tmp_path / "bad.pt").exists()
    out = tmp_path / "sw.pt"
    assert main(common + ["--source-weight", f"{sc.name}=2", "--out", str(out)]) == 0
    assert load_checkpoint(out, kind="float", C=4)["meta"]["recipe"]["source_weight"] == {
        sc.name: 2.0}


def test_qat_batches_follow_the_float_recipes_word_balancing():
    """QAT draws its batches as the float recipe recorded (quantize passes unknown_by_word
    on): with it, the rare words get their share; without it, bed takes most draws."""
    from sparknet_hw.quant.qat import QATRecipe, _train_batches
    mix = _unknown_mix({0: {"bed": 900, "bird": 30, "dog": 30}})
    x = torch.arange(len(mix.labels), dtype=torch.float32)   # a batch's x are its indices

    def drawn_words(by_word):
        recipe = QATRecipe(balance=True, unknown_by_word=by_word, augment=False,
                           batch_size=len(x))
        (xb, _), = list(_train_batches(mix, x, mix.labels, recipe, torch.Generator().manual_seed(4)))
        words = [os.path.basename(os.path.dirname(mix.examples[int(j)].path)) for j in xb]
        return {w: words.count(w) for w in ("bed", "bird", "dog")}

    by_word, by_clip = drawn_words(True), drawn_words(False)
    assert by_word["bird"] > by_word["bed"] / 3 and by_word["dog"] > by_word["bed"] / 3, by_word
    assert by_clip["bed"] > 10 * by_clip["bird"], by_clip


def test_qat_batches_follow_the_float_recipes_source_weight():
    """QAT draws its batches with the float recipe's folder weights (quantize passes
    source_weight on from the float checkpoint's recipe)."""
    from sparknet_hw.quant.qat import QATRecipe, _train_batches
    mix = _unknown_mix({0: {"bed": 300}, 1: {"bird": 100}})
    mix.names = ["corpus", "gsc-dev"]
    x = torch.arange(len(mix.labels), dtype=torch.float32)

    def share_from_dev(weights):
        recipe = QATRecipe(balance=True, source_weight=weights, augment=False,
                           batch_size=len(x))
        (xb, _), = list(_train_batches(mix, x, mix.labels, recipe, torch.Generator().manual_seed(6)))
        unknown = [int(j) for j in xb if int(mix.labels[int(j)]) == LABELS.index("_unknown_")]
        return sum(int(mix.source[j]) == 1 for j in unknown) / len(unknown)

    assert abs(share_from_dev({"gsc-dev": 3.0}) - 0.5) < 0.07      # 100 x 3 against 300
    assert abs(share_from_dev({}) - 0.25) < 0.07


def test_train_unknown_by_word_is_recorded_and_checked(tmp_path, capsys):
    from sparknet_hw.checkpoint import load_checkpoint
    from sparknet_hw.cli import main
    from test_data import make_speech_commands
    sc = make_speech_commands(tmp_path / "sc")
    common = ["train", "--C", "4", "--data", str(sc), "--epochs", "1", "--batch-size", "16"]
    assert main(common + ["--recipe", "authors", "--unknown-by-word",
                          "--out", str(tmp_path / "bad.pt")]) != 0
    assert "--unknown-by-word" in capsys.readouterr().err
    assert not (tmp_path / "bad.pt").exists()
    out = tmp_path / "bw.pt"
    assert main(common + ["--recipe", "real-speech", "--unknown-by-word", "--out", str(out)]) == 0
    assert load_checkpoint(out, kind="float", C=4)["meta"]["recipe"]["unknown_by_word"] is True


def test_train_unknown_weight_is_recorded_and_checked(tmp_path, capsys):
    from sparknet_hw.checkpoint import load_checkpoint
    from sparknet_hw.cli import main
    from test_data import make_speech_commands
    sc = make_speech_commands(tmp_path / "sc")
    common = ["train", "--C", "4", "--data", str(sc), "--epochs", "1", "--batch-size", "16",
              "--recipe", "real-speech"]
    assert main(common + ["--unknown-weight", "0", "--out", str(tmp_path / "bad.pt")]) != 0
    assert "--unknown-weight" in capsys.readouterr().err
    assert not (tmp_path / "bad.pt").exists()
    unbalanced = [a if a != "real-speech" else "authors" for a in common]
    assert main(unbalanced + ["--unknown-weight", "2", "--out", str(tmp_path / "bad.pt")]) != 0
    assert "--balance" in capsys.readouterr().err
    assert not (tmp_path / "bad.pt").exists()
    out = tmp_path / "uw.pt"
    assert main(common + ["--unknown-weight", "2", "--out", str(out)]) == 0
    assert load_checkpoint(out, kind="float", C=4)["meta"]["recipe"]["unknown_weight"] == 2.0


# ------------------------------------------------------------------------------ 7. digital silence

def _spy_augment(monkeypatch):
    """Replace augment_batch (as augmented_features imports it) by a recorder that runs
    the real one with shift and white noise off."""
    import sparknet_hw.data.dataset as dataset
    real = dataset.augment_batch
    calls = []

    def spy(waves, generator=None, **kw):
        calls.append({"waves": waves.clone(), **kw})
        return real(waves, generator, **{**kw, "p_shift": 0.0, "p_noise": 0.0})

    monkeypatch.setattr(dataset, "augment_batch", spy)
    return calls


def test_zero_silence_rows_become_digital_silence(monkeypatch):
    from sparknet_hw.features import mfcc_torch
    from sparknet_hw.train import Recipe, augmented_features

    calls = _spy_augment(monkeypatch)
    g = torch.Generator().manual_seed(0)
    labels = torch.tensor([SILENCE, 0, SILENCE, UNKNOWN, 4, SILENCE])
    waves = torch.rand(len(labels), RATE, generator=g) * 2 - 1
    recipe = Recipe(p_zero_silence=1.0, spec_augment=False)
    x, _ = augmented_features(waves, labels, recipe, 4, g)
    sil = labels == SILENCE
    fed = calls[-1]["waves"]
    assert fed[sil].eq(0).all()                        # every silence row zeroed ...
    assert torch.equal(fed[~sil], waves[~sil])         # ... and nothing else touched
    torch.testing.assert_close(x[sil], mfcc_torch(torch.zeros(int(sil.sum()), RATE)))
    torch.testing.assert_close(x[~sil], mfcc_torch(waves[~sil]))
    assert waves[sil].ne(0).any()                      # the caller's batch is not modified

    recipe0 = Recipe(p_zero_silence=0.0, spec_augment=False)
    augmented_features(waves, labels, recipe0, 4, g)
    assert torch.equal(calls[-1]["waves"], waves)


def test_zero_silence_probability(monkeypatch):
    from sparknet_hw.train import Recipe, augmented_features

    calls = _spy_augment(monkeypatch)
    n, p = 300, 0.3
    labels = torch.tensor([SILENCE, 2] * n)
    waves = torch.full((2 * n, RATE), 0.5)
    augmented_features(waves, labels, Recipe(p_zero_silence=p, spec_augment=False), 4,
                       torch.Generator().manual_seed(0))
    zeroed = calls[-1]["waves"].abs().sum(dim=1) == 0
    assert not zeroed[labels != SILENCE].any()
    share = zeroed[labels == SILENCE].float().mean().item()
    assert abs(share - p) < 5 * (p * (1 - p) / n) ** 0.5


def test_recipe_augmentation_reaches_augment_batch(monkeypatch):
    from sparknet_hw.train import Recipe, augmented_features

    calls = _spy_augment(monkeypatch)
    recipe = Recipe.real_speech(p_zero_silence=0.0, p_background=0.8, speed=0.1, p_speed=0.5)
    assert recipe.balance
    bank = torch.rand(3, RATE)
    g = torch.Generator().manual_seed(0)
    x, _ = augmented_features(torch.rand(4, RATE), torch.zeros(4, dtype=torch.long), recipe, 4,
                              g, bank)
    kw = calls[-1]
    assert kw["speed"] == recipe.speed > 0 and kw["p_speed"] == recipe.p_speed > 0
    assert kw["p_background"] == recipe.p_background > 0 and kw["background"] is bank
    assert x.shape == (4, 32, 101)


# ------------------------------------------------------------------------------ 8. read-only cache

def test_read_only_folder_caches_outside_it(tmp_path, monkeypatch):
    xdg = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CACHE_HOME", str(xdg))
    root = make_gsc_v2(tmp_path / "ro" / "gsc")
    twin = make_gsc_v2(tmp_path / "ro2" / "gsc")      # same base name elsewhere
    assert cache_folder(str(root)) == os.path.join(str(root), ".cache")   # writable: inside
    before = _tree(root)
    modes = {p: os.stat(p).st_mode for p in (root, twin)}
    try:
        for p in (root, twin):
            os.chmod(p, stat.S_IMODE(modes[p]) & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        outside = cache_folder(str(root))
        assert Path(outside).is_relative_to(xdg)
        assert outside != cache_folder(str(twin))
        ds = FeatureDataset(root, "validation")
        assert not ds.from_cache and Path(ds.cache_path).parent == Path(outside)
        assert Path(ds.cache_path).is_file()
        again = FeatureDataset(root, "validation")
        assert again.from_cache
        torch.testing.assert_close(again.features, ds.features)
        assert _tree(root) == before                  # nothing written inside the dataset

        monkeypatch.delenv("XDG_CACHE_HOME")
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        assert Path(cache_folder(str(root))).is_relative_to(tmp_path / "home" / ".cache")
    finally:
        for p, mode in modes.items():
            os.chmod(p, stat.S_IMODE(mode))


# ------------------------------------------------------------------------------ 9. shipped clips

def test_clips_spread_over_speakers():
    from sparknet_hw.commands.data import _spread_over_speakers
    from sparknet_hw.data.speech_commands import Example
    # class 0: three clips of speaker a, then b; class 1: a, c
    ex = [Example("/d/yes/a_nohash_0.wav", 0), Example("/d/yes/a_nohash_1.wav", 0),
          Example("/d/yes/a_nohash_2.wav", 0), Example("/d/yes/b_nohash_0.wav", 0),
          Example("/d/no/a_nohash_0.wav", 1), Example("/d/no/c_nohash_0.wav", 1),
          Example(None, SILENCE), Example(None, SILENCE)]
    labels = np.array([e.label for e in ex])
    picks = _spread_over_speakers(ex, labels, 2)
    # yes: a then b (not a twice); no: a is used, so c first, then a fills up; silence: both
    assert picks == [0, 3, 4, 5, 6, 7]
    assert _spread_over_speakers(ex, labels, 1) == [0, 5, 6]


# ------------------------------------------------------------------------------ 10. bad clips

def test_stereo_clip_in_a_training_folder_is_a_clear_error(tmp_path):
    from sparknet_hw.audio import AudioError
    from sparknet_hw.data.mixture import DataMix
    root = make_gsc_v2(tmp_path / "gsc")
    bad = sorted((root / "yes").iterdir())[0]
    sf.write(bad, np.zeros((RATE, 2), np.int16), RATE, subtype="PCM_16")
    with pytest.raises(AudioError) as info:
        DataMix([root], _split_of_file(root, bad), cache=False)
    assert str(bad) in str(info.value) and "mono" in str(info.value)


def _split_of_file(root: Path, path: Path) -> str:
    rel = f"{path.parent.name}/{path.name}"
    for split, name in (("validation", "validation_list.txt"), ("test", "testing_list.txt")):
        if rel in (root / name).read_text().split():
            return split
    return "train"


def test_reversed_keywords_become_unknown_and_on_no_stay():
    """--p-reversed: a chosen keyword clip is its waveform backwards, labelled `_unknown_`;
    `on`/`no` (each the other backwards), `_unknown_` and `_silence_` are never chosen."""
    import torch
    from sparknet_hw.data.labels import LABELS, SILENCE, UNKNOWN
    from sparknet_hw.train import reversed_unknown
    labels = torch.arange(len(LABELS)).repeat(40)
    waves = torch.rand(len(labels), 64, generator=torch.Generator().manual_seed(1))
    out, new = reversed_unknown(waves, labels, 0.5, torch.Generator().manual_seed(2))
    flipped = (new != labels)
    assert flipped.any() and (new[flipped] == UNKNOWN).all()
    assert torch.equal(out[flipped], waves[flipped].flip(1))
    assert torch.equal(out[~flipped], waves[~flipped])
    never = [LABELS.index("on"), LABELS.index("no"), UNKNOWN, SILENCE]
    assert not torch.isin(labels[flipped], torch.tensor(never)).any()
    share = flipped.float().sum() / (~torch.isin(labels, torch.tensor(never))).sum()
    assert 0.35 < float(share) < 0.65
    same, kept = reversed_unknown(waves, labels, 0.0, torch.Generator().manual_seed(2))
    assert torch.equal(same, waves) and torch.equal(kept, labels)
    # the training batch gets the new labels: every keyword but on/no becomes _unknown_
    from sparknet_hw.train import Recipe, augmented_features
    recipe = Recipe(p_reversed=1.0, p_zero_silence=0.0)
    _, batch_labels = augmented_features(torch.rand(len(LABELS), 16000) * 2 - 1,
                                         torch.arange(len(LABELS)), recipe, 4,
                                         torch.Generator().manual_seed(3))
    assert batch_labels.tolist() == [lab if lab in never else UNKNOWN
                                     for lab in range(len(LABELS))]
