"""OperandFetch (rtl/fetch.py): a stream of random ops, one a cycle, against a Python model of
what each op asks the PE array for, computed from the export's own tensors (not from the
plan's packed images or the RTL's address arithmetic) and from buffer contents the test
puts behind the X / B / d read ports.

Per op, LATENCY cycles after it enters: `w` is the op's weight per lane (0 for the lanes past
the layer's channels or outside a frame tile's taps), `a` the activation of each lane in use
(own channel for a depthwise by channels; one value broadcast to all lanes for a frame-parallel
depthwise, pointwise, residual and head), `en` the lanes in use with a non-zero activation,
`issued` / `gated` their counts against the zero ones, `bias` the 1x1 bias (0 for a
depthwise), `aux` the bias/shift word, `valid` / `clear` / `op_s1b` the op itself. Plans: the
stress export (negative shifts, zero rows) at P=4 with frame-parallel and by-channel depthwise
(n_out=6: half the second lane group unused) and at P=8 frame-parallel; T=30, not a multiple
of P (as the real 101 is not), so the last frame tile reaches past T. The buffers answer a
read address one clock edge later, like the real memories.

Random ops and buffer words print their seed; SPARKNET_FETCH_SEED replaces it.

Mutations (each in a private copy of rtl/fetch.py loaded as its own module and put in place of
OperandFetch here, the working tree untouched); every one failed the test, naming the outputs:
  - lanes 0 and 1 of the weight word swapped: `w`, all plans;
  - X / B read address one lane group off (row * gx + col + 1): `a`, `en`, `issued`, `gated`;
  - the zero test dropped (en = lanes in use): `en`, `issued`, `gated`;
  - `issued` counting the lanes in use instead of the enabled ones: `issued`;
  - `mac` ignored (lanes in use whenever valid): `en`, `issued`, `gated`;
  - lanes in use up to n_out inclusive (<=): `en`, `issued`, `gated`;
  - the d bank ignored in the d read address: `a`, ...;
  - the activation sign ignored (always unsigned): `a` (block 1 reads signed features);
  - the bias of a depthwise not zeroed: `bias`;
  - `op_s1b` registered from `op` (one stage early): `op_s1b`, `valid`, `clear`, `bias`;
  - depthwise weight address one tap off (+ k + 1): `w`, all plans;
  - pointwise taking the d lane of c in frame-parallel passes too (lane_of(t1.c)): `a`, ...
    (the two frame-parallel plans; the by-channel plan has no frame-parallel pass);
  - frame-parallel window test k <= p + K (one tap too many): `en`, ... (frame plans);
  - frame-parallel tile end test (t + p < T) dropped: `en`, ... (frame plans; with T=32, a
    multiple of P, this one passed, hence T=30).
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass

import pytest
from amaranth.sim import Simulator

from sparknet_hw.rtl.buffers import d_words
from sparknet_hw.rtl.config import HwConfig, build_plan
from sparknet_hw.rtl.fetch import OperandFetch
from sparknet_hw.rtl.sequencer import OpKind, op_layout
from sparknet_hw.sim.stimuli import stress_export

SEED_ENV = "SPARKNET_FETCH_SEED"
# op in -> outputs: the op register (S0, addresses), the buffers' synchronous read (S1) and the
# S1b register (the ROMs are read from S1 and land in S1b too)
LATENCY = 3
OPS_PER_KIND = 60
# not a multiple of P (as the real 101 is not): the last frame tile runs past T
FRAMES = 30

PLANS = {                                  # name: (C, config)
    "P4-frames": (6, HwConfig(cols=4)),
    "P4-channels": (6, HwConfig(cols=4, dw_frames=False)),
    "P8-frames": (12, HwConfig(cols=8)),
}


def seed_for(name: str) -> int:
    seed = int(os.environ.get(SEED_ENV, 1 + list(PLANS).index(name)))
    print(f"{name}: ops and buffer words from seed {seed} (set {SEED_ENV} to change)")
    return seed


def lane(word: int, i: int, bits: int, signed: bool) -> int:
    v = (word >> (i * bits)) & ((1 << bits) - 1)
    return v - (1 << bits) if signed and v >> (bits - 1) else v


def random_word(rng, lanes: int, bits: int) -> int:
    # many zero lanes: the zero test (gated vs issued) needs both on most ops
    word = 0
    for i in range(lanes):
        if rng.random() >= 0.4:
            word |= rng.randrange(1, 1 << bits) << (i * bits)
    return word


@dataclass
class Buffers:
    """What the test stores behind the read ports, word by address (the whole address space,
    so a wrong address reads some other random word rather than failing in the model)."""
    x: list[int]
    b: list[int]
    d: list[int]

    @classmethod
    def random(cls, dut, rng):
        P = dut.plan.P
        return cls(*[[random_word(rng, P, len(port.data) // P)
                      for _ in range(1 << len(port.addr))]
                     for port in (dut.x_rd, dut.b_rd, dut.d_rd)])

    # the buffer layouts of rtl/buffers.py, read by meaning
    def act(self, plan, ps, frame: int, ch: int) -> int:
        """Channel `ch` of frame `frame` of the pass input (buffer X or B)."""
        mem, groups = (self.x, plan.gx) if ps.a_buf == "X" else (self.b, plan.gb)
        return lane(mem[frame * groups + ch // plan.P], ch % plan.P, plan.lane_bits, ps.a_signed)

    def dval(self, plan, ps, bank: int, ch: int, frame: int) -> int:
        """Depthwise output of channel `ch`, frame `frame`, in d bank `bank`: a word per lane
        group of channels, or in frame-parallel passes a word of P frames per channel."""
        P = plan.P
        word, i = (bank * d_words(plan) + ch, frame % P) if ps.frames else \
            (bank * d_words(plan) + ch // P, ch % P)
        return lane(self.d[word], i, plan.dbits, True)


# ---------------------------------------------------------------- ops
def op_kinds(plan):
    """(pass, kind) of every op the plan's schedule issues."""
    for i, ps in enumerate(plan.passes):
        if ps.is_head:
            yield i, OpKind.HEAD
        else:
            yield i, OpKind.DW
            yield i, OpKind.PW
            if ps.has_res:
                yield i, OpKind.RES


