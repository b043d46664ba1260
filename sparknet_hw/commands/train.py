"""`train`: float SparkNet with the authors' recipe on a Speech-Commands-shaped folder."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..data.speech_commands import HOLDOUT_PERCENT
from ..errors import UserError
from ..model import UnsupportedWidth, check_width
from ..train import OPTIMIZERS, PRESETS, Recipe, train


def register(sub) -> None:
    p = sub.add_parser("train", help="train float SparkNet (authors' recipe)",
                       description="Train SparkNet-C with SGD, the poly hold-decay schedule and "
                                   "the sparsity loss; keeps the checkpoint with the best "
                                   "validation loss.")
    p.add_argument("--C", type=int, required=True, help="network width: 4, 8, 16 or 32")
    p.add_argument("--data", required=True, type=Path, action="append",
                   help="Speech Commands folder (.wav or .flac) or offline corpus ('data synth'); "
                        "repeat to train on several (e.g. the corpus and real clips)")
    p.add_argument("--recipe", choices=("authors", "real-speech"), default="authors",
                   help="'authors' (default): the released config (time shift, white noise, "
                        "real background noise for C=32); 'real-speech': the same with every "
                        "class drawn equally often, what the shipped checkpoints use "
                        "(docs/training.md); the flags below change single parts")
    p.add_argument("--holdout", type=parse_holdout, action="append", default=[],
                   metavar="[FOLDER=]PERCENT",
                   help="percent of speakers held out for validation in a folder without "
                        f"split lists (default {HOLDOUT_PERCENT:g}); FOLDER=PERCENT sets it for "
                        "the folder of that base name only (e.g. gsc-train=0 trains on all of "
                        "it); repeatable")
    p.add_argument("--balance", action=argparse.BooleanOptionalAction, default=None,
                   help="draw every class equally often (overrides the recipe)")
    p.add_argument("--unknown-weight", type=float, default=None, metavar="W",
                   help="with balancing, draw _unknown_ W times as often as each other class "
                        "(default 1)")
    p.add_argument("--source-weight", type=parse_source_weight, action="append", default=[],
                   metavar="FOLDER=W",
                   help="with balancing, draw the clips of the folder of that base name W times "
                        "as often as the other folders' clips of the same class (each class "
                        "keeps its share); repeatable")
    p.add_argument("--unknown-by-word", action=argparse.BooleanOptionalAction, default=None,
                   help="with balancing, draw each word of _unknown_ equally often within its "
                        "folder (default: clip by clip)")
    p.add_argument("--label-smoothing", type=float, default=None, metavar="E",
                   help="train on targets smoothed by E (0 <= E < 1; default 0): the true "
                        "class gets 1 - E + E/12, every class E/12; validation is unsmoothed")
    p.add_argument("--gate-noise", type=float, default=None, metavar="SIGMA",
                   help="std of the Gaussian noise on the training gate and in the sparsity "
                        "loss (> 0; default the authors' 0.5); inference uses the hard gate")
    p.add_argument("--sparsity-weight", type=float, default=None, metavar="W",
                   help="weight of the sparsity loss next to the cross-entropy's 100 (>= 0; "
                        "default the authors' 1): lower keeps more gates open")
    p.add_argument("--p-reversed", type=float, default=None, metavar="P",
                   help="play keyword clips backwards with probability P and train them as "
                        "_unknown_ (not on/no; default 0)")
    p.add_argument("--spec-augment", action=argparse.BooleanOptionalAction, default=None,
                   help="SpecAugment masks on the MFCC (overrides the recipe)")
    p.add_argument("--p-background", type=float, default=None,
                   help="fraction of clips mixed with real background noise at 0..20 dB SNR "
                        "(overrides the recipe)")
    p.add_argument("--speed", type=float, default=None,
                   help="speed perturbation 1 +- SPEED on half the clips, 0 for none "
                        "(overrides the recipe)")
    p.add_argument("--ema", type=float, default=None, metavar="DECAY",
                   help="keep and save an exponential moving average of the weights with this "
                        "decay per batch (e.g. 0.999; overrides the recipe)")
    p.add_argument("--precondition", action=argparse.BooleanOptionalAction, default=None,
                   help="train the first layer as if every MFCC coefficient had unit RMS "
                        "(same network and checkpoint; docs/training.md)")
    p.add_argument("--teacher", type=Path, default=None, metavar="CKPT",
                   help="float checkpoint of a trained SparkNet to distil from (it must have "
                        "been trained with the same data folders, holdout and seed)")
    p.add_argument("--distill-weight", type=float, default=None,
                   help="share of the distillation term in the loss (default 0.5)")
    p.add_argument("--distill-temperature", type=float, default=None,
                   help="softmax temperature of the distillation term (default 4)")
    p.add_argument("--speaker-fraction", type=float, default=1.0,
                   help="keep this fraction of the real training speakers of each folder split "
                        "by speaker (a fixed, nested subset; for learning curves; default 1)")
    p.add_argument("--epochs", type=int, default=200,
                   help="epochs (default 200, the authors' recipe; the shipped checkpoints used "
                        "80-100, scripts/make_shipped.sh)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--weight-decay", type=float, default=None, metavar="WD",
                   help=f"weight decay (>= 0; default the authors' {Recipe.weight_decay:g})")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=None,
                   help="sgd with momentum 0.9 (the authors', default) or adamw; --lr sets "
                        "the peak rate of either")
    p.add_argument("--seed", type=int, default=1948)
    p.add_argument("--out", type=Path, default=None,
                   help="checkpoint path (default sparknet_C{C}.pt in the current folder)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def parse_holdout(text: str) -> tuple[str | None, float]:
    """'15' -> (None, 15.0); 'gsc-train=0' -> ('gsc-train', 0.0)."""
    name, _, value = text.rpartition("=")
    try:
        percent = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected PERCENT or FOLDER=PERCENT") from None
    if not 0 <= percent < 100:
        raise argparse.ArgumentTypeError(
            f"{text!r}: the holdout is a percentage of speakers, 0 <= holdout < 100")
    return (name or None), percent


def parse_source_weight(text: str) -> tuple[str, float]:
    """'gsc-dev=2' -> ('gsc-dev', 2.0)."""
    name, _, value = text.rpartition("=")
    try:
        weight = float(value)
        if name and weight > 0:
            return Path(name).name, weight
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(
        f"{text!r}: expected FOLDER=W, a folder's base name and a weight above 0")


def holdout_settings(entries) -> tuple[float, dict[str, float]]:
    """The default percentage and the per-folder ones from the --holdout entries."""
    default = HOLDOUT_PERCENT
    folders = {}
    for name, percent in entries:
        if name is None:
            default = percent
        else:
            folders[Path(name).name] = percent
    return default, folders


def run(args) -> int:
    try:
        check_width(args.C)
    except UnsupportedWidth as exc:
        raise UserError(str(exc)) from None
    if args.epochs < 1:
        raise UserError("--epochs must be at least 1")
    out = args.out or Path(f"sparknet_C{args.C}.pt")
    if not 0 <= args.speaker_fraction <= 1:
        raise UserError("--speaker-fraction is a fraction of speakers: 0 <= f <= 1")
    holdout, folder_holdout = holdout_settings(args.holdout)
    source_weight = dict(args.source_weight)
    folders = {Path(d).resolve().name for d in args.data}
    for flag, named in (("--holdout", folder_holdout), ("--source-weight", source_weight)):
        unknown = sorted(set(named) - folders)
        if unknown:
            raise UserError(f"{flag} names {', '.join(unknown)}, which is not the base name of "
                            f"any --data folder")
    overrides = {k: v for k, v in (("balance", args.balance), ("spec_augment", args.spec_augment),
                                   ("p_background", args.p_background), ("ema", args.ema),
                                   ("unknown_weight", args.unknown_weight),
                                   ("unknown_by_word", args.unknown_by_word),
                                   ("p_reversed", args.p_reversed),
                                   ("precondition", args.precondition),
                                   ("label_smoothing", args.label_smoothing),
                                   ("gate_noise", args.gate_noise),
                                   ("sparsity_weight", args.sparsity_weight),
                                   ("weight_decay", args.weight_decay),
                                   ("optimizer", args.optimizer),
                                   ("distill_weight", args.distill_weight),
                                   ("distill_temperature", args.distill_temperature))
                 if v is not None}
    if source_weight:
        overrides["source_weight"] = source_weight
    if args.teacher is not None:
        overrides["teacher"] = str(args.teacher)
    elif args.distill_weight is not None or args.distill_temperature is not None:
        raise UserError("--distill-weight and --distill-temperature need --teacher CKPT")
    if args.speed is not None:
        if not 0 <= args.speed < 0.5:
            raise UserError("--speed is a relative change: 0 <= speed < 0.5")
        overrides.update(speed=args.speed, p_speed=0.5 if args.speed > 0 else 0.0)
    if args.unknown_weight is not None and not args.unknown_weight > 0:
        raise UserError("--unknown-weight is a relative weight: it must be above 0")
    if args.label_smoothing is not None and not 0 <= args.label_smoothing < 1:
        raise UserError("--label-smoothing is a share of the target: 0 <= E < 1")
    if args.gate_noise is not None and not args.gate_noise > 0:
        raise UserError("--gate-noise is a standard deviation: it must be above 0")
    if args.sparsity_weight is not None and not args.sparsity_weight >= 0:
        raise UserError("--sparsity-weight is a loss weight: it must be 0 or above")
    if args.weight_decay is not None and not args.weight_decay >= 0:
        raise UserError("--weight-decay must be 0 or above")
    if args.p_reversed is not None and not 0 <= args.p_reversed <= 1:
        raise UserError("--p-reversed is a probability: 0 <= p <= 1")
    if args.p_background is not None and not 0 <= args.p_background <= 1:
        raise UserError("--p-background is a probability: 0 <= p <= 1")
    recipe = PRESETS[args.recipe](epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                  seed=args.seed, holdout=holdout,
                                  folder_holdout=folder_holdout,
                                  speaker_fraction=args.speaker_fraction, **overrides)
    if (recipe.unknown_weight != 1.0 or recipe.unknown_by_word or recipe.source_weight) \
            and not recipe.balance:
        raise UserError("--unknown-weight, --unknown-by-word and --source-weight weigh the "
                        "class-balanced draw: use them with --recipe real-speech or --balance")
    summary = train(args.C, args.data, out, recipe,
                    log=(lambda *a, **k: None) if args.json else print)
    if args.json:
        print(json.dumps(summary, indent=2))
    return 0
