"""Switching activity of the accelerator on one real inference: Amaranth's simulator writes a
VCD of every named signal, and a small VCD reader counts the bit toggles of each signal in time
windows (the inference, and an idle stretch after it). boards/power.py groups the counts into
blocks and turns them into an energy estimate.

    counts = run_activity(model, hw, clip)          # ~1 min for C = 8 on the iCEBreaker design
    counts.windows["active"].cycles, counts.vars    # per signal: toggles, cycles high (1-bit)

The VCD reader (`count_toggles`) is generic:
  * a toggle is one bit changing: a vector going from 0b0110 to 0b1010 toggles 2 bits;
  * only the value a signal settles to at a time step counts: several changes of one signal at
    the same time stamp (the simulator's delta cycles) count once, from the value before that
    time to the last value at it (zero-delay simulation has no glitches, and these are not
    glitches of the real circuit either);
  * x and z bits are read as 0; the values in `$dumpvars` and before a window are initial
    values, not toggles; `string` and `real` variables are ignored;
  * a signal the VCD lists under several names (an alias: the same identifier code) is
    counted once, under its deepest scope;
  * a toggle at time t belongs to window [t0, t1) when t0 <= t < t1.

Amaranth writes a layout's fields as extra variables (`\\op.valid`, `\\w[0]`) next to the whole
signal (`op`, `w`): those views are skipped, so no bit is counted twice. Memory rows
(`\\xbuf[12]`, no variable `xbuf` in their scope) are skipped too: a memory's activity is its
ports (address, data, enable), which the VCD has in the memory's own scope.
"""
from __future__ import annotations

import hashlib
import json
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from sparknet_hw.quant.export_types import ExportLike, as_export

PERIOD_S = 1e-8                 # simulated clock period (the value does not matter)
VCD_FS = 10**15                 # Amaranth's VCD time unit is 1 fs
IDLE_SETTLE = 64                # cycles after the record before the idle window starts
IDLE_CYCLES = 2000              # length of the idle window
SKIPPED_NAMES = frozenset({"clk", "rst"})
# part of the cache key with the design sources: bump it when what is counted changes
ACTIVITY_FORMAT = 1


class ActivityError(RuntimeError):
    pass


# ---------------------------------------------------------------- the VCD reader

@dataclass
class VcdVar:
    code: str                   # VCD identifier code
    scope: tuple                # the scope path of its deepest name, e.g. ("bench", "top", "pes")
    name: str
    width: int


@dataclass
class WindowCounts:
    t0: int
    t1: int
    toggles: dict = field(default_factory=dict)     # code -> bit toggles in the window
    high: dict = field(default_factory=dict)        # code -> time (VCD units) a 1-bit var was 1


@dataclass
class VcdCounts:
    vars: dict                                      # code -> VcdVar (counted variables only)
    windows: dict                                   # window name -> WindowCounts
    end_time: int = 0


def _is_view(name: str) -> bool:
    """A layout field view (`\\op.valid`, `\\w[0]`) of a signal in the same scope, or a memory
    row (`\\xbuf[3]`) of a memory that has no variable of its own."""
    if not name.startswith("\\"):
        return False
    base = re.split(r"[.\[]", name[1:], maxsplit=1)[0]
    return base != name[1:]         # a field or an index: a view or a memory row


def read_header(path: Path) -> tuple[dict, dict]:
    """(counted vars by code, all names: code -> [(scope, name)]) from a VCD's header."""
    scope: list[str] = []
    names: dict = {}
    kinds: dict = {}
    widths: dict = {}
    with open(path) as f:
        for line in f:
            tok = line.split()
            if not tok:
                continue
            if tok[0] == "$scope":
                scope.append(tok[2])
            elif tok[0] == "$upscope":
                scope.pop()
            elif tok[0] == "$var":
                kind, width, code, name = tok[1], int(tok[2]), tok[3], tok[4]
                names.setdefault(code, []).append((tuple(scope), name))
                kinds[code], widths[code] = kind, width
            elif tok[0] == "$enddefinitions":
                break
    counted = {}
    for code, entries in names.items():
        if kinds[code] not in ("wire", "reg", "integer", "logic"):
            continue
        keep = [(sc, n) for sc, n in entries
                if n not in SKIPPED_NAMES and not _is_view(n)]
        if not keep:
            continue
        sc, n = max(keep, key=lambda e: (len(e[0]), e))      # deepest scope, then by name
        counted[code] = VcdVar(code, sc, n, widths[code])
    return counted, names


def _value(text: str) -> int:
    """A VCD binary value as an int, x/z bits read as 0."""
    if text.isdigit():
        return int(text, 2)
    return int(re.sub(r"[^01]", "0", text), 2)


