"""`python -m sparknet_hw sim`: bad input fails with one clear line before any simulator
starts; a small end-to-end run prints the counter report as JSON."""
import json
import subprocess
import sys

import numpy as np
import pytest

from sparknet_hw.cli import main
from sparknet_hw.rtl import HwConfig, HwConfigError, build_plan
from sparknet_hw.sim.runner import SimError, quantize_inputs, run_sim
from sparknet_hw.sim.stimuli import balanced_export, calibrated_export


@pytest.fixture(scope="module")
def export_file(tmp_path_factory):
    model = calibrated_export(8)          # same Verilog as test_sim_accel's C=8 runs
    path = tmp_path_factory.mktemp("exp") / "sparknet_export.json"
    path.write_text(json.dumps(model))
    return path, model


def run_cli(args, capsys):
    code = main(["sim"] + args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_wrong_input_shape(export_file, tmp_path, capsys):
    path, _ = export_file
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((2, 32, 100), dtype=np.int8))
    code, _, err = run_cli(["--export", str(path), "--inputs", str(bad)], capsys)
    assert code == 2 and "shape" in err and len(err.strip().splitlines()) == 1


def test_export_of_another_version(export_file, tmp_path, capsys):
    _, model = export_file
    other = dict(model, version=99)
    p = tmp_path / "e.json"
    p.write_text(json.dumps(other))
    code, _, err = run_cli(["--export", str(p)], capsys)
    assert code == 2 and "version" in err and len(err.strip().splitlines()) == 1


def test_pe_array_that_cannot_be_built(export_file, capsys):
    path, _ = export_file
    code, _, err = run_cli(["--export", str(path), "--pes", "32"], capsys)
    assert code == 2 and "PE" in err
    with pytest.raises(HwConfigError):
        build_plan(balanced_export(4), HwConfig(rows=3, cols=1))


def test_skip_modes_and_rom_styles():
    hw = HwConfig()
    assert (hw.skip_mode, hw.with_skip("1x1").skip_mode, hw.with_skip("off").skip_mode) == \
        ("all", "1x1", "off")
    assert not hw.with_skip("1x1").skip_depthwise and hw.with_skip("1x1").zero_skip
    with pytest.raises(HwConfigError, match="choose one of all, 1x1, off"):
        hw.with_skip("some")
    with pytest.raises(HwConfigError, match="rom_style 'lut'"):
        build_plan(balanced_export(4), HwConfig(rom_style="lut"))
    assert build_plan(balanced_export(4), HwConfig(rom_style="block")).rom_attrs == \
        {"ram_style": "block"}
    assert build_plan(balanced_export(4)).rom_attrs == {}


def test_wide_weights_rejected():
    model = balanced_export(4)
    model["weight_bits"] = 12
    with pytest.raises(HwConfigError):
        build_plan(model)


def test_float_inputs_quantized_half_even(export_file):
    _, model = export_file
    frac = model["input"]["frac"][0]
    x = np.zeros((1, 32, 101), dtype=np.float32)
    x[0, 0, :4] = np.array([0.5, 1.5, -0.5, 1000]) / 2 ** frac
    q = quantize_inputs(model, x)
    assert q[0, 0, :4].tolist() == [0, 2, 0, model["input"]["hi"]]
    with pytest.raises(SimError):
        quantize_inputs(model, np.zeros((1, 31, 101)))
    with pytest.raises(SimError):
        run_sim(model, np.full((1, 32, 101), 999), "verilator")


def test_unknown_width_and_simulator(capsys):
    code, _, err = run_cli(["--C", "5"], capsys)
    assert code == 2 and "C=5" in err


@pytest.mark.sim
def test_cli_end_to_end_json(export_file):
    path, _ = export_file
    r = subprocess.run([sys.executable, "-m", "sparknet_hw", "sim", "--export", str(path),
                        "--simulator", "verilator", "--clips", "1", "--json", "--seed", "4"],
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads(r.stdout)
    for key in ("mismatches", "inferences", "cycles", "macs_dense", "macs_issued", "macs_gated",
                "frames_skipped", "pes", "utilization", "layers"):
        assert key in rep
    assert rep["mismatches"] == 0 and rep["inferences"] == 1 and rep["pes"] == 8
    assert "seed 4" in r.stderr


def test_memory_flags_reach_the_design(export_file, capsys, monkeypatch):
    """--activation-ram and --classifier-adders build the iCEBreaker's memories; the report's
    first line names them."""
    import sparknet_hw.sim.runner as runner
    from sparknet_hw.commands.sim import format_report
    seen = {}

    def fake_run_sim(model, x, simulator, config, seed, waves):
        seen["config"] = config
        raise SimError("stopped before the simulator")

    monkeypatch.setattr(runner, "run_sim", fake_run_sim)
    path, _ = export_file
    code, _, err = run_cli(["--export", str(path), "--activation-ram", "spram",
                            "--classifier-adders", "2", "--accumulators", "dsp", "--seed", "1"],
                           capsys)
    assert code == 2 and "stopped before the simulator" in err
    assert (seen["config"].activation_ram, seen["config"].classifier_adders,
            seen["config"].accumulators) == ("spram", 2, "dsp")
    with pytest.raises(SystemExit) as exc:             # argparse: usage and the choices
        run_cli(["--export", str(path), "--classifier-adders", "5"], capsys)
    assert exc.value.code == 2 and "--classifier-adders" in capsys.readouterr().err
    report = {"C": 8, "weight_bits": 8, "act_bits": 8, "pes": 4, "skip_mode": "1x1",
              "depthwise": "frames", "simulator": "verilator", "inferences": 1, "seed": 1,
              "activation_ram": "spram", "classifier_adders": 2, "layers": {},
              "macs_dense": 0, "macs_real": 0, "macs_issued": 0, "macs_gated": 0, "cycles": 0,
              "cycles_per_inference": 0, "frames_skipped": 0, "utilization": 0,
              "mismatches": 0}
    first = format_report(report).splitlines()[0]
    assert "X and B in spram, 2-adder classifier" in first
    assert "accumulators" not in first
    first = format_report({**report, "accumulators": "dsp"}).splitlines()[0]
    assert "2-adder classifier, accumulators in the DSPs" in first
