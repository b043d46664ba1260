"""`data`: offline keyword corpus, dataset statistics, MFCC of one clip."""
from __future__ import annotations

import os
import time

from ..data.speech_commands import HOLDOUT_PERCENT
from ..errors import UserError


def register(sub) -> None:
    p = sub.add_parser("data", help="keyword data: synthesize a corpus, count a dataset, MFCC",
                       description="Keyword-spotting data: build the offline synthetic corpus, "
                                   "count the 12-class splits of a Speech Commands folder, "
                                   "or print the MFCC of one clip.")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION")
    dsub.required = True

    s = dsub.add_parser("synth", help="synthesize an offline Speech-Commands-shaped corpus",
                        description="Speak the 10 keywords and ~45 other words with espeak-ng, "
                                    "flite and festival voices (held-out voices for validation "
                                    "and test), vary and mix with noise, and write a folder "
                                    "the Speech Commands loader reads.")
    s.add_argument("--out", required=True, help="output folder (must be empty or new)")
    s.add_argument("--per-class", type=int, default=200,
                   help="clips per keyword and of _unknown_, split 70/15/15 (default 200)")
    s.add_argument("--unknown-per-class", type=int, default=None, metavar="N",
                   help="_unknown_ clips alone, spread over its ~45 words (default: "
                        "--per-class); the keyword clips do not change with it")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument("--jobs", type=int, default=2, help="parallel synthesis jobs (default 2)")
    s.add_argument("--engines", default="espeak,flite,festival",
                   help="comma-separated subset of espeak,flite,festival (default all)")
    s.add_argument("--force", action="store_true",
                   help="write into a non-empty folder, replacing a previous corpus there")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=run_synth)

    st = dsub.add_parser("stats", help="clips per class and split of a dataset folder",
                         description="Count the 12-class train/validation/test examples of a "
                                     "Speech Commands (or synthesized) folder.")
    st.add_argument("--root", required=True, help="dataset folder")
    st.add_argument("--seed", type=int, default=0, help="balancing seed (default 0)")
    st.add_argument("--holdout", type=float, default=HOLDOUT_PERCENT,
                    help="percent of speakers held out for validation in a folder without "
                         "split lists (default %(default)g, as train)")
    st.set_defaults(func=run_stats)

    m = dsub.add_parser("mfcc", help="MFCC features (32 x 101) of one wav file",
                        description="Load one clip as the model sees it (16 kHz mono, 1 s, "
                                    "peak-normalised) and compute its 32 x 101 MFCC.")
    m.add_argument("wav", help="input .wav file")
    m.add_argument("--out", help="save the features as a .npy file")
    m.set_defaults(func=run_mfcc)

    c = dsub.add_parser("clips", help="save real feature clips of a split as .npz",
                        description="Take N clips of every class of a split (the first ones, "
                                    "from as many different speakers as possible) and save "
                                    "their float MFCC features [N, 32, 101] with labels and file "
                                    "names: the real inputs that simulation and build verify on.")
    c.add_argument("--root", required=True, help="dataset folder")
    c.add_argument("--split", default="test", choices=["train", "validation", "test"])
    c.add_argument("--per-class", type=int, default=2)
    c.add_argument("--holdout", type=float, default=HOLDOUT_PERCENT,
                   help="percent of held-out speakers in a folder without split lists "
                        "(default %(default)g)")
    c.add_argument("--out", required=True, help="output .npz file")
    c.set_defaults(func=run_clips)


