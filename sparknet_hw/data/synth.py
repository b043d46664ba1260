"""Offline keyword corpus: synthetic speech shaped like Google Speech Commands.

`synthesize(out_dir)` writes, with no download:

    OUT/<word>/<speaker>_nohash_<n>.wav   16 kHz mono int16, exactly 1 s
    OUT/validation_list.txt, OUT/testing_list.txt
    OUT/_background_noise_/*.wav          generated noise (the loader's `_silence_`)
    OUT/corpus.json                       seed, sizes, voices per split, counts

so `speech_commands.list_split` reads it like the real dataset.  Words come from three
speech engines (Debian packages): espeak-ng (English accents x voice variants, with
random speed and pitch), flite voices and festival `text2wave` voices.  Every clip then
gets sox variations (pitch shift, tempo, sometimes reverb and band limiting), a random
loudness, a random position inside the second, and generated white/pink/brown noise at
a random SNR.

Voices are split between train, validation and test (none is shared), so test accuracy
measures generalisation to unseen voices: test uses espeak accents and variants never
heard in training plus flite's `awb`, validation another accent, other variants and
festival's `ked`.  `slt` (flite and festival HTS), the only natural female English voice
Debian ships, is in training: generator 1 held it out and the models, having heard no
natural female voice, got 25-35 % of its clips right.

`per_class` is the number of clips per keyword (and of `_unknown_` clips, spread over
~45 other words), divided 70/15/15 between train/validation/test.  Everything about a
clip is drawn up front from the seed, so the output is the same for the same seed and
the same voice set, whatever the number of jobs.  The flite and festival base words are
synthesised once per (voice, word) into a temporary folder and varied from there.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed

import numpy as np
import soundfile as sf

from ..audio import CLIP_SAMPLES, SAMPLE_RATE
from ..errors import UserError
from .labels import KEYWORDS, LABELS
from .speech_commands import BACKGROUND_DIR, SPLIT_FILES, SPLITS

GENERATOR = "sparknet_hw.data.synth/2"

UNKNOWN_WORDS = [
    # the other Speech Commands words
    "bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow",
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "backward", "forward", "follow", "learn", "visual",
    # common words, some close to a keyword
    "hello", "water", "light", "music", "window", "yet", "note", "cup", "town", "lift",
    "write", "top", "gold", "often", "only", "yellow", "open", "dance", "table",
]

ESPEAK_ACCENTS = {
    "train": ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029"],
    "validation": ["en-gb-x-gbcwmd"],
    "test": ["en-us-nyc", "en-gb-x-gbclan"],
}
ESPEAK_VARIANTS = {
    "train": ["m1", "m2", "m3", "m4", "m5", "m6", "f1", "f2", "f3", "adam", "Alex", "Andy",
              "Annie", "aunty", "benjamin", "caleb", "david", "ed", "edward", "Gene", "Hugo",
              "Jacky", "john", "Lee", "linda", "max", "Michael", "Mike", "paul", "quincy",
              "rob", "robert", "steph", "Storm", "zac", "anika", "grandpa", "klatt", "klatt2",
              "klatt3", "norbert", "shelby", "travis", "victor", "whisper"],
    "validation": ["m7", "f4", "Alicia", "belinda", "boris", "Gene2", "iven", "klatt4",
                   "steph2", "edward2", "sandro", "antonio"],
    "test": ["m8", "f5", "Andrea", "Denis", "Diogo", "gustave", "Henrique", "iven2", "Marco",
             "Mario", "michel", "pablo", "klatt5", "steph3", "grandma", "marcelo"],
}
# slt (flite and festival HTS: one speaker) is the only natural female English voice Debian
# ships, so it trains; a male natural voice (awb) is held out for test instead.  Holding slt
# out (corpus generator 1) measured gender extrapolation from male-only natural voices.
FLITE_VOICES = {"train": ["kal", "kal16", "rms", "slt"], "validation": [], "test": ["awb"]}
FESTIVAL_VOICES = {"train": ["kal_diphone", "cmu_us_slt_arctic_hts"],
                   "validation": ["ked_diphone"], "test": []}
ENGINES = ("espeak", "flite", "festival")
TOOLS = {"espeak": "espeak-ng", "flite": "flite", "festival": "text2wave", "sox": "sox"}
APT = {"espeak-ng": "espeak-ng", "flite": "flite", "text2wave": "festival festvox-kallpc16k "
       "festvox-kdlpc16k festvox-us-slt-hts", "sox": "sox"}

SPLIT_FRACTIONS = {"validation": 0.15, "test": 0.15}
P_ESPEAK = 0.6            # share of clips from espeak (when the split has other voices too)
NOISE_FILES = [("white_noise", 30), ("pink_noise", 30), ("brown_noise", 30),
               ("pink_noise_modulated", 30), ("hum_and_brown_noise", 30),
               ("bursty_band_noise", 30)]


def split_sizes(per_class: int) -> dict[str, int]:
    """Clips per class in each split (70/15/15, at least one in validation and test)."""
    n_val = max(1, int(round(per_class * SPLIT_FRACTIONS["validation"])))
    n_test = max(1, int(round(per_class * SPLIT_FRACTIONS["test"])))
    return {"train": per_class - n_val - n_test, "validation": n_val, "test": n_test}


def voices_for(split: str, engines=ENGINES) -> dict[str, list[str]]:
    """Voice keys ('engine:name') per engine for one split."""
    out = {}
    if "espeak" in engines:
        out["espeak"] = [f"espeak:{a}+{v}" for a in ESPEAK_ACCENTS[split]
                         for v in ESPEAK_VARIANTS[split]]
    if "flite" in engines:
        out["flite"] = [f"flite:{v}" for v in FLITE_VOICES[split]]
    if "festival" in engines:
        out["festival"] = [f"festival:{v}" for v in FESTIVAL_VOICES[split]]
    return {k: v for k, v in out.items() if v}


def _speaker_id(voice: str) -> str:
    return hashlib.sha1(voice.encode()).hexdigest()[:8]


def _safe(word: str) -> str:
    return word.replace(" ", "_")


# ----------------------------------------------------------------------------- planning

def plan(per_class: int, seed: int, engines=ENGINES,
         unknown_per_class: int | None = None) -> list[dict]:
    """Every clip of the corpus, fully specified (deterministic for seed and engines).

    `unknown_per_class` (default `per_class`) sets the `_unknown_` clips alone. Each class
    draws from its own generator, so the keywords are the same whatever it is, and a larger
    value only appends `_unknown_` clips to the smaller corpus."""
    unknown_per_class = per_class if unknown_per_class is None else unknown_per_class
    for flag, n in (("--per-class", per_class), ("--unknown-per-class", unknown_per_class)):
        if n < 3:
            raise UserError(f"{flag} {n} is too small: need at least 3 "
                            f"(one clip each for train, validation and test)")
    class_sizes = {cls: split_sizes(unknown_per_class if cls == "_unknown_" else per_class)
                   for cls in KEYWORDS + ["_unknown_"]}
    clips = []
    counters: dict[tuple, int] = {}
    for s_idx, split in enumerate(SPLITS):
        voices = voices_for(split, engines)
        if not voices:
            raise UserError(f"no voices left for the {split} split with engines "
                            f"{', '.join(engines)}")
        others = [v for eng, vs in voices.items() if eng != "espeak" for v in vs]
        for c_idx, cls in enumerate(KEYWORDS + ["_unknown_"]):
            rng = np.random.default_rng([int(seed), s_idx, c_idx])
            word_order = rng.permutation(len(UNKNOWN_WORDS))
            for i in range(class_sizes[cls][split]):
                word = cls if cls in KEYWORDS else UNKNOWN_WORDS[word_order[i % len(UNKNOWN_WORDS)]]
                use_espeak = "espeak" in voices and (not others or rng.random() < P_ESPEAK)
                pool = voices["espeak"] if use_espeak else others
                voice = pool[int(rng.integers(len(pool)))]
                spec = {
                    "split": split, "label": cls, "word": word, "voice": voice,
                    "speed": int(rng.integers(130, 211)),          # espeak words per minute
                    "pitch": int(rng.integers(15, 86)),            # espeak pitch 0..99
                    "cents": float(rng.uniform(-100, 100) if use_espeak else rng.uniform(-400, 700)),
                    "tempo": float(rng.uniform(0.9, 1.1) if use_espeak else rng.uniform(0.8, 1.25)),
                    "reverb": float(rng.uniform(10, 70)) if rng.random() < 0.25 else 0.0,
                    "room": float(rng.uniform(20, 100)),
                    "lowpass": float(rng.uniform(3000, 7500)) if rng.random() < 0.4 else 0.0,
                    "highpass": float(rng.uniform(80, 400)) if rng.random() < 0.3 else 0.0,
                    "peak_db": float(rng.uniform(-24, -1)),
                    "position": float(rng.random()),
                    "noise": str(rng.choice(["white", "pink", "brown"])),
                    "snr_db": float(rng.uniform(5, 40)) if rng.random() < 0.9 else None,
                    "noise_seed": int(rng.integers(2 ** 32)),
                }
                folder = _safe(word)
                spk = _speaker_id(voice)
                n = counters.get((folder, spk), 0)
                counters[(folder, spk)] = n + 1
                spec["rel"] = f"{folder}/{spk}_nohash_{n}.wav"
                clips.append(spec)
    return clips


# ----------------------------------------------------------------------------- engines

def _run(cmd, what: str, **kw) -> subprocess.CompletedProcess:
    try:
        res = subprocess.run(cmd, capture_output=True, **kw)
    except FileNotFoundError:
        tool = cmd[0]
        raise UserError(f"{tool} not found: apt-get install {APT.get(tool, tool)}") from None
    if res.returncode != 0:
        err = res.stderr.decode(errors="replace").strip().splitlines()
        raise UserError(f"{what} failed (exit {res.returncode}): "
                        f"{err[-1] if err else 'no message'}")
    return res


def _base_path(tmp: str, voice: str, word: str) -> str:
    return os.path.join(tmp, f"{voice.replace(':', '_')}__{_safe(word)}.wav")


def _synth_base(tmp: str, voice: str, word: str) -> None:
    """flite / festival: one wav per (voice, word), varied later."""
    engine, name = voice.split(":", 1)
    out = _base_path(tmp, voice, word)
    if engine == "flite":
        _run(["flite", "-voice", name, "-t", word, "-o", out], f"flite -voice {name} {word!r}")
    elif engine == "festival":
        _run(["text2wave", "-eval", f"(voice_{name})", "-o", out],
             f"festival voice {name} {word!r}", input=word.encode())
    else:
        raise ValueError(voice)


def _sox_effects(spec: dict) -> list[str]:
    # band limiting first, at 16 kHz: `pitch` runs its own rate change inside the chain
    fx = ["gain", "-8", "rate", "-h", str(SAMPLE_RATE), "highpass", "60"]
    if spec["highpass"]:
        fx += ["highpass", f"{spec['highpass']:.0f}"]
    if spec["lowpass"]:
        fx += ["lowpass", f"{spec['lowpass']:.0f}"]
    if abs(spec["cents"]) > 1:
        fx += ["pitch", f"{spec['cents']:.1f}"]
    if abs(spec["tempo"] - 1) > 1e-3:
        fx += ["tempo", "-s", f"{spec['tempo']:.4f}"]
    if spec["reverb"]:
        fx += ["reverb", f"{spec['reverb']:.0f}", "50", f"{spec['room']:.0f}"]
    fx += ["rate", "-h", str(SAMPLE_RATE)]
    return fx


def _render_word(spec: dict, tmp: str) -> np.ndarray:
    """The varied word as float32 at 16 kHz (sox output, before trimming)."""
    engine, name = spec["voice"].split(":", 1)
    sox_out = ["-D", "-V1", "-t", "raw", "-e", "floating-point", "-b", "32", "-c", "1",
               "-r", str(SAMPLE_RATE), "-"]
    if engine == "espeak":
        wav = _run(["espeak-ng", "-v", name, "-s", str(spec["speed"]), "-p", str(spec["pitch"]),
                    "--stdout", spec["word"]], f"espeak-ng -v {name} {spec['word']!r}").stdout
        res = _run(["sox", "-V1", "-t", "wav", "-"] + sox_out + _sox_effects(spec),
                   f"sox on espeak {name} {spec['word']!r}", input=wav)
    else:
        res = _run(["sox", "-V1", _base_path(tmp, spec["voice"], spec["word"])] + sox_out
                   + _sox_effects(spec), f"sox on {spec['voice']} {spec['word']!r}")
    return np.frombuffer(res.stdout, dtype="<f4").astype(np.float32)


def _trim(x: np.ndarray, floor_db: float = -40.0) -> np.ndarray:
    """Cut leading/trailing quiet (10-ms frames below floor_db of the loudest), keep 20 ms."""
    hop = 160
    n = len(x) // hop
    if n == 0:
        return x
    rms = np.sqrt(np.mean(x[:n * hop].reshape(n, hop) ** 2, axis=1) + 1e-20)
    active = np.nonzero(rms > rms.max() * 10 ** (floor_db / 20))[0]
    if active.size == 0:
        return x
    start = max(0, active[0] * hop - 2 * hop)
    stop = min(len(x), (active[-1] + 1) * hop + 2 * hop)
    return x[start:stop]


def coloured_noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS white, pink (1/f power) or brown (1/f^2 power) noise."""
    white = rng.standard_normal(n)
    if kind != "white":
        spec = np.fft.rfft(white)
        f = np.arange(len(spec), dtype=np.float64)
        f[0] = 1.0
        spec /= f ** (0.5 if kind == "pink" else 1.0)
        spec[0] = 0.0
        white = np.fft.irfft(spec, n)
    white -= white.mean()
    return (white / (np.sqrt(np.mean(white ** 2)) + 1e-12)).astype(np.float32)


