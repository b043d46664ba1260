"""Checkpoint files: a torch-saved dict with a kind, the width and the weights.

kind "float": a trained SparkNet (sparknet_hw.model). kind "qat": a Brevitas fixed-point
SparkNet (sparknet_hw.quant), which also records its bit widths.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .errors import UserError
from .model import WIDTHS

FORMAT = "sparknet-hw-checkpoint"


class CheckpointError(UserError):
    pass


def save_checkpoint(path, kind: str, C: int, state_dict: dict, **meta) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "kind": kind, "C": C,
               "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()}, "meta": meta}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)  # never leave a half-written checkpoint under the real name
    return path


def load_checkpoint(path, kind: str | None = None, C: int | None = None) -> dict:
    """Load and check a checkpoint; raise CheckpointError with what to do on any problem."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file; all mean the same here
        raise CheckpointError(f"{path}: not a readable checkpoint ({str(exc).splitlines()[0][:80]}); "
                              f"it may be truncated or corrupt, re-create it with 'train'") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a sparknet-hw checkpoint (no '{FORMAT}' header)")
    if payload.get("C") not in WIDTHS:
        raise CheckpointError(f"{path}: checkpoint width C={payload.get('C')} is not one of {list(WIDTHS)}")
    if kind is not None and payload.get("kind") != kind:
        hint = {"float": "pass a float checkpoint from 'train' (not 'train --qat')",
                "qat": "pass a fixed-point checkpoint made by 'train --qat' (or 'quantize')"}.get(kind, "")
        raise CheckpointError(f"{path}: this is a {payload.get('kind')} checkpoint, a {kind} one is "
                              f"needed here; {hint}")
    if C is not None and payload["C"] != C:
        raise CheckpointError(f"{path}: checkpoint has C={payload['C']} but C={C} was asked for")
    return payload


def shipped_checkpoint(C: int, kind: str = "float") -> Path:
    from . import shipped
    return shipped.float_checkpoint(C) if kind == "float" else shipped.int8_checkpoint(C)
