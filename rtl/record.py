"""The result record the accelerator sends after each inference (one 32-bit word per field).

Shared by the RTL (which emits it), the cocotb monitor and the host driver (which decode it).
"""
from __future__ import annotations

from sparknet_hw.quant.export_types import ExportLike, as_export

N_CLASSES = 12
N_GATES = 32
# the MAC totals are not separate counters: the record decoder sums the PE layers' counters
COUNTER_FIELDS = ("cycles", "frames_skipped")
LAYER_FIELDS = ("cycles", "issued", "gated")
# the classifier adds `adders` classes of a column per busy cycle (all 12, or fewer over
# several cycles: rtl/classifier_serial.py), so the record carries its cycles and that constant
# and the decoder derives its issued and gated additions
CLASSIFIER_FIELDS = ("cycles", "adders")


def layer_names(model: ExportLike) -> list[str]:
    """Hardware schedule order of the layers whose counters the record carries."""
    names = []
    for i, block in enumerate(as_export(model).blocks, start=1):
        names += [f"block{i}.dw", f"block{i}.pw"]
        if block.has_res:
            names.append(f"block{i}.res")
    return names + ["head", "classifier"]


def record_fields(model: ExportLike) -> list[str]:
    fields = [f"logit{k}" for k in range(N_CLASSES)] + ["class"]
    fields += [f"gate_count{f}" for f in range(N_GATES)]
    fields += list(COUNTER_FIELDS)
    for name in layer_names(model)[:-1]:
        fields += [f"{name}.{what}" for what in LAYER_FIELDS]
    return fields + [f"classifier.{what}" for what in CLASSIFIER_FIELDS]


def to_signed32(word: int) -> int:
    word &= 0xFFFFFFFF
    return word - (1 << 32) if word & 0x80000000 else word


def decode_record(model: ExportLike, words: list[int]) -> dict:
    model = as_export(model)
    fields = record_fields(model)
    if len(words) != len(fields):
        raise ValueError(f"result record has {len(words)} words, expected {len(fields)}")
    rec = dict(zip(fields, (w & 0xFFFFFFFF for w in words)))
    pe_layers = layer_names(model)[:-1]                 # all but the classifier
    busy = rec["classifier.cycles"]
    adds = rec["classifier.adders"] * busy
    classifier = {"cycles": busy, "issued": adds,
                  "gated": N_CLASSES * N_GATES * model.frames - adds}
    return {
        "macs_issued": sum(rec[f"{name}.issued"] for name in pe_layers),
        "macs_gated": sum(rec[f"{name}.gated"] for name in pe_layers),
        "logits": [to_signed32(rec[f"logit{k}"]) for k in range(N_CLASSES)],
        "class": rec["class"],
        "gate_counts": [rec[f"gate_count{f}"] for f in range(N_GATES)],
        **{k: rec[k] for k in COUNTER_FIELDS},
        "layers": {**{name: {what: rec[f"{name}.{what}"] for what in LAYER_FIELDS}
                      for name in pe_layers}, "classifier": classifier},
    }
