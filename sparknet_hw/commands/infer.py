"""`infer`: predicted keyword and score for each wav file."""
from __future__ import annotations

from pathlib import Path

from ..checkpoint import shipped_checkpoint


def register(sub) -> None:
    p = sub.add_parser("infer", help="label wav files",
                       description="Predict the keyword of each 1-s, 16 kHz mono wav file "
                                   "(other rates are resampled).")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="checkpoint file (default: the shipped C=8 float checkpoint)")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE.wav")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..inference import Classifier
    classifier = Classifier.from_checkpoint(args.checkpoint or shipped_checkpoint(8))
    for path in args.files:
        label, score = classifier.classify_file(path)
        print(f"{path}\t{label}\t{score:.3f}")
    return 0