def _to_int16(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, -1.0, 1.0) * 32767).astype(np.int16)


def _make_clip(spec: dict, tmp: str, out_dir: str) -> None:
    word = _trim(_render_word(spec, tmp))
    room = int(0.97 * CLIP_SAMPLES)
    if len(word) > room:  # too long for one second: speed it up to fit (rare)
        from scipy.signal import resample
        word = resample(word, room).astype(np.float32)
    clip = np.zeros(CLIP_SAMPLES, dtype=np.float32)
    start = int(spec["position"] * (CLIP_SAMPLES - len(word)))
    clip[start:start + len(word)] = word
    if spec["snr_db"] is not None:
        speech_rms = np.sqrt(np.mean(word ** 2)) + 1e-12
        rng = np.random.default_rng(spec["noise_seed"])
        noise = coloured_noise(spec["noise"], CLIP_SAMPLES, rng)
        clip += noise * (speech_rms / 10 ** (spec["snr_db"] / 20))
    peak = np.max(np.abs(clip))
    if peak > 0:
        clip *= 10 ** (spec["peak_db"] / 20) / peak
    path = os.path.join(out_dir, spec["rel"])
    sf.write(path, _to_int16(clip), SAMPLE_RATE, subtype="PCM_16")


def _background_noise(out_dir: str, seed: int) -> list[str]:
    """A few long generated noise recordings for `_silence_`."""
    folder = os.path.join(out_dir, BACKGROUND_DIR)
    os.makedirs(folder, exist_ok=True)
    names = []
    for k, (name, seconds) in enumerate(NOISE_FILES):
        rng = np.random.default_rng([int(seed), 1000 + k])
        n = seconds * SAMPLE_RATE
        t = np.arange(n) / SAMPLE_RATE
        if name.startswith(("white", "pink", "brown")):
            x = coloured_noise(name.split("_")[0], n, rng)
            if name.endswith("modulated"):
                x *= 0.6 + 0.4 * np.sin(2 * np.pi * 0.3 * t + rng.uniform(0, 6.3))
        elif name.startswith("hum"):
            x = 0.5 * coloured_noise("brown", n, rng)
            for h, a in zip((1, 2, 3, 5), (1.0, 0.5, 0.3, 0.15)):
                x += a * np.sin(2 * np.pi * 50 * h * t + rng.uniform(0, 6.3))
        else:  # bursts of band-limited noise over a quiet pink floor
            x = 0.2 * coloured_noise("pink", n, rng)
            spec = np.fft.rfft(coloured_noise("white", n, rng))
            f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
            spec[(f < 300) | (f > 3000)] = 0
            band = np.fft.irfft(spec, n)
            env = np.repeat(rng.random(seconds * 4) < 0.4, SAMPLE_RATE // 4)[:n]
            x += band / (np.std(band) + 1e-12) * env
        x = x / np.max(np.abs(x)) * 10 ** (rng.uniform(-20, -3) / 20)
        rel = f"{name}.wav"
        sf.write(os.path.join(folder, rel), _to_int16(x), SAMPLE_RATE, subtype="PCM_16")
        names.append(f"{BACKGROUND_DIR}/{rel}")
    return names


# ----------------------------------------------------------------------------- driver

def check_tools(engines=ENGINES) -> None:
    for key in list(engines) + ["sox"]:
        tool = TOOLS[key]
        if shutil.which(tool) is None:
            raise UserError(f"{tool} not found on PATH: apt-get install {APT[tool]}")


def _managed_entries(out_dir: str) -> list[str]:
    words = set(KEYWORDS) | {_safe(w) for w in UNKNOWN_WORDS}
    return sorted(words) + [BACKGROUND_DIR, ".cache", "corpus.json"] + list(SPLIT_FILES.values())


def clear_corpus(out_dir: str) -> None:
    """Remove what a previous synth run wrote (and only that)."""
    for entry in _managed_entries(out_dir):
        p = os.path.join(out_dir, entry)
        if os.path.isdir(p):
            shutil.rmtree(p)
        elif os.path.exists(p):
            os.remove(p)


def synthesize(out_dir, per_class: int = 200, seed: int = 0, jobs: int = 2,
               progress: bool = True, engines=ENGINES,
               unknown_per_class: int | None = None) -> dict:
    """Write the corpus into out_dir (created if needed); returns the corpus.json manifest.

    `engines` selects a subset of ("espeak", "flite", "festival") (tests use fewer).
    The caller decides whether out_dir may be non-empty (see clear_corpus).
    """
    engines = tuple(e for e in ENGINES if e in engines)
    check_tools(engines)
    clips = plan(per_class, seed, engines, unknown_per_class)
    out_dir = os.path.abspath(os.fspath(out_dir))
    os.makedirs(out_dir, exist_ok=True)
    for folder in sorted({c["rel"].split("/")[0] for c in clips}):
        os.makedirs(os.path.join(out_dir, folder), exist_ok=True)
    bases = sorted({(c["voice"], c["word"]) for c in clips if not c["voice"].startswith("espeak:")})

    bar = None
    if progress:
        from ..progress import progress_bar
        bar = progress_bar(total=len(bases) + len(clips), unit="clip", desc="synth")
    jobs = max(1, int(jobs))
    with tempfile.TemporaryDirectory(prefix="sparknet-synth-") as tmp, \
            ThreadPoolExecutor(max_workers=jobs) as pool:
        # festival is the slow engine: start its words first
        bases.sort(key=lambda b: not b[0].startswith("festival:"))
        for stage, items in (("base", bases), ("clip", clips)):
            if stage == "base":
                futures = [pool.submit(_synth_base, tmp, v, w) for v, w in items]
            else:
                futures = [pool.submit(_make_clip, c, tmp, out_dir) for c in items]
            try:
                for fut in as_completed(futures):
                    fut.result()
                    if bar is not None:
                        bar.update(1)
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
    if bar is not None:
        bar.close()

    noise = _background_noise(out_dir, seed)
    for split, name in SPLIT_FILES.items():
        lines = sorted(c["rel"] for c in clips if c["split"] == split)
        with open(os.path.join(out_dir, name), "w", encoding="utf-8") as fh:
            fh.write("".join(line + "\n" for line in lines))

    counts = {split: {label: 0 for label in LABELS[:-1]} for split in SPLITS}
    for c in clips:
        counts[c["split"]][c["label"]] += 1
    manifest = {
        "generator": GENERATOR,
        "seed": int(seed),
        "per_class": int(per_class),
        "unknown_per_class": int(per_class if unknown_per_class is None else unknown_per_class),
        "split_sizes": split_sizes(per_class),
        "engines": list(engines),
        "voices": {split: voices_for(split, engines) for split in SPLITS},
        "unknown_words": UNKNOWN_WORDS,
        "background_noise": noise,
        "counts": counts,
        # file names carry only a speaker hash (as in Speech Commands); this maps it back so
        # `eval` can report accuracy per voice
        "speakers": {_speaker_id(v): v for split in SPLITS
                     for vs in voices_for(split, engines).values() for v in vs},
        "clips": len(clips),
        "sample_rate": SAMPLE_RATE,
        "note": "_silence_ clips are not files: the loader cuts them from _background_noise_",
    }
    with open(os.path.join(out_dir, "corpus.json"), "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=1)
        fh.write("\n")
    return manifest
