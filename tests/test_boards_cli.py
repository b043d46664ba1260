"""Bad input to build / bench / run: one-line errors, exit code 2, nothing half-built."""
import json
from pathlib import Path

import pytest

from sparknet_hw import cli


def fails(capsys, *argv, match, warnings=False):
    code = cli.main(list(argv))
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    if warnings:                                    # e.g. "no shipped export" before the error
        err = err.splitlines()[-1]
    assert err.startswith("error: ") and "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    assert match in err, err
    return err


def test_build_rejects_bad_options(capsys, tmp_path):
    out = ["--out", str(tmp_path / "b")]
    fails(capsys, "build", "--board", "nosuch", *out, match="unknown board 'nosuch'")
    fails(capsys, "build", "--device", "up9k-sg48", *out, match="unknown device")
    fails(capsys, "build", "--device", "up5k-ct256", *out, match="does not come in")
    fails(capsys, "build", "--board", "ulx3s", "--device", "25k-cabga256", *out,
          match="not both")
    fails(capsys, "build", "--C", "5", *out, match="unsupported width C=5")
    fails(capsys, "build", "--export", str(tmp_path / "none.json"), *out,
          match="no such export file")
    fails(capsys, "build", "--inputs", str(tmp_path / "none.npy"), *out,
          match="no such inputs file")
    fails(capsys, "build", "--baud", "4000000", *out, match="too fast")
    fails(capsys, "build", "--clock-mhz", "50", *out, match="only applies to --device")
    fails(capsys, "build", "--pes", "6", *out, match="power of two")
    fails(capsys, "build", "--board", "ulx3s", "--accumulators", "dsp", *out,
          match="only an iCE40 UltraPlus has")
    assert not (tmp_path / "b").exists()             # nothing was started


def test_default_accelerator_per_board_and_width(tmp_path):
    from sparknet_hw.pipeline import BuildOptions, prepare
    hw = {(C, board): prepare(BuildOptions(C=C, board=board, out=tmp_path / f"{C}{board}")).hw
          for C in (8, 16, 32) for board in ("icebreaker", "ulx3s")}
    ice8, ice16 = hw[8, "icebreaker"], hw[16, "icebreaker"]
    assert (ice8.pes, ice8.skip_mode, ice8.rom_style, ice8.activation_ram,
            ice8.classifier_adders) == (4, "1x1", "block", "spram", 2)
    assert (ice16.pes, ice16.skip_mode, ice16.rom_style, ice16.activation_ram) == \
        (2, "1x1", "block", "spram")
    assert (hw[8, "ulx3s"].pes, hw[8, "ulx3s"].skip_mode, hw[8, "ulx3s"].depthwise) == \
        (16, "all", "frames")
    # the ECP5 has no SPRAM, and logic to spare for the 12-adder classifier
    assert (hw[8, "ulx3s"].activation_ram, hw[8, "ulx3s"].classifier_adders) == ("block", 12)
    # 8 PEs would need 8 SPRAMs for X and B: the UP5K has 4, so they stay in block RAM
    wide = prepare(BuildOptions(C=8, out=tmp_path / "w", pes=8)).hw
    assert wide.activation_ram == "block"
    # the accumulators stay in logic unless asked for in the DSPs (an UltraPlus only)
    assert {h.accumulators for h in hw.values()} == {"fabric"}
    assert prepare(BuildOptions(C=8, out=tmp_path / "f", accumulators="dsp")).hw \
        .accumulators == "dsp"
    two = prepare(BuildOptions(C=8, out=tmp_path / "t", classifier_adders=12)).hw
    assert two.classifier_adders == 12
    assert hw[32, "ulx3s"].depthwise == "channels"
    ch = prepare(BuildOptions(C=8, board="ulx3s", out=tmp_path / "c", depthwise="channels")).hw
    assert ch.depthwise == "channels"
    over = prepare(BuildOptions(C=8, out=tmp_path / "o", zero_skip="off", rom_style="auto")).hw
    assert (over.skip_mode, over.rom_style) == ("off", "auto")


