"""`quantize`: QAT fine-tuning of a float checkpoint into a fixed-point ("qat") checkpoint."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError


def register(sub) -> None:
    p = sub.add_parser("quantize", help="QAT: float checkpoint -> fixed-point checkpoint",
                       description="Fold BatchNorm, quantize SparkNet with power-of-two "
                                   "(shift-only) Brevitas quantizers and fine-tune it (QAT, "
                                   "hard gate with a straight-through estimator in the final "
                                   "phase); keeps the epoch with the best integer-model "
                                   "validation accuracy.")
    p.add_argument("--checkpoint", required=True, type=Path, help="float checkpoint ('train')")
    p.add_argument("--data", required=True, type=Path, action="append",
                   help="Speech Commands folder or offline corpus (train and validation splits); "
                        "repeat for several, as for train (the epoch kept is chosen on the "
                        "real-speech folders' validation clips when there are any)")
    p.add_argument("--holdout", type=float, default=None,
                   help="percent of held-out speakers of a folder without split lists "
                        "(default: what the float checkpoint was trained with)")
    p.add_argument("--weight-bits", type=int, default=8, help="weight bits, 4..8 (default 8)")
    p.add_argument("--act-bits", type=int, default=8, help="activation bits, 4..8 (default 8)")
    p.add_argument("--input-bits", type=int, default=None,
                   help="bits of the quantized MFCC input, 4..8 (default: --act-bits); 8 keeps "
                        "much more accuracy when the activations are narrower")
    p.add_argument("--epochs", type=int, default=6, help="QAT epochs (default 6)")
    p.add_argument("--ste-epochs", type=int, default=None,
                   help="final epochs with the hard STE gate (default half, at least 1)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=5e-4, help="Adam learning rate (cosine decay)")
    p.add_argument("--optimizer", choices=("adam", "sgd"), default="adam",
                   help="adam (default); BN is folded, so SGD needs a far smaller --lr")
    p.add_argument("--no-augment", action="store_true",
                   help="train on the stored features without waveform augmentation")
    p.add_argument("--seed", type=int, default=1948)
    p.add_argument("--out", required=True, type=Path, help="fixed-point checkpoint to write")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..checkpoint import load_checkpoint
    from ..quant.qat import QATRecipe, quantize
    from ..quant.qat_model import check_bits

    check_bits(args.weight_bits, args.act_bits, args.input_bits)
    if args.epochs < 1:
        raise UserError("--epochs must be at least 1")
    payload = load_checkpoint(args.checkpoint, kind="float")      # fail before loading any data
    for folder in args.data:
        if not folder.is_dir():
            raise UserError(f"{folder}: no such data folder")
    from ..data.mixture import DataMix
    from ..evaluate import checkpoint_holdouts
    holdout, folder_holdout = checkpoint_holdouts(payload)
    if args.holdout is not None:
        holdout, folder_holdout = args.holdout, {}
    train_set = DataMix(args.data, "train", seed=args.seed, holdout=holdout,
                        folder_holdout=folder_holdout)
    val_mix = DataMix(args.data, "validation", seed=args.seed, holdout=holdout,
                      folder_holdout=folder_holdout)
    val_set = ((val_mix.features[val_mix.real], val_mix.labels[val_mix.real])
               if bool(val_mix.real.any()) else val_mix)
    float_recipe = (payload.get("meta") or {}).get("recipe") or {}
    recipe = QATRecipe(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                       optimizer=args.optimizer, ste_epochs=args.ste_epochs,
                       augment=not args.no_augment, seed=args.seed,
                       balance=bool(float_recipe.get("balance", False)),
                       unknown_weight=float(float_recipe.get("unknown_weight", 1.0)),
                       unknown_by_word=bool(float_recipe.get("unknown_by_word", False)),
                       source_weight=dict(float_recipe.get("source_weight") or {}),
                       sparsity_weight=float(float_recipe.get("sparsity_weight", 1.0)))
    log = (lambda *a, **k: None) if args.json else print
    _, summary = quantize(args.checkpoint, train_set, val_set, args.weight_bits, args.act_bits,
                          out=args.out, recipe=recipe, log=log, input_bits=args.input_bits)
    if args.json:
        summary.pop("history", None)
        print(json.dumps(summary, indent=2))
    return 0
