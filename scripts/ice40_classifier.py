"""The classifier alone, synthesised for the iCE40 with each number of adders: the table of
docs/accelerator.md ("On the UltraPlus"). Every row is `synth_ice40 -dsp` of one classifier
(rtl/classifier.py for 12 adders, rtl/classifier_serial.py for fewer) with the shipped C = 8
export's columns and biases, tables in block RAM.

Usage: .venv/bin/python scripts/ice40_classifier.py [ADDERS ...]   (default 12 3 2)
"""
from __future__ import annotations

import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from amaranth.back import verilog

from ice40_modules import synth_one
from sparknet_hw import shipped
from sparknet_hw.quant.export_format import load_export
from sparknet_hw.rtl.classifier import Classifier
from sparknet_hw.rtl.classifier_serial import SerialClassifier
from sparknet_hw.rtl.config import HwConfig, build_plan
from sparknet_hw.rtl.record import N_CLASSES, N_GATES


def classifier(adders: int):
    model = load_export(shipped.int8_export(8))
    plan = build_plan(model, HwConfig(cols=2, rom_style="block"))
    args = (N_GATES, plan.T, N_CLASSES, plan.cls_wbits, plan.logit_bits, plan.cls_columns,
            plan.cls_bias)
    if adders == N_CLASSES:
        return Classifier(*args, rom_attrs=plan.rom_attrs)
    return SerialClassifier(*args, adders, rom_attrs=plan.rom_attrs)


def main() -> int:
    adders = [int(a) for a in sys.argv[1:]] or [12, 3, 2]
    with tempfile.TemporaryDirectory() as tmp:
        def one(n):
            work = Path(tmp) / f"a{n}"
            work.mkdir()
            (work / "cls.v").write_text(verilog.convert(classifier(n), name="cls",
                                                        emit_src=False))
            return synth_one(work / "cls.v", "cls", work)[0]
        with ThreadPoolExecutor(max_workers=2) as pool:
            rows = list(pool.map(one, adders))
    print(f"{'adders':>6} {'SB_LUT4':>8} {'SB_CARRY':>9} {'SB_DFF':>7} {'SB_RAM40_4K':>12} "
          f"{'cycles per open gate':>21}")
    for n, c in zip(adders, rows):
        print(f"{n:>6} {c['SB_LUT4']:>8,} {c['SB_CARRY']:>9,} {c['SB_DFF']:>7,} "
              f"{c['SB_RAM40_4K']:>12} {N_CLASSES // n:>21}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