def test_pll_hint_and_bad_pll_requests(capsys, tmp_path):
    from sparknet_hw.pipeline import BuildOptions, pll_hint, prepare
    plan = prepare(BuildOptions(C=8, out=tmp_path / "b"))
    hint = pll_hint(plan, 19.1, 63_380)                  # 90 % of 19.1 MHz -> 16.875 MHz
    assert "--pll-mhz 16.875" in hint and "5,282 us" in hint and "3,756 us" in hint
    assert pll_hint(plan, 12.5, 63_380) is None          # nothing worth a PLL
    pll_plan = prepare(BuildOptions(C=8, out=tmp_path / "c", pll_mhz=17))
    assert pll_plan.clock_mhz == 16.875 and pll_hint(pll_plan, 19.1, 63_380) is None
    assert pll_plan.divisor == round(16.875e6 / 115200)
    out = ["--out", str(tmp_path / "d")]
    fails(capsys, "build", "--pll-mhz", "300", *out, match="PLL makes 16 to 275 MHz")
    fails(capsys, "build", "--pll-mhz", "8", *out, match="oscillator clocks the design")


def test_build_rejects_checkpoint_of_wrong_width(capsys, tmp_path):
    import torch

    from sparknet_hw.checkpoint import save_checkpoint

    ckpt = save_checkpoint(tmp_path / "c4.pt", "qat", 4, {"w": torch.zeros(1)})
    fails(capsys, "build", "--C", "8", "--checkpoint", str(ckpt), "--out",
          str(tmp_path / "b"), match="checkpoint has C=4 but C=8 was asked for")
    fails(capsys, "build", "--C", "8", "--checkpoint", str(tmp_path / "nope.pt"), "--out",
          str(tmp_path / "b"), match="no such checkpoint file")
    float_ckpt = save_checkpoint(tmp_path / "f8.pt", "float", 8, {"w": torch.zeros(1)})
    fails(capsys, "build", "--C", "8", "--checkpoint", str(float_ckpt), "--out",
          str(tmp_path / "b"), match="a qat one is needed")