def random_op(plan, i: int, kind: OpKind, rng) -> dict:
    """An op as the sequencer builds it (fields it leaves alone are 0)."""
    ps, T, P = plan.passes[i], plan.T, plan.P
    op = dict(valid=int(rng.random() < 0.9), kind=kind, mac=int(rng.random() < 0.85),
              clear=rng.getrandbits(1), emit=rng.getrandbits(1), pass_=i, grp=0, c=0, k=0,
              u=0, t=0, bank=0)
    if kind == OpKind.DW:
        op["layer"] = ps.l_dw
        if ps.frames:       # channel c, tile of frames t..t+P-1, window offset k
            t = rng.randrange(0, T, P)
            k = rng.choice([r for r in range(ps.window) if 0 <= t - ps.half + r < T])
            op.update(c=rng.randrange(ps.c_in), t=t, k=k, u=t - ps.half + k, bank=(t // P) & 1)
        else:               # lane group grp of frame t, tap k (of input frame u)
            t = rng.randrange(T)
            k = rng.choice([k for k in range(ps.kernel) if 0 <= t - ps.half + k < T])
            op.update(grp=rng.randrange(ps.gin), t=t, k=k, u=t - ps.half + k, bank=t & 1)
    else:                   # output group grp, input channel c, frame t
        layer = {OpKind.PW: ps.l_pw, OpKind.RES: ps.l_res, OpKind.HEAD: ps.l_pw}[kind]
        t = rng.randrange(T)
        op.update(layer=layer, grp=rng.randrange(ps.n_og), c=rng.randrange(plan.layers[layer].c_in),
                  t=t, u=t, bank=rng.getrandbits(1))
    return op


def random_ops(plan, rng) -> list[dict]:
    ops = [random_op(plan, i, kind, rng) for i, kind in op_kinds(plan)
           for _ in range(OPS_PER_KIND)]
    rng.shuffle(ops)              # back to back, every kind after every other
    return ops


# ---------------------------------------------------------------- the model
def tensors(plan, lay):
    if lay.kind == "head":
        return plan.model.head
    return getattr(plan.model.blocks[lay.block - 1], lay.kind)


def expected(plan, bufs: Buffers, op: dict) -> dict:
    """What the PE array must receive for `op`: per lane weight, activation (None: lane not in
    use, any value), in use, bias, bias/shift (aux) lane."""
    P, T = plan.P, plan.T
    ps, lay = plan.passes[op["pass_"]], plan.layers[op["layer"]]
    ten = tensors(plan, lay)
    if op["kind"] == OpKind.DW and ps.frames:
        # lane j: output frame t + j, so the input at window offset k meets tap k - j
        c, k, K = op["c"], op["k"], lay.kernel
        taps = [k - j for j in range(P)]
        use = [0 <= r < K and op["t"] + j < T for j, r in enumerate(taps)]
        w = [int(ten.w[c, r]) if 0 <= r < K else 0 for r in taps]
        a = [bufs.act(plan, ps, op["u"], c)] * P
        aux, bias = [int(ten.shift[c])] * P, [0] * P
    elif op["kind"] == OpKind.DW:
        # lane p: channel grp*P + p, its own weight and activation
        chans = [op["grp"] * P + p for p in range(P)]
        use = [ch < lay.c_in for ch in chans]
        w = [int(ten.w[ch, op["k"]]) if ch < lay.c_in else 0 for ch in chans]
        a = [bufs.act(plan, ps, op["u"], ch) for ch in chans]
        aux = [int(ten.shift[ch]) if ch < lay.c_in else 0 for ch in chans]
        bias = [0] * P
    else:
        # lane p: output channel grp*P + p; one input value for all lanes
        outs = [op["grp"] * P + p for p in range(P)]
        use = [o < lay.n_out for o in outs]
        w = [int(ten.w[o, op["c"]]) if o < lay.n_out else 0 for o in outs]
        if op["kind"] == OpKind.PW:
            v = bufs.dval(plan, ps, op["bank"], op["c"], op["t"])
        else:
            v = bufs.act(plan, ps, op["t"], op["c"])
        a = [v] * P
        aux = bias = [int(ten.b[o]) if o < lay.n_out else 0 for o in outs]
    use = [u and bool(op["valid"] and op["mac"]) for u in use]
    en = [u and a[p] != 0 for p, u in enumerate(use)]
    return dict(w=w, a=[a[p] if use[p] else None for p in range(P)], en=en, bias=bias, aux=aux,
                issued=sum(en), gated=sum(use) - sum(en))


# ---------------------------------------------------------------- the bench
def run_fetch(dut: OperandFetch, ops: list[dict], bufs: Buffers):
    plan = dut.plan
    P, OL = plan.P, op_layout(plan)
    failures = []

    async def memories(ctx):
        # the buffers' read ports: data of the address at the last clock edge
        async for _, _, xa, ba, da in ctx.tick().sample(dut.x_rd.addr, dut.b_rd.addr,
                                                        dut.d_rd.addr):
            ctx.set(dut.x_rd.data, bufs.x[xa])
            ctx.set(dut.b_rd.data, bufs.b[ba])
            ctx.set(dut.d_rd.data, bufs.d[da])

    async def driver(ctx):
        for op in ops:
            ctx.set(dut.op, op)
            await ctx.tick()

    def outputs(ctx) -> dict:
        aux = ctx.get(dut.aux)
        return dict(w=[ctx.get(dut.w[p]) for p in range(P)],
                    a=[ctx.get(dut.a[p]) for p in range(P)],
                    en=[bool(ctx.get(dut.en) >> p & 1) for p in range(P)],
                    bias=[ctx.get(dut.bias[p]) for p in range(P)],
                    aux=[lane(aux, p, plan.aux_bits, True) for p in range(P)],
                    issued=ctx.get(dut.issued), gated=ctx.get(dut.gated),
                    valid=ctx.get(dut.valid), clear=ctx.get(dut.clear),
                    op_s1b=ctx.get(dut.op_s1b.as_value()))

    async def checker(ctx):
        for _ in range(LATENCY):
            await ctx.tick()
        for n, op in enumerate(ops):
            got = outputs(ctx)
            want = expected(plan, bufs, op)
            want.update(valid=op["valid"], clear=op["clear"],
                        op_s1b=OL.const(op).as_value().value)
            # activations of lanes not in use are don't-cares (the PE gates them)
            got["a"] = [g if w is not None else None for g, w in zip(got["a"], want["a"])]
            bad = [k for k in want if got[k] != want[k]]
            if bad:
                failures.append((n, op, bad, {k: (got[k], want[k]) for k in bad}))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_process(memories)
    sim.add_testbench(driver)
    sim.add_testbench(checker)
    sim.run()
    return failures


@pytest.mark.parametrize("name", list(PLANS))
def test_fetch_operands_match_model(name):
    C, config = PLANS[name]
    plan = build_plan(stress_export(C, seed=3, frames=FRAMES), config)
    rng = random.Random(seed_for(name))
    ops = random_ops(plan, rng)
    dut = OperandFetch(plan)
    bufs = Buffers.random(dut, rng)
    # the stream must exercise what is checked: every kind, both outcomes of the zero test,
    # unused lanes and ops that issue nothing
    wants = [expected(plan, bufs, op) for op in ops]
    assert sum(w["issued"] for w in wants) > 100 and sum(w["gated"] for w in wants) > 100
    assert any(not all(u is not None for u in w["a"]) for w in wants)

    failures = run_fetch(dut, ops, bufs)
    for n, op, bad, diff in failures[:5]:
        print(f"op {n} {op}: {bad}")
        for k, (g, w) in diff.items():
            print(f"   {k}: got {g}, want {w}")
    names = sorted({k for f in failures for k in f[2]})
    assert not failures, f"{len(failures)} of {len(ops)} ops wrong in {names}"
