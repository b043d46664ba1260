"""The `build` and `bench` flows: export -> Verilog -> cocotb verification on real clips ->
bitstream -> report, and the performance table built from the same stages.

common.py   options (BuildOptions), the resolved Plan, the typed stage outputs, BuildError,
            progress and atomic-JSON helpers: what the other three share
build.py    prepare (every check before a stage runs), the stages export / rtl / verify /
            synth, the resource check before synthesis (in the rtl stage), the default
            accelerator per FPGA family, run_build (the driver)
report.py   report.json / report.md / plots of a build, the roofline, the PLL hint
bench.py    one bench row per width (the build stages plus a no-skip simulation), the row
            cache keyed on the design code, the table

The names below are re-exported for the commands and the tests. A name is looked up in the
module that uses it: to replace a stage or a helper in a test, patch it there
(`sparknet_hw.pipeline.build.stage_verify`, `sparknet_hw.pipeline.bench._design_code_fingerprint`),
not on this package.
"""
from .bench import (BENCH_TARGETS, bench_one, format_bench, format_predictions, predict_row,
                    run_bench)
from .build import (DEFAULT_HW, ECP5_WIDE, ECP5_WIDE_C, ICE40_WIDE, ICE40_WIDE_C,
                    SIM_DIVISOR_NOTE, check_resources, default_hw, estimate_resources,
                    load_clips, prepare, run_build, stage_export, stage_rtl, stage_synth,
                    stage_verify)
from .common import (MARKER, STAGES, WIDTHS, BuildError, BuildOptions, ExportOut, Plan,
                     ReportOut, RtlOut, SynthOut, VerifyOut)
from .report import build_report, export_accuracy, format_markdown, pll_hint, stage_report

__all__ = ["BENCH_TARGETS", "bench_one", "format_bench", "format_predictions", "predict_row",
           "run_bench",
           "DEFAULT_HW", "ECP5_WIDE", "ECP5_WIDE_C", "ICE40_WIDE", "ICE40_WIDE_C",
           "SIM_DIVISOR_NOTE", "check_resources", "default_hw", "estimate_resources",
           "load_clips", "prepare", "run_build",
           "stage_export", "stage_rtl", "stage_synth", "stage_verify",
           "MARKER", "STAGES", "WIDTHS", "BuildError", "BuildOptions", "ExportOut", "Plan",
           "ReportOut", "RtlOut", "SynthOut", "VerifyOut",
           "build_report", "export_accuracy", "format_markdown", "pll_hint", "stage_report"]
