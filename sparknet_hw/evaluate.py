"""Accuracy, per-class accuracy, confusion matrix and gate sparsity of a checkpoint."""
from __future__ import annotations

import numpy as np

from .checkpoint import load_checkpoint
from .data.labels import LABELS


def confusion(labels, preds, n: int = len(LABELS)) -> np.ndarray:
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (np.asarray(labels), np.asarray(preds)), 1)
    return m


def per_class(matrix: np.ndarray) -> dict:
    rows = matrix.sum(axis=1)
    return {LABELS[i]: (float(matrix[i, i] / rows[i]) if rows[i] else None)
            for i in range(len(LABELS))}


def voice_group(voice: str) -> str:
    """Voices grouped for reporting: espeak by accent (its variants pooled), others as is."""
    engine, name = voice.split(":", 1)
    return f"{engine}:{name.split('+')[0]}" if engine == "espeak" else voice


def per_voice(data_root, examples, labels, preds) -> dict | None:
    """Accuracy per voice group of an offline corpus (None for other datasets)."""
    import json
    import os
    manifest = os.path.join(os.fspath(data_root), "corpus.json")
    try:
        with open(manifest, encoding="utf-8") as fh:
            speakers = json.load(fh).get("speakers")
    except (OSError, ValueError):
        return None
    if not speakers:
        return None
    hits: dict[str, list[int]] = {}
    for ex, y, p in zip(examples, labels, preds):
        spk = os.path.basename(ex.path).split("_nohash_")[0] if ex.path else None
        group = voice_group(speakers[spk]) if spk in speakers else "noise (_silence_)"
        hits.setdefault(group, []).append(int(y == p))
    return {g: {"accuracy": sum(h) / len(h), "samples": len(h)} for g, h in sorted(hits.items())}


def default_split(data_root) -> str:
    """"test" for a folder with split lists; "validation" (its held-out speakers) for one
    split by speaker, which has no test split."""
    from .data.speech_commands import split_mode
    return "test" if split_mode(data_root) == "lists" else "validation"


def checkpoint_holdout(payload: dict, data_root=None) -> float:
    """The held-out-speaker percentage the checkpoint was trained with for `data_root` (for a
    QAT checkpoint: its float source's), so that evaluation uses the same validation speakers."""
    return checkpoint_holdouts(payload)[1].get(_folder_name(data_root),
                                               checkpoint_holdouts(payload)[0])


def checkpoint_holdouts(payload: dict) -> tuple[float, dict[str, float]]:
    """(default percentage, {folder base name: percentage}) of the checkpoint's training."""
    from .data.speech_commands import HOLDOUT_PERCENT
    meta = payload.get("meta") or {}
    for recipe in (meta.get("recipe"), (meta.get("float_meta") or {}).get("recipe")):
        if isinstance(recipe, dict) and "holdout" in recipe:
            folders = recipe.get("folder_holdout") or {}
            return float(recipe["holdout"]), {k: float(v) for k, v in folders.items()}
    return float(HOLDOUT_PERCENT), {}


def _folder_name(root) -> str | None:
    import os
    return None if root is None else os.path.basename(os.path.abspath(os.fspath(root)))


def evaluate_checkpoint(path, data_root, split: str | None = None,
                        holdout: float | None = None) -> dict:
    from .data.dataset import FeatureDataset
    payload = load_checkpoint(path)
    split = split or default_split(data_root)
    holdout = checkpoint_holdout(payload, data_root) if holdout is None else holdout
    data = FeatureDataset(data_root, split, augment=False, holdout=holdout)
    features, labels = np.asarray(data.features), np.asarray(data.labels)
    if payload["kind"] == "qat":
        from .quant.evaluate import evaluate_qat  # float, QAT and integer side by side
        result = evaluate_qat(payload, features, labels, path=path)
    else:
        from .train import evaluate_features, load_float_model
        result = evaluate_features(load_float_model(payload, path), features, labels)
    preds = result.pop("predictions")
    result.pop("predictions_hard", None)
    matrix = confusion(labels, preds)
    result.update({"checkpoint": str(path), "kind": payload["kind"], "C": payload["C"],
                   "split": split, "holdout": holdout, "data": str(data_root), "labels": LABELS,
                   "per_class": per_class(matrix),
                   "confusion": matrix.tolist()})
    voices = per_voice(data_root, data.examples, labels, preds)
    if voices is not None:
        result["per_voice"] = voices
    return result


def format_report(result: dict) -> str:
    lines = [f"checkpoint {result['checkpoint']} ({result['kind']}, C={result['C']}), "
             f"{result['split']} split of {result.get('data', '?')}, {result['samples']} clips"]
    for key in ("accuracy", "accuracy_hard_gate", "accuracy_float", "accuracy_qat", "accuracy_int"):
        if key in result:
            lines.append(f"  {key:<20} {100 * result[key]:6.2f} %")
    lines.append(f"  {'gate_sparsity':<20} {100 * result['gate_sparsity']:6.2f} % of z is zero "
                 f"(hard gate)")
    if "frames_skipped" in result:
        lines.append(f"  {'frames_skipped':<20} {100 * result['frames_skipped']:6.2f} % of the "
                     f"frames have all 32 gate bits zero (integer model; the classifier skips them)")
    lines.append("per-class accuracy:")
    lines.append("  " + "  ".join(f"{k}={'n/a' if v is None else f'{100 * v:.1f}'}"
                                  for k, v in result["per_class"].items()))
    if result.get("per_voice"):
        lines.append("per-voice accuracy (offline corpus):")
        lines.extend(f"  {g:<34} {100 * v['accuracy']:6.2f} %  ({v['samples']} clips)"
                     for g, v in result["per_voice"].items())
    labels = [label.strip("_")[:5] for label in result["labels"]]
    lines.append("confusion (rows: true, columns: predicted):")
    lines.append("       " + "".join(f"{label:>6}" for label in labels))
    for label, row in zip(labels, result["confusion"]):
        lines.append(f"{label:>7}" + "".join(f"{v:>6}" for v in row))
    return "\n".join(lines)