def _events(path: Path, codes):
    """The value changes after the header: ("t", time), ("v", code, value) for the codes in
    `codes`, ("dumpvars",), ("end",) for the `$end` of `$dumpvars`; real and string changes
    are left out."""
    with open(path) as f:
        for line in f:
            if line.startswith("$enddefinitions"):
                break
        for line in f:
            c = line[:1]
            if c == "#":
                yield "t", int(line[1:])
            elif c in ("0", "1", "x", "z", "X", "Z"):
                code = line[1:].rstrip("\n")
                if code in codes:
                    yield "v", code, 1 if c == "1" else 0
            elif c in ("b", "B"):
                val, code = line[1:].split()
                if code in codes:
                    yield "v", code, _value(val)
            elif line.startswith("$dumpvars"):
                yield ("dumpvars",)
            elif line.startswith("$end"):
                yield ("end",)


def change_times(path: Path, scope: tuple, name: str) -> list[tuple[int, int]]:
    """[(time, value)] of every settled change of one variable (initial value at time 0)."""
    _, names = read_header(path)
    code = next((c for c, entries in names.items() if (tuple(scope), name) in entries), None)
    if code is None:
        raise ActivityError(f"{path}: no variable {'/'.join(scope)}/{name}")
    out: list[tuple[int, int]] = []
    now, pending = 0, None

    def settle():
        if pending is not None and (not out or out[-1][1] != pending):
            out.append((now, pending))

    for ev in _events(path, {code}):
        if ev[0] == "t":
            settle()
            pending, now = None, ev[1]
        elif ev[0] == "v":
            pending = ev[2]
    settle()
    return out


def count_toggles(path, windows: dict[str, tuple[int, int]]) -> VcdCounts:
    """Bit toggles of every counted variable in each window {name: (t0, t1)} (VCD time units),
    and for 1-bit variables the time they were 1 inside the window."""
    path = Path(path)
    counted, _ = read_header(path)
    wins = {k: WindowCounts(int(a), int(b)) for k, (a, b) in windows.items()}
    for w in wins.values():
        if w.t1 < w.t0:
            raise ActivityError(f"window ends before it starts: {w.t0} .. {w.t1}")
    value = {code: 0 for code in counted}          # settled value
    since = {code: 0 for code in counted}          # time of the last settled change
    pending: dict = {}
    now = 0
    started = False                                 # past $dumpvars / the first time stamp

    def high_time(code, a, b):
        # time in [a, b) overlapping each window while the (1-bit) var was 1
        for w in wins.values():
            lo, hi = max(a, w.t0), min(b, w.t1)
            if hi > lo:
                w.high[code] = w.high.get(code, 0) + (hi - lo)

    def commit(t, initial):
        for code, new in pending.items():
            old = value[code]
            if new == old:
                continue
            if counted[code].width == 1 and old == 1:
                high_time(code, since[code], t)
            if not initial:
                flips = bin(old ^ new).count("1")
                for w in wins.values():
                    if w.t0 <= t < w.t1:
                        w.toggles[code] = w.toggles.get(code, 0) + flips
            value[code], since[code] = new, t
        pending.clear()

    for ev in _events(path, counted):
        kind = ev[0]
        if kind == "v":
            pending[ev[1]] = ev[2]
        elif kind == "t":
            commit(now, not started)
            now, started = ev[1], True
        elif kind == "dumpvars":
            started = False
        elif not started:                           # the $end of $dumpvars
            commit(now, True)
            started = True
    commit(now, not started)
    for code, var in counted.items():               # still high at the end
        if var.width == 1 and value[code] == 1:
            high_time(code, since[code], max(now, max((w.t1 for w in wins.values()), default=0)))
    return VcdCounts(counted, wins, now)


# ---------------------------------------------------------------- one simulated inference

@dataclass
class Activity:
    """Per-signal toggle counts of one simulated inference (JSON-able, cached)."""
    cycles: dict                # window -> cycles ("active": the inference, "idle")
    # per signal: [scope path "top/pes", name, width, {window: toggles},
    #              {window: cycles high (1-bit signals)}]
    signals: list
    record_cycles: int          # the hardware's own cycle counter for the inference
    seconds: float = 0.0        # simulation + counting time
    cached: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Activity":
        return cls(**json.loads(text))


def _fingerprint(model: ExportLike, hw, clip: np.ndarray, idle_cycles: int) -> str:
    from sparknet_hw import rtl
    digest = hashlib.sha256()
    for p in sorted(Path(rtl.__file__).parent.glob("*.py")):
        digest.update(p.name.encode() + p.read_bytes())
    digest.update(f"activity format {ACTIVITY_FORMAT}".encode())
    digest.update(json.dumps(as_export(model).to_dict(), sort_keys=True).encode())
    digest.update(repr(hw).encode())
    digest.update(np.ascontiguousarray(clip, dtype=np.int64).tobytes())
    digest.update(f"{IDLE_SETTLE},{idle_cycles}".encode())
    return digest.hexdigest()[:16]


