"""C=8 accuracy on held-out real speakers against the number of real training speakers.

Trains float SparkNet-C on the offline corpus plus a nested fraction of the real training
speakers (`train --speaker-fraction F`, the real-speech recipe, the same epochs for every
point), evaluates each on the held-out speakers of the real folders, and writes
OUT/learning_curve.json and OUT/learning_curve.png.  The fraction 0 point is the corpus
alone.  About 6-12 minutes per point on one core at 40 epochs.

Usage: .venv/bin/python scripts/learning_curve.py [--corpus DIR] [--real DIR]
       [--fractions 0 0.25 0.5 1] [--epochs 40] [--jobs 2] [--out build/learning_curve]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def train_point(args, fraction: float) -> dict:
    ckpt = Path(args.out) / f"C{args.C}_f{fraction:g}.pt"
    if not ckpt.is_file():
        cmd = [sys.executable, "-m", "sparknet_hw", "train", "--C", str(args.C),
               "--data", args.corpus, "--data", f"{args.real}/gsc-train",
               "--data", f"{args.real}/gsc-dev", "--recipe", "real-speech",
               "--epochs", str(args.epochs), "--seed", str(args.seed),
               "--speaker-fraction", str(fraction), "--out", str(ckpt), "--json"]
        env = dict(os.environ, OMP_NUM_THREADS="1")
        log = Path(args.out) / f"C{args.C}_f{fraction:g}.log"
        with open(log, "w") as fh:
            subprocess.run(cmd, check=True, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    import torch
    payload = torch.load(ckpt, map_location="cpu", weights_only=True)
    meta = payload["meta"]
    speakers = sum(s["speakers"] for s in meta["sources"]["train"] if not s["synthetic"])
    from sparknet_hw.evaluate import evaluate_checkpoint
    dev = evaluate_checkpoint(ckpt, f"{args.real}/gsc-dev", "validation")
    kw = evaluate_checkpoint(ckpt, f"{args.real}/gsc-train", "validation")
    return {"fraction": fraction, "real_training_speakers": speakers,
            "epoch": meta["epoch"], "gsc_dev_validation": dev["accuracy"],
            "gsc_dev_validation_hard_gate": dev["accuracy_hard_gate"],
            "gsc_train_validation": kw["accuracy"], "checkpoint": str(ckpt)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", default="build/corpus")
    p.add_argument("--real", default="../shared/data")
    p.add_argument("--C", type=int, default=8)
    p.add_argument("--fractions", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0])
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--seed", type=int, default=1948)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", default="build/learning_curve")
    args = p.parse_args()
    os.chdir(ROOT)
    for d in ("gsc-train", "gsc-dev"):
        if not Path(args.real, d).is_dir():
            print(f"learning_curve: {args.real}/{d} (real Speech Commands clips) is needed",
                  file=sys.stderr)
            return 2
    Path(args.out).mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(lambda f: train_point(args, f), args.fractions))
    rows.sort(key=lambda r: r["real_training_speakers"])
    (Path(args.out) / "learning_curve.json").write_text(json.dumps(rows, indent=2))
    print(f"C={args.C}, {args.epochs} epochs, real-speech recipe; accuracy on held-out speakers")
    print(f"{'real speakers':>14} {'gsc-dev held-out %':>19} {'gsc-train held-out %':>21}")
    for r in rows:
        print(f"{r['real_training_speakers']:>14} {100 * r['gsc_dev_validation']:>19.1f} "
              f"{100 * r['gsc_train_validation']:>21.1f}")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.6))
    xs = [r["real_training_speakers"] for r in rows]
    ax.plot(xs, [100 * r["gsc_dev_validation"] for r in rows], "o-",
            label="v0.02 test speakers held out (12 classes)")
    ax.plot(xs, [100 * r["gsc_train_validation"] for r in rows], "s--",
            label="v0.01 speakers held out (mostly keywords)")
    ax.set_xlabel("real training speakers (plus the offline TTS corpus)")
    ax.set_ylabel("accuracy %")
    ax.set_title(f"SparkNet C={args.C}, float, {args.epochs} epochs")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(Path(args.out) / "learning_curve.png", dpi=120)
    print(f"wrote {args.out}/learning_curve.json and learning_curve.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
