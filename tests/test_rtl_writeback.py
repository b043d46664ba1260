"""Writeback (rtl/writeback.py): a stream of random op walks, one op a cycle, with random
accumulators, against a Python model of the requant and the writes (quant/golden.requant:
shift with round half to even, then clamp; the accumulators are drawn to hit the ties, the
clamps and zero).

Per emitted op, WRITE_LATENCY cycles after it enters: a depthwise writes its requantized
lanes (shift per lane from the bias/shift word of its walk's first op) to the d memory word of
its bank and lane group (or channel, frame-parallel), and its non-zero lanes reach `dmask` /
`tmask` one cycle later; a pointwise of a residual block is held; a residual adds the held
pointwise and requantizes the sum (the block's add shift and range); that sum, or the
pointwise of block 1, goes to frame t, lane group grp of the other buffer (X in -> B out), with
its non-zero lanes in the mask memory's lane group. Nothing else is written; a head op only
raises `head_valid` (with `head_grp`) HEAD_LATENCY cycles after it enters. Ops that are not
valid, or do not emit, change nothing. Plans as in tests/test_rtl_fetch.py: the stress export
(shifts from -2 to wide, add shifts from -1), T=30, P=4 by frames and by channels, P=8.

Random ops and accumulators print their seed; SPARKNET_WRITEBACK_SEED replaces it.

Mutations (each in a private copy of rtl/writeback.py loaded as its own module and put in
place of Writeback here, the working tree untouched); all but the last failed the test, on all
three plans unless said, naming the outputs:
  - d write data lanes 0 and 1 swapped: `writes`;
  - d address by lane group in frame-parallel passes too (t5.grp for t5.c): `writes` (the two
    frame-parallel plans; the by-channel plan has no frame-parallel pass);
  - the shift word captured on `clear` without `valid`: `writes`, `dmask`, `tmask`;
  - a depthwise requantized with the layer's shift instead of its per-lane shifts: `writes`, ...;
  - the clamp range taken from S3's layer instead of S4's: `writes`, `dmask`, `tmask`;
  - every pointwise held, not only a residual block's: `writes`;
  - the residual sum without the held pointwise: `writes`;
  - output buffer X / B swapped: `writes`;
  - X address with B's stride (t * gb + grp): `writes`;
  - B mask memory enable one lane group off: `writes`;
  - `dmask` bit from the neighbouring lane: `dmask`;
  - `tmask` bank ignored: `tmask` (frame-parallel plans);
  - `emit` ignored (every valid op written): `writes`, `dmask`, `tmask`;
  - `head_valid` without `emit`: `head`;
  - round half up instead of half to even (a mutated copy of rtl/requant.py imported by the
    mutated writeback): `writes`, and `dmask` / `tmask`;
  - the shift word captured on every valid op, not only a walk's first: passed, as it must:
    every op of a walk carries the same bias/shift word (its address depends only on the
    walk's lane group or channel), so the change is invisible at the ports.
"""
from __future__ import annotations

import os
import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from sparknet_hw.quant import golden
from sparknet_hw.rtl.buffers import d_words
from sparknet_hw.rtl.config import HwConfig, build_plan
from sparknet_hw.rtl.sequencer import OpKind
from sparknet_hw.rtl.writeback import Writeback
from sparknet_hw.sim.stimuli import stress_export

SEED_ENV = "SPARKNET_WRITEBACK_SEED"
# the op enters at S1b; its accumulators come from the PE array in S3, its head flag leaves in
# S3, its writes in S5 and the d masks are registered after S5
ACC_DELAY = 2
HEAD_LATENCY = 2
WRITE_LATENCY = 4
WALKS_PER_KIND = 40
FRAMES = 30

PLANS = {                                  # name: (C, config)
    "P4-frames": (6, HwConfig(cols=4)),
    "P4-channels": (6, HwConfig(cols=4, dw_frames=False)),
    "P8-frames": (12, HwConfig(cols=8)),
}