def run_synth(args) -> int:
    from ..data.synth import ENGINES, clear_corpus, synthesize

    out = os.path.abspath(args.out)
    if os.path.exists(out) and not os.path.isdir(out):
        raise UserError(f"{out}: exists and is not a folder; choose another --out")
    if os.path.isdir(out) and os.listdir(out):
        if not args.force:
            raise UserError(f"{out}: folder is not empty; choose a new --out or pass --force "
                            f"to replace the corpus there")
        clear_corpus(out)
    engines = tuple(e.strip() for e in args.engines.split(",") if e.strip())
    bad = [e for e in engines if e not in ENGINES]
    if bad or not engines:
        raise UserError(f"--engines: unknown engine(s) {', '.join(bad) or '(none)'}; "
                        f"use a subset of {','.join(ENGINES)}")
    if args.jobs < 1:
        raise UserError("--jobs must be at least 1")
    t0 = time.monotonic()
    manifest = synthesize(out, per_class=args.per_class, seed=args.seed, jobs=args.jobs,
                          progress=not args.quiet, engines=engines,
                          unknown_per_class=args.unknown_per_class)
    dt = time.monotonic() - t0
    per_split = {s: sum(c.values()) for s, c in manifest["counts"].items()}
    print(f"wrote {manifest['clips']} clips to {out} in {dt:.1f} s "
          f"({', '.join(f'{s} {n}' for s, n in per_split.items())}; "
          f"{len(manifest['background_noise'])} background-noise files for _silence_)")
    return 0


def run_stats(args) -> int:
    from ..data.labels import LABELS
    from ..data.speech_commands import SPLITS, list_split, speakers_in, split_counts, split_mode

    mode = split_mode(args.root)
    splits = SPLITS if mode == "lists" else ("train", "validation")
    examples = {s: list_split(args.root, s, seed=args.seed, holdout=args.holdout) for s in splits}
    counts = {s: split_counts(examples[s]) for s in splits}
    print(f"{'class':<12}" + "".join(f"{s:>12}" for s in splits))
    for name in LABELS:
        print(f"{name:<12}" + "".join(f"{counts[s][name]:>12}" for s in splits))
    print(f"{'total':<12}" + "".join(f"{sum(counts[s].values()):>12}" for s in splits))
    speakers = {s: len(speakers_in(examples[s])) for s in splits}
    print(f"{'speakers':<12}" + "".join(f"{speakers[s]:>12}" for s in splits))
    if mode == "speakers":
        print(f"split by speaker: no split lists, {args.holdout:g} % of speakers held out "
              f"for validation (the same speakers on every machine)")
    return 0


def run_mfcc(args) -> int:
    import numpy as np

    from ..clips import audio_features

    feats = audio_features(args.wav)
    if args.out:
        try:
            np.save(args.out, feats)
        except OSError as exc:
            raise UserError(f"{args.out}: cannot write ({exc.strerror or exc})") from None
    print(f"{args.wav}: MFCC {feats.shape[0]} x {feats.shape[1]}, min {feats.min():.3f}, "
          f"max {feats.max():.3f}, mean {feats.mean():.3f}"
          + (f"; saved to {args.out}" if args.out else ""))
    return 0


def _spread_over_speakers(examples, labels, per_class: int) -> list[int]:
    """The first `per_class` clips of every class, preferring speakers not picked yet, so
    that a handful of clips covers as many voices as it can (deterministic)."""
    import numpy as np

    from ..data.labels import LABELS
    from ..data.speech_commands import speaker_of
    used: set[str] = set()
    picks = []
    for k in range(len(LABELS)):
        mine = [int(i) for i in np.flatnonzero(labels == k)]
        speaker = {i: speaker_of(examples[i].path) if examples[i].path else None for i in mine}
        chosen = []
        for i in mine:
            if len(chosen) < per_class and (speaker[i] is None or speaker[i] not in used):
                chosen.append(i)
                used.add(speaker[i])
        chosen += [i for i in mine if i not in chosen][:per_class - len(chosen)]
        picks += sorted(chosen)
    return picks


def run_clips(args) -> int:
    import numpy as np

    from ..data.dataset import FeatureDataset
    from ..data.labels import LABELS

    data = FeatureDataset(args.root, args.split, augment=False, holdout=args.holdout)
    labels = data.labels.numpy()
    picks = _spread_over_speakers(data.examples, labels, args.per_class)
    names = [f"{LABELS[labels[i]]}:{os.path.relpath(data.examples[i].path, args.root) if data.examples[i].path else 'zeros'}" for i in picks]
    try:
        np.savez_compressed(args.out, features=data.features.numpy()[picks].astype(np.float32),
                            labels=labels[picks].astype(np.int64), names=np.array(names))
    except OSError as exc:
        raise UserError(f"{args.out}: cannot write ({exc.strerror or exc})") from None
    print(f"saved {len(picks)} clips of the {args.split} split of {args.root} to {args.out}")
    return 0
