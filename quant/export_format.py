"""Reading and validating the export file (see docs/integer-model.md).

`load_export` returns the validated JSON dict (what producers and tools edit and write back);
the typed, immutable view of it is `Export` in quant/export_types.py (`Export.load(path)`,
`as_export(dict)`), which the consumers that walk the network use.
"""
from __future__ import annotations

import json
from pathlib import Path

from sparknet_hw.errors import UserError

FORMAT = "sparknet-hw-export"
VERSION = 2    # 2: input.frac is one frac per feature
EXPORT_FILENAME = "sparknet_export.json"


class ExportError(UserError):
    pass


_BLOCK_FIELDS = {"dw": ("weight", "shift", "lo", "hi", "acc_bits"),
                 "pw": ("weight", "bias", "shift", "lo", "hi", "acc_bits"),
                 "res": ("weight", "bias", "shift", "lo", "hi", "acc_bits"),
                 "add": ("shift", "lo", "hi")}


def _require(obj: dict, keys, where: str, path) -> None:
    for key in keys:
        if key not in obj:
            raise ExportError(f"{path}: export file has no '{where}{key}'; re-export it with "
                              f"'python -m sparknet_hw export'")


def validate(model: dict, path="export") -> dict:
    if not isinstance(model, dict) or model.get("format") != FORMAT:
        raise ExportError(f"{path}: not a sparknet-hw export file (format != {FORMAT!r})")
    if model.get("version") != VERSION:
        raise ExportError(f"{path}: export format version {model.get('version')} is not supported "
                          f"(this sparknet-hw reads version {VERSION}); re-export the checkpoint")
    _require(model, ("C", "features", "frames", "labels", "weight_bits", "act_bits", "input",
                     "blocks", "head", "classifier"), "", path)
    _require(model["input"], ("frac", "lo", "hi"), "input.", path)
    fracs = model["input"]["frac"]
    if not (isinstance(fracs, list) and len(fracs) == model["features"]
            and all(isinstance(f, int) for f in fracs)):
        raise ExportError(f"{path}: input.frac must list one integer frac per feature "
                          f"({model['features']}); re-export the checkpoint")
    if len(model["blocks"]) != 4:
        raise ExportError(f"{path}: expected 4 blocks, found {len(model['blocks'])}")
    for i, block in enumerate(model["blocks"]):
        _require(block, ("kernel", "c_in", "c_out", "dw", "pw"), f"blocks[{i}].", path)
        for part, fields in _BLOCK_FIELDS.items():
            if block.get(part) is not None:
                _require(block[part], fields, f"blocks[{i}].{part}.", path)
    _require(model["head"], ("weight", "bias", "acc_bits"), "head.", path)
    _require(model["classifier"], ("weight", "bias", "acc_bits"), "classifier.", path)
    return model


def load_export(path) -> dict:
    """Load an export file (or a folder holding one) and check it is complete: the JSON dict
    (`Export.load(path)` in quant/export_types.py gives the typed object)."""
    path = Path(path)
    if path.is_dir():
        path = path / EXPORT_FILENAME
    if not path.is_file():
        raise ExportError(f"{path}: no such export file; make one with "
                          f"'python -m sparknet_hw export --checkpoint CKPT --out DIR'")
    try:
        model = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ExportError(f"{path}: export file is not valid JSON ({exc}); re-export it") from None
    return validate(model, path)