def test_build_refuses_existing_out_dir(capsys, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    fails(capsys, "build", "--out", str(out), match="already exists; pass --force")
    fails(capsys, "build", "--out", str(out), "--force",
          match="not a sparknet build directory")
    assert (out / "notes.txt").read_text() == "keep me"


def test_bench_and_run_reject_bad_options(capsys, tmp_path):
    fails(capsys, "bench", "--C", "6", match="unsupported width C=6")
    fails(capsys, "bench", "--board", "nosuch", match="unknown board")
    wav = tmp_path / "a.wav"
    fails(capsys, "run", "--port", "/dev/ttyNOSUCH0", str(wav), match="no such file")
    wav.write_bytes(b"RIFF")
    fails(capsys, "run", "--port", "/dev/ttyNOSUCH0", str(wav),
          match="cannot open serial port /dev/ttyNOSUCH0")
    fails(capsys, "run", "--port", "loop://", "--baud", "0", str(wav),
          match="--baud must be positive")


def test_build_failed_stage_is_named_and_report_not_written(capsys, tmp_path, monkeypatch):
    """A stage that fails names itself; earlier outputs stay, no report is presented."""
    from sparknet_hw import pipeline
    from sparknet_hw.pipeline import build

    def broken(plan, exp, rtl):
        raise pipeline.BuildError("simulated disagreement")

    # run_build looks the stage up in pipeline.build, so that is where it is replaced
    monkeypatch.setattr(build, "stage_verify", broken)
    out = tmp_path / "b"
    err = fails(capsys, "build", "--C", "4", "--out", str(out), "--no-synth",
                match="stage 3/5 'verify' failed", warnings=True)
    assert "simulated disagreement" in err and "finished stages: export, rtl" in err
    assert (out / "sparknet_export.json").is_file() and (out / "sparknet_accel.v").is_file()
    assert not (out / "report.json").exists() and not (out / "report.md").exists()
    assert json.loads((out / "sparknet_export.json").read_text())["C"] == 4


def test_bench_table_format():
    from sparknet_hw import pipeline

    row = {"C": 8, "board": "icebreaker", "params": 2356, "macs_dense": 212888.0,
           "cycles": 9000.0, "utilization": 0.61, "skip_ratio": 0.42, "luts": 5000,
           "luts_total": 5280, "dsps": 8, "dsps_total": 8, "brams": 20, "brams_total": 30,
           "fmax_mhz": 20.0, "latency_us": 450.0, "latency_us_noskip": 800.0,
           "clock_mhz": 12.0, "latency_us_at_clock": 750.0, "mismatches": 0, "error": None}
    failed = dict(row, C=16, luts=9000, fmax_mhz=None, latency_us=None,
                  latency_us_noskip=None, latency_us_noskip_at_clock=1500.0,
                  error="the design does not fit icebreaker (ICESTORM_LC 9000/5280)")
    text = pipeline.format_bench([row, failed, {"C": 32, "board": "ulx3s",
                                                "error": "stage failed"}])
    assert "5000/5280" in text and "8/8" in text and "450" in text and "800" in text
    assert "9000/5280!" in text
    assert "750*" in text and "does not fit icebreaker" in text and "failed: stage failed" in text
    assert "PE floor" in text and "chip floor" in text      # rows without floors show "-"


def test_bench_row_cache_is_only_reused_for_the_same_design_code(tmp_path, monkeypatch):
    import sparknet_hw.pipeline as pipeline
    from sparknet_hw.pipeline import bench
    first = pipeline.bench_one(4, "icebreaker", tmp_path / "b", clips=1, simulator="verilator",
                               synth=False, refresh=False)
    assert not first.get("cached") and first["mismatches"] == 0
    again = pipeline.bench_one(4, "icebreaker", tmp_path / "b", clips=1, simulator="verilator",
                               synth=False, refresh=False)
    assert again.get("cached") and again["cycles"] == first["cycles"]
    # bench --predict: the same row from the schedule model, without a simulator
    predicted = pipeline.predict_row(4, "icebreaker", tmp_path / "p", clips=1)
    assert predicted["cycles"] == first["cycles"] and predicted["pes"] == first["pes"]
    assert predicted["frames_skipped"] == first["frames_skipped"]
    assert predicted["utilization"] == pytest.approx(first["utilization"])
    # the key bench_one looks the row up with: the same design finds it, changed code does not
    key = again["key"]
    assert bench.cached_row(tmp_path / "b" / "row.json", key)["cycles"] == first["cycles"]
    monkeypatch.setattr(bench, "_design_code_fingerprint", lambda: "another design")
    plan = pipeline.prepare(pipeline.BuildOptions(C=4, board="icebreaker", out=tmp_path / "k",
                                                  simulator="verilator", clips=1, synth=False,
                                                  force=True, seed=1, quiet=True))
    changed = bench._row_key(plan, plan.options)
    assert changed["design_code"] == "another design"
    assert bench.cached_row(tmp_path / "b" / "row.json", changed) is None
    assert bench.cached_row(tmp_path / "b" / "row.json", key | {"pes": key["pes"] + 1}) is None


def test_activation_ram_follows_the_exports_lane_width(tmp_path):
    """`prepare` assumes 8-bit lanes: 8 PEs need 8 SPRAMs for X and B, so block RAM. A
    4-bit export's lanes are half as wide, and the export stage moves them into SPRAM."""
    from sparknet_hw.pipeline import BuildOptions, prepare
    from sparknet_hw.pipeline.build import _fresh_out_dir, stage_export
    from sparknet_hw.quant.random_export import random_export
    rams = {}
    for bits in (4, 8):
        path = tmp_path / f"w{bits}a{bits}.json"
        path.write_text(json.dumps(random_export(8, bits, bits, seed=1)))
        plan = prepare(BuildOptions(C=8, export=str(path), pes=8, out=tmp_path / f"o{bits}"))
        assert plan.hw.activation_ram == "block"
        _fresh_out_dir(plan.out)
        stage_export(plan)
        rams[bits] = plan.hw.activation_ram
    assert rams == {4: "spram", 8: "block"}


def test_build_place_seed_reaches_nextpnr(tmp_path, monkeypatch):
    """`build --place-seed N` places with nextpnr --seed N (the placement spread of Fmax
    in docs/accelerator.md is measured with it); unset, nextpnr chooses."""
    from types import SimpleNamespace

    import sparknet_hw.boards.synth as synth
    from sparknet_hw.pipeline import BuildOptions, prepare
    from sparknet_hw.pipeline.build import stage_synth
    from sparknet_hw.pipeline.common import RtlOut

    seen = []

    def fake_synthesize(top, spec, build_dir, seed=None, **kw):
        seen.append(seed)
        bit = Path(build_dir) / "top.bin"
        bit.parent.mkdir(parents=True, exist_ok=True)
        bit.write_bytes(b"")
        return SimpleNamespace(bitstream=str(bit))

    monkeypatch.setattr(synth, "synthesize", fake_synthesize)
    rtl = RtlOut(tmp_path / "a.v", tmp_path / "b.v", lambda: None)
    for seed in (3, None):
        plan = prepare(BuildOptions(C=8, out=tmp_path / f"s{seed}", place_seed=seed))
        plan.options.quiet = True
        plan.out.mkdir(parents=True, exist_ok=True)
        stage_synth(plan, rtl)
    assert seen == [3, None]
