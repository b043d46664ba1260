"""cocotb benches of the generated accelerator Verilog against the integer golden model.

    from sparknet_hw.sim import run_sim
    report = run_sim(export, inputs, "verilator", HwConfig(), seed=1)
"""


def __getattr__(name):
    if name in ("run_sim", "quantize_inputs", "SimError", "make_report"):
        from . import runner
        return getattr(runner, name)
    raise AttributeError(name)


__all__ = ["run_sim", "quantize_inputs", "SimError", "make_report"]
