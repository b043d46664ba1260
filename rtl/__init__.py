"""Amaranth generator of the gated systolic SparkNet accelerator (docs/accelerator.md).

    from sparknet_hw.rtl import HwConfig, SparkNetAccelerator, generate_verilog
    verilog = generate_verilog(export_dict, HwConfig(rows=1, cols=8, zero_skip=True))
"""
from __future__ import annotations

from .config import HwConfig, HwConfigError, Plan, build_plan, real_macs, thop_macs

TOP_NAME = "sparknet_accel"


def generate_verilog(model: dict, config: HwConfig | None = None, name: str = TOP_NAME) -> str:
    """Verilog of the accelerator for this export and hardware configuration."""
    from amaranth.back import verilog

    from .top import SparkNetAccelerator
    top = SparkNetAccelerator(model, config)
    return verilog.convert(top, name=name, emit_src=False)


def __getattr__(name):
    if name == "SparkNetAccelerator":
        from .top import SparkNetAccelerator
        return SparkNetAccelerator
    raise AttributeError(name)


__all__ = ["HwConfig", "HwConfigError", "Plan", "build_plan", "real_macs", "thop_macs",
           "generate_verilog", "SparkNetAccelerator", "TOP_NAME"]