def seed_for(name: str) -> int:
    seed = int(os.environ.get(SEED_ENV, 11 + list(PLANS).index(name)))
    print(f"{name}: ops and accumulators from seed {seed} (set {SEED_ENV} to change)")
    return seed


def lane(word: int, i: int, bits: int, signed: bool) -> int:
    v = (word >> (i * bits)) & ((1 << bits) - 1)
    return v - (1 << bits) if signed and v >> (bits - 1) else v


def pack(values, bits: int) -> int:
    return sum((int(v) & ((1 << bits) - 1)) << (i * bits) for i, v in enumerate(values))


def requant(x: int, shift: int, lo: int, hi: int) -> int:
    # one value at a time: golden.requant takes a 1-D shift as per channel over axis 0
    return int(golden.requant(np.array([x]), int(shift), lo, hi)[0])


# ---------------------------------------------------------------- stimulus
def op_kinds(plan):
    for i, ps in enumerate(plan.passes):
        if ps.is_head:
            yield i, OpKind.HEAD
        else:
            yield i, OpKind.DW
            yield i, OpKind.PW
            if ps.has_res:
                yield i, OpKind.RES


def walk_op(plan, i: int, kind: OpKind, rng) -> dict:
    """The fields a walk's ops share, as the sequencer sets them."""
    ps, T, P = plan.passes[i], plan.T, plan.P
    op = dict(valid=1, kind=kind, mac=1, clear=0, emit=0, pass_=i, grp=0, c=0, k=0, u=0, t=0,
              bank=0)
    if kind == OpKind.DW:
        if ps.frames:       # channel c of the frame tile t..t+P-1, d bank by tile parity
            t = rng.randrange(0, plan.T, P)
            op.update(layer=ps.l_dw, c=rng.randrange(ps.c_in), t=t, bank=(t // P) & 1)
        else:               # lane group grp of frame t, d bank by frame parity
            t = rng.randrange(T)
            op.update(layer=ps.l_dw, grp=rng.randrange(ps.gin), t=t, bank=t & 1)
    else:
        layer = ps.l_res if kind == OpKind.RES else ps.l_pw
        t = rng.randrange(T)
        op.update(layer=layer, grp=rng.randrange(ps.n_og), t=t, u=t, bank=rng.getrandbits(1))
    return op


def random_acc(plan, shift: int, lo: int, hi: int, rng) -> int:
    """An accumulator whose requant lands on a tie, near or past a clamp, on zero, or anywhere."""
    top = (1 << (plan.acc_bits - 1)) - 1
    r = rng.random()
    if r < 0.2:
        v = 0
    elif r < 0.45 and shift >= 1:       # exactly half way: round half to even decides
        v = (rng.randrange(lo - 2, hi + 3) << shift) + (1 << (shift - 1))
    elif r < 0.85:
        v = rng.randrange(lo - 4, hi + 5)
        v = v << shift if shift >= 0 else v >> -shift
        v += rng.randrange(-3, 4)
    else:
        v = rng.randrange(-top - 1, top + 1)
    return max(-top - 1, min(top, v))


def random_stream(plan, rng) -> list[dict]:
    """Walks of 1..3 ops (clear on the first, emit on the last) with bubbles between; every op
    carries its bias/shift word `aux` and its accumulators `acc`."""
    P, ab = plan.P, plan.aux_bits
    walks = [(i, kind) for i, kind in op_kinds(plan) for _ in range(WALKS_PER_KIND)]
    rng.shuffle(walks)
    stream = []
    for i, kind in walks:
        base = walk_op(plan, i, kind, rng)
        lay = plan.layers[base["layer"]]
        if kind == OpKind.DW:          # per lane shifts, the range the requant unit is built for
            shifts = [rng.randint(plan.shift_min, plan.shift_max) for _ in range(P)]
            aux = pack(shifts, ab)
        else:                          # a bias word: the writeback must not read it as shifts
            shifts = [lay.shift] * P
            aux = rng.getrandbits(P * ab)
        n = rng.randint(1, 3)
        for j in range(n):
            op = dict(base, clear=int(j == 0), emit=int(j == n - 1), aux=aux,
                      c=base["c"] if kind == OpKind.DW else rng.randrange(lay.c_in),
                      acc=[random_acc(plan, s, lay.lo, lay.hi, rng) for s in shifts])
            stream.append(op)
            if rng.random() < 0.15:    # a bubble: not valid, whatever its flags say
                other = walk_op(plan, *rng.choice(list(op_kinds(plan))), rng)
                stream.append(dict(other, valid=0, clear=rng.getrandbits(1),
                                   emit=rng.getrandbits(1), aux=rng.getrandbits(P * ab),
                                   acc=[rng.randrange(-99, 100) for _ in range(P)]))
    return stream


# ---------------------------------------------------------------- the model
def model(plan, stream: list[dict]) -> list[dict]:
    """Per op: its buffer write (or None), its head flag and the d masks after its write."""
    P, W, C, gd = plan.P, plan.mask_width, plan.C, d_words(plan)
    shifts = [0] * P                  # the last walk's shifts (registers start at 0)
    p_hold = [0] * P
    dmask = [[0] * W for _ in range(2)]
    tmask = [[[0] * W for _ in range(P)] for _ in range(2)]
    out = []
    for op in stream:
        ps, lay = plan.passes[op["pass_"]], plan.layers[op["layer"]]
        kind, emit = op["kind"], bool(op["valid"] and op["emit"])
        if op["valid"] and op["clear"]:
            shifts = [lane(op["aux"], p, plan.aux_bits, True) for p in range(P)]
        write = None
        if emit and kind != OpKind.HEAD:
            sh = shifts if kind == OpKind.DW else [lay.shift] * P
            q = [requant(op["acc"][p], sh[p], lay.lo, lay.hi) for p in range(P)]
            if kind == OpKind.DW:
                word = op["bank"] * gd + (op["c"] if ps.frames else op["grp"])
                write = dict(port="d", addr=word, lanes=q)
                for p in range(P):
                    if ps.frames:        # lane p: frame t + p of channel c
                        tmask[op["bank"]][p][op["c"]] = int(q[p] != 0)
                    elif op["grp"] * P + p < W:
                        dmask[op["bank"]][op["grp"] * P + p] = int(q[p] != 0)
            elif kind == OpKind.PW and ps.has_res:
                p_hold = q
            else:
                if kind == OpKind.RES:
                    sh, lo, hi = ps.add
                    y = [requant(p_hold[p] + q[p], sh, lo, hi) for p in range(P)]
                else:
                    y = q
                to_b = ps.a_buf == "X"
                groups = plan.gb if to_b else plan.gx
                write = dict(port="b" if to_b else "x", addr=op["t"] * groups + op["grp"],
                             lanes=y, frame=op["t"], grp=op["grp"])
        out.append(dict(write=write, head=emit and kind == OpKind.HEAD, grp=op["grp"],
                        dmask=sum(dmask[b][c] << (b * W + c) for b in range(2)
                                  for c in range(W)),
                        tmask=sum(tmask[b][j][c] << ((b * P + j) * W + c) for b in range(2)
                                  for j in range(P) for c in range(C))))
    return out


# ---------------------------------------------------------------- the bench
def run_writeback(dut: Writeback, stream: list[dict], want: list[dict]):
    plan = dut.plan
    P, lb, db = plan.P, plan.lane_bits, plan.dbits
    n = len(stream)
    failures = []
    op_fields = ("valid", "layer", "kind", "mac", "clear", "emit", "grp", "c", "k", "u", "t",
                 "bank", "pass_")

    async def driver(ctx):
        for cyc in range(n + ACC_DELAY):
            if cyc < n:
                op = stream[cyc]
                ctx.set(dut.op, {f: op[f] for f in op_fields})
                ctx.set(dut.aux, op["aux"])
            else:
                ctx.set(dut.op.valid, 0)
            if cyc >= ACC_DELAY:       # the PE array's result of the op two cycles earlier
                for p in range(P):
                    ctx.set(dut.acc[p], stream[cyc - ACC_DELAY]["acc"][p])
            await ctx.tick()

    def writes(ctx) -> dict:
        """The enabled write ports: data lanes as stored (own width, unsigned)."""
        got = {}
        for name, bits in (("d", db), ("x", lb), ("b", lb)):
            port = getattr(dut, f"{name}_wr")
            if ctx.get(port.en):
                word = ctx.get(port.data)
                got[name] = (ctx.get(port.addr), [lane(word, p, bits, False) for p in range(P)])
        for name in ("xm", "bm"):
            port = getattr(dut, f"{name}_wr")
            if ctx.get(port.en):
                got[name] = (ctx.get(port.addr), ctx.get(port.en), ctx.get(port.data))
        return got

    def expected_writes(w) -> dict:
        if w is None:
            return {}
        bits = db if w["port"] == "d" else lb
        exp = {w["port"]: (w["addr"], [v & ((1 << bits) - 1) for v in w["lanes"]])}
        if w["port"] != "d":            # the mask memory: the frame's row, one lane group
            nz = sum(int(v != 0) << p for p, v in enumerate(w["lanes"]))
            exp[w["port"] + "m"] = (w["frame"], 1 << w["grp"], nz)
        return exp

    async def checker(ctx):
        for cyc in range(1, n + WRITE_LATENCY + 2):
            await ctx.tick()
            errs = {}
            i = cyc - WRITE_LATENCY                # the op in S5
            got = writes(ctx)
            for name in ("xm", "bm"):              # only the enabled lane group's bits count
                if name in got:
                    addr, en, data = got[name]
                    g = en.bit_length() - 1
                    got[name] = (addr, en, data >> (g * P) & ((1 << P) - 1))
            exp = expected_writes(want[i]["write"]) if 0 <= i < n else {}
            if got != exp:
                errs["writes"] = (got, exp)
            h = cyc - HEAD_LATENCY                 # the op in S3
            head = 0 <= h < n and want[h]["head"]
            got_head = (ctx.get(dut.head_valid), ctx.get(dut.head_grp))
            if got_head[0] != head or (head and got_head[1] != want[h]["grp"]):
                errs["head"] = (got_head, (head, want[h]["grp"] if head else None))
            m = cyc - WRITE_LATENCY - 1            # the last op whose masks are registered
            dm = want[min(m, n - 1)]["dmask"] if m >= 0 else 0
            tm = want[min(m, n - 1)]["tmask"] if m >= 0 else 0
            if ctx.get(dut.dmask.as_value()) != dm:
                errs["dmask"] = (hex(ctx.get(dut.dmask.as_value())), hex(dm))
            if ctx.get(dut.tmask.as_value()) != tm:
                errs["tmask"] = (hex(ctx.get(dut.tmask.as_value())), hex(tm))
            if errs:
                failures.append((cyc, i, stream[i] if 0 <= i < n else None, errs))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(driver)
    sim.add_testbench(checker)
    sim.run()
    return failures


@pytest.mark.parametrize("name", list(PLANS))
def test_writeback_matches_model(name):
    C, config = PLANS[name]
    plan = build_plan(stress_export(C, seed=3, frames=FRAMES), config)
    rng = random.Random(seed_for(name))
    stream = random_stream(plan, rng)
    want = model(plan, stream)
    # the stream must reach what is checked: writes to every port, zero and non-zero lanes
    ports = [w["write"]["port"] for w in want if w["write"]]
    assert all(ports.count(p) > 20 for p in ("d", "x", "b")), ports
    assert sum(w["head"] for w in want) > 20
    assert any(v == 0 for w in want if w["write"] for v in w["write"]["lanes"])

    failures = run_writeback(Writeback(plan), stream, want)
    for cyc, i, op, errs in failures[:5]:
        print(f"cycle {cyc}, op {i} in S5 {op}:")
        for k, (g, w) in errs.items():
            print(f"   {k}: got {g}, want {w}")
    names = sorted({k for f in failures for k in f[3]})
    cycles = len(stream) + WRITE_LATENCY + 1
    assert not failures, f"{len(failures)} of {cycles} cycles wrong in {names}"
