"""The export as typed, immutable objects (docs/integer-model.md, "Export file").

    export = Export.load("sparknet_export.json")      # or Export.from_dict(d), as_export(d)
    export.blocks[1].res.shift, export.blocks[0].dw.w  # int, read-only int64 array
    export.to_dict()                                   # the JSON document again, exactly

The JSON file stays the contract; these frozen dataclasses are how the code reads it.

Who makes them: `quant/export.export_model` builds the Export directly from the Brevitas
model, layer by layer (acc_bits from quant/accumulators.py), and the build pipeline carries
that object (or the one `as_export` makes of a file) through every stage. Two producers still
work on the JSON document, on purpose: the test stimuli (quant/random_export.py and
sim/stimuli.py fit biases and shifts in place, then `annotate_acc_bits` recomputes the widths),
and the error tests, which corrupt files. `load_export(path)` (quant/export_format.py)
returns that validated document. Every consumer calls `as_export(model)` once at its entry,
which takes an `Export` as it is or validates and converts a dict (with the ExportError
messages of `validate`), and then works on the typed object. A dict edited after conversion
is not seen by the Export made from it: convert again (as_export never caches).

Numbers are stored as Python ints and (nested) tuples, so the objects compare, hash and
round-trip exactly; the layers give read-only int64 numpy views for arithmetic (`w`, `b`,
`s`). Optional fields (the informational fracs) are None when the file has none, and
`to_dict` leaves them out again. `source` (informational, free-form) is kept as a plain
dict copy and takes no part in comparisons.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import cached_property
from typing import Union

import numpy as np

from .export_format import FORMAT, VERSION, load_export, validate

Ints = tuple[int, ...]
Matrix = tuple[Ints, ...]


def to_ints(values) -> Ints:
    return tuple(int(v) for v in values)


def to_matrix(rows) -> Matrix:
    return tuple(to_ints(row) for row in rows)


def _array(values) -> np.ndarray:
    a = np.asarray(values, dtype=np.int64)
    a.flags.writeable = False
    return a


def _opt(value, convert=int):
    return None if value is None else convert(value)


def _put(d: dict, key: str, value) -> None:
    """Set an optional field (left out when None)."""
    if value is not None:
        d[key] = list(value) if isinstance(value, tuple) else value


class _Weights:
    """`w`: the weights as a read-only int64 array, made once (for the arithmetic)."""

    @cached_property
    def w(self) -> np.ndarray:
        return _array(self.weight)


class _WeightsBias(_Weights):
    """`w` and `b`: weights and biases as read-only int64 arrays."""

    @cached_property
    def b(self) -> np.ndarray:
        return _array(self.bias)


@dataclass(frozen=True)
class InputFormat:
    """x0[f, t] = clamp(round_half_even(x[f, t] * 2**frac[f]), lo, hi)."""
    frac: Ints                # one per feature
    lo: int
    hi: int

    @cached_property
    def fracs(self) -> np.ndarray:
        return _array(self.frac)

    @classmethod
    def from_dict(cls, d: dict) -> "InputFormat":
        return cls(to_ints(d["frac"]), int(d["lo"]), int(d["hi"]))

    def to_dict(self) -> dict:
        return {"frac": list(self.frac), "lo": self.lo, "hi": self.hi}


@dataclass(frozen=True)
class DepthwiseLayer(_Weights):
    """d[c, t] = requant(sum_k weight[c][k] * a[c, t+k-K//2], shift[c], lo, hi)."""
    weight: Matrix            # [c_in][K]
    shift: Ints               # [c_in], per channel
    lo: int
    hi: int
    acc_bits: int
    weight_frac: Ints | None = None     # informational

    @cached_property
    def s(self) -> np.ndarray:
        return _array(self.shift)

    @classmethod
    def from_dict(cls, d: dict) -> "DepthwiseLayer":
        return cls(to_matrix(d["weight"]), to_ints(d["shift"]), int(d["lo"]), int(d["hi"]),
                   int(d["acc_bits"]), _opt(d.get("weight_frac"), to_ints))

    def to_dict(self) -> dict:
        d = {"weight": [list(r) for r in self.weight], "shift": list(self.shift),
             "lo": self.lo, "hi": self.hi}
        _put(d, "weight_frac", self.weight_frac)
        d["acc_bits"] = self.acc_bits
        return d


@dataclass(frozen=True)
class DenseLayer(_WeightsBias):
    """A 1x1 layer (pointwise or residual): requant(weight @ a + bias, shift, lo, hi)."""
    weight: Matrix            # [c_out][c_in]
    bias: Ints                # [c_out]
    shift: int
    lo: int
    hi: int
    acc_bits: int
    weight_frac: int | None = None      # informational

    @classmethod
    def from_dict(cls, d: dict) -> "DenseLayer":
        return cls(to_matrix(d["weight"]), to_ints(d["bias"]), int(d["shift"]), int(d["lo"]),
                   int(d["hi"]), int(d["acc_bits"]), _opt(d.get("weight_frac")))

    def to_dict(self) -> dict:
        d = {"weight": [list(r) for r in self.weight], "bias": list(self.bias),
             "shift": self.shift, "lo": self.lo, "hi": self.hi}
        _put(d, "weight_frac", self.weight_frac)
        d["acc_bits"] = self.acc_bits
        return d


@dataclass(frozen=True)
class ResidualAdd:
    """y = requant(p + r, shift, lo, hi) (the ReLU is lo = 0)."""
    shift: int
    lo: int
    hi: int
    frac: int | None = None             # informational: the scale of p and r

    @classmethod
    def from_dict(cls, d: dict) -> "ResidualAdd":
        return cls(int(d["shift"]), int(d["lo"]), int(d["hi"]), _opt(d.get("frac")))

    def to_dict(self) -> dict:
        d = {"shift": self.shift, "lo": self.lo, "hi": self.hi}
        _put(d, "frac", self.frac)
        return d


@dataclass(frozen=True)
class Block:
    kernel: int
    c_in: int
    c_out: int
    dw: DepthwiseLayer
    pw: DenseLayer
    res: DenseLayer | None = None       # blocks 2..4
    add: ResidualAdd | None = None      # blocks 2..4
    in_frac: int | None = None          # informational
    out_frac: int | None = None         # informational

    @property
    def has_res(self) -> bool:
        return self.res is not None

    @property
    def out_range(self) -> tuple[int, int]:
        """(lo, hi) of the block output: the add's clamp, or the pointwise's without residual."""
        last = self.add if self.has_res else self.pw
        return last.lo, last.hi

    @classmethod
    def from_dict(cls, d: dict) -> "Block":
        res, add = d.get("res"), d.get("add")
        return cls(int(d["kernel"]), int(d["c_in"]), int(d["c_out"]),
                   DepthwiseLayer.from_dict(d["dw"]), DenseLayer.from_dict(d["pw"]),
                   None if res is None else DenseLayer.from_dict(res),
                   None if add is None else ResidualAdd.from_dict(add),
                   _opt(d.get("in_frac")), _opt(d.get("out_frac")))

    def to_dict(self) -> dict:
        d = {"kernel": self.kernel, "c_in": self.c_in, "c_out": self.c_out,
             "dw": self.dw.to_dict()}
        _put(d, "in_frac", self.in_frac)
        _put(d, "out_frac", self.out_frac)
        d["pw"] = self.pw.to_dict()
        d["res"] = None if self.res is None else self.res.to_dict()
        d["add"] = None if self.add is None else self.add.to_dict()
        return d


@dataclass(frozen=True)
class Head(_WeightsBias):
    """head_acc = weight @ y4 + bias; the gate is head_acc > 0."""
    weight: Matrix            # [features][C]
    bias: Ints                # [features]
    acc_bits: int
    acc_frac: int | None = None         # informational

    @classmethod
    def from_dict(cls, d: dict) -> "Head":
        return cls(to_matrix(d["weight"]), to_ints(d["bias"]), int(d["acc_bits"]),
                   _opt(d.get("acc_frac")))

    def to_dict(self) -> dict:
        d = {"weight": [list(r) for r in self.weight], "bias": list(self.bias)}
        _put(d, "acc_frac", self.acc_frac)
        d["acc_bits"] = self.acc_bits
        return d


@dataclass(frozen=True)
class Classifier(_WeightsBias):
    """logits = weight @ gate_counts + bias."""
    weight: Matrix            # [classes][features]
    bias: Ints                # [classes]
    acc_bits: int
    out_frac: int | None = None         # logit = int * 2**-out_frac

    @classmethod
    def from_dict(cls, d: dict) -> "Classifier":
        return cls(to_matrix(d["weight"]), to_ints(d["bias"]), int(d["acc_bits"]),
                   _opt(d.get("out_frac")))

    def to_dict(self) -> dict:
        d = {"weight": [list(r) for r in self.weight], "bias": list(self.bias)}
        _put(d, "out_frac", self.out_frac)
        d["acc_bits"] = self.acc_bits
        return d


@dataclass(frozen=True)
class Export:
    C: int
    features: int
    frames: int
    labels: tuple[str, ...]
    weight_bits: int
    act_bits: int
    input: InputFormat
    blocks: tuple[Block, ...]
    head: Head
    classifier: Classifier
    source: dict | None = field(default=None, compare=False, hash=False)

    @classmethod
    def from_dict(cls, d: dict, path="export") -> "Export":
        """Validate the JSON document (ExportError naming `path` and the missing field) and
        convert it."""
        validate(d, path)
        return cls(int(d["C"]), int(d["features"]), int(d["frames"]),
                   tuple(str(s) for s in d["labels"]), int(d["weight_bits"]),
                   int(d["act_bits"]), InputFormat.from_dict(d["input"]),
                   tuple(Block.from_dict(b) for b in d["blocks"]), Head.from_dict(d["head"]),
                   Classifier.from_dict(d["classifier"]),
                   copy.deepcopy(d["source"]) if "source" in d else None)

    @classmethod
    def load(cls, path) -> "Export":
        """An export file (or a folder holding one), validated and converted."""
        return cls.from_dict(load_export(path), path)

    def to_dict(self) -> dict:
        """The JSON document (key order as quant/export.py writes it)."""
        d = {"format": FORMAT, "version": VERSION, "C": self.C, "features": self.features,
             "frames": self.frames, "labels": list(self.labels),
             "weight_bits": self.weight_bits, "act_bits": self.act_bits,
             "input": self.input.to_dict(), "blocks": [b.to_dict() for b in self.blocks],
             "head": self.head.to_dict(), "classifier": self.classifier.to_dict()}
        if self.source is not None:
            d["source"] = copy.deepcopy(self.source)
        return d

    def layer_ranges(self) -> list[tuple[int, int]]:
        """(lo, hi) of every block's input: the export input, then the block outputs."""
        return [(self.input.lo, self.input.hi)] + [b.out_range for b in self.blocks[:-1]]


ExportLike = Union[Export, dict]


def as_export(model: ExportLike, path="export") -> Export:
    """An Export as it is; a dict validated and converted (no caching: a dict edited later
    needs converting again)."""
    if isinstance(model, Export):
        return model
    return Export.from_dict(model, path)


__all__ = ["InputFormat", "DepthwiseLayer", "DenseLayer", "ResidualAdd", "Block", "Head",
           "Classifier", "Export", "ExportLike", "as_export", "to_ints", "to_matrix"]