def cache_dir() -> Path:
    from .runner import cache_root
    return cache_root() / "activity"


def run_activity(model: dict, hw, clip, refresh: bool = False, keep_vcd: Path | None = None,
                 idle_cycles: int = IDLE_CYCLES) -> Activity:
    """Simulate one inference of `clip` (int [32, T]) on the accelerator for `hw` in Amaranth's
    simulator with a VCD, check its counters against the schedule model, and count every
    signal's toggles during the inference (`run` high) and in an idle stretch after the
    record has gone out. Cached per design code, export, configuration and clip."""
    import time

    from .schedule import compare, predict
    clip = np.asarray(clip)
    if idle_cycles < 1:
        raise ActivityError("idle_cycles must be at least 1")
    key = _fingerprint(model, hw, clip, idle_cycles)
    path = cache_dir() / f"{key}.json"
    if path.is_file() and not refresh:
        act = Activity.from_json(path.read_text())
        act.cached = True
        return act
    start = time.monotonic()
    pred = predict(model, hw, clip)
    with tempfile.TemporaryDirectory() as tmp:
        vcd = Path(keep_vcd) if keep_vcd else Path(tmp) / "activity.vcd"
        record = _simulate(model, hw, clip, vcd, pred, idle_cycles)
        errors = compare(pred, record)
        if errors:
            raise ActivityError("the simulated inference disagrees with the schedule model: "
                                + "; ".join(errors[:5]))
        act = _count(vcd, record)
    act.seconds = round(time.monotonic() - start, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_name(path.name + ".tmp")
    tmp_path.write_text(act.to_json())
    tmp_path.replace(path)
    return act


def _simulate(model, hw, clip, vcd: Path, pred: dict, idle_cycles: int) -> dict:
    from amaranth.hdl import Signal
    from amaranth.sim import Simulator

    from sparknet_hw.rtl.record import decode_record
    from sparknet_hw.rtl.top import SparkNetAccelerator

    from .amaranth_harness import stream_get, stream_put
    from .schedule import cycle_budget

    top = SparkNetAccelerator(model, hw)
    idle = Signal(name="idle_window")
    records = []

    async def feeder(ctx):
        for t in range(clip.shape[1]):
            for f in range(clip.shape[0]):
                await stream_put(ctx, top.features, int(clip[f, t]))

    async def reader(ctx):
        words = []
        while True:
            word = await stream_get(ctx, top.result)
            words.append(int(word.data))
            if word.last:
                break
        records.append(decode_record(model, words))
        await ctx.tick().repeat(IDLE_SETTLE)
        ctx.set(idle, 1)
        await ctx.tick().repeat(idle_cycles)
        ctx.set(idle, 0)
        await ctx.tick()

    sim = Simulator(top)
    sim.add_clock(PERIOD_S)
    sim.add_testbench(feeder, background=True)
    sim.add_testbench(reader)
    budget = cycle_budget(pred) + IDLE_SETTLE + idle_cycles + 10
    with sim.write_vcd(str(vcd), traces=[idle]):
        sim.run_until(budget * PERIOD_S)
    if not records:
        raise ActivityError(f"no result record within {budget:,} cycles")
    return records[0]


def _window(changes: list[tuple[int, int]], what: str) -> tuple[int, int]:
    rises = [t for t, v in changes if v == 1]
    if not rises:
        raise ActivityError(f"{what} never rises in the simulation")
    t0 = rises[0]
    falls = [t for t, v in changes if v == 0 and t > t0]
    if not falls:
        raise ActivityError(f"{what} never falls after it rises")
    return t0, falls[0]


def _count(vcd: Path, record: dict) -> Activity:
    period = round(PERIOD_S * VCD_FS)
    active = _window(change_times(vcd, ("bench", "top"), "run"), "the top's `run`")
    idle = _window(change_times(vcd, ("bench",), "idle_window"), "the idle marker")
    counts = count_toggles(vcd, {"active": active, "idle": idle})
    cycles = {k: (w.t1 - w.t0) / period for k, w in counts.windows.items()}
    signals = []
    for code, var in counts.vars.items():
        if var.scope[:2] != ("bench", "top"):
            continue                                # the testbench's own marker
        signals.append(["/".join(var.scope[1:]), var.name, var.width,
                        {k: w.toggles.get(code, 0) for k, w in counts.windows.items()},
                        {k: w.high.get(code, 0) / period for k, w in counts.windows.items()}])
    return Activity(cycles, signals, int(record["cycles"]))
