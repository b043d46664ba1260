"""The schedule: one MAC operation (an "op") per cycle for the whole network.

Five passes: blocks 1..4, then the head. A block pass walks steps s = 0..T:
  step s: DW(s)       depthwise of frame s (if s < T): for each lane group g of the input
                      channels, the valid taps k (zero padding is never visited); lane p
                      computes channel g*P+p with its own weight and activation word.
          1x1(s-1)    (if s >= 1) for each output group og: PW segment over the non-zero
                      channels c of d[:, s-1] (one broadcast activation per op), then RES
                      segment over the non-zero channels of a[:, s-1].
The 1x1 work lags the depthwise by one frame so that d[:, s-1] has left the pipeline before
it is read. The head pass walks the same steps with no DW phase and a HEAD segment per output
group. A segment whose mask is empty still issues one op (mac=0) that carries the bias.

Zero skipping: with `zero_skip`, segments iterate over the set bits of the per-frame non-zero
mask (lowest first, one per cycle, no bubbles between segments); without it, over every
channel (zero activations then reach the PEs and are only gated). `skip_depthwise` adds the
depthwise skipping of all-zero P-lane words (a K-frame window of word non-zero bits per lane
group); without it the depthwise visits every valid tap, which saves most of the skipping logic.

Frame-parallel passes (plan.passes[i].frames: blocks 2..4 with all skipping): the depthwise
runs once per tile of P frames, at steps s = 0 mod P: for each channel c (g holds c), the
set bits of a register of the non-zero inputs of frames s-K/2 .. s+P-1+K/2, one broadcast
input per op (lane j computes frame s+j). Steps inside a tile have only their 1x1 work; d
lives in banks by tile parity with per-frame masks (`tmask`).

Parts: SegmentWalker (rtl/seg_walk.py) walks a 1x1 segment's channels, SkipWindows
(rtl/skip_windows.py) holds the depthwise skip windows, SkipCounter (rtl/skip_count.py)
reports the skipped products; this file keeps the FSM over passes, steps and phases.
"""
from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Mux, Signal
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from .config import Plan
from .seg_walk import START_LAG, Segment, SegmentWalker
from .skip_count import SkipCounter
from .skip_windows import SkipWindows
from .util import lowest_set



class OpKind(enum.Enum, shape=2):
    """What an op computes: the pipeline after the sequencer decodes its operands from it."""
    DW = 0       # depthwise tap (lane p: its own channel, or frame-parallel: its own frame)
    PW = 1       # pointwise 1x1 product (one broadcast activation)
    RES = 2      # residual 1x1 product
    HEAD = 3     # head 1x1 product (accumulators go to the gate unit)


class Phase(enum.Enum, shape=3):
    DW = 0       # depthwise ops of step s
    ONE = 1      # 1x1 segments of frame s-1 (or the head frame)
    IDLE = 2     # waiting for d of frame s-1 to be readable (or a head step change)
    DONE = 3
    PRE = 4      # preloading the depthwise skip windows at the start of a pass
    DRAIN = 5    # between passes, until the last write into a single-port buffer is done

D_LAT = 8    # cycles from a depthwise emit op to its d memory word / mask being readable
# cycles from that op until the 1x1 work may start: the segment walk starts from masks
# registered a cycle earlier (rtl/seg_walk.py START_LAG)
D_WAIT = D_LAT + START_LAG
# With single-port activation buffers (rtl/spram.py) a pass may not read its input buffer
# while the pass before still writes it. An op issued in cycle c is read from the buffers in
# c + 1 (the fetch's op register) and written back in c + 7 (fetch t1, S1b, writeback S2..S5);
# after the last op of a pass, DRAIN_CYCLES cycles put the next pass's first read at c + 8.
DRAIN_CYCLES = 6


def op_layout(plan: Plan) -> data.StructLayout:
    groups = max(max(l.groups for l in plan.layers), 1)
    return data.StructLayout({
        "valid": 1,
        "layer": range(max(plan.n_layers, 2)),
        "kind": OpKind,
        "mac": 1,
        "clear": 1,
        "emit": 1,
        "grp": range(max(groups, 2)),
        "c": range(max(plan.mask_width, 2)),
        "k": range(max(max(p.window for p in plan.passes), 2)),
        "u": range(plan.T),
        "t": range(plan.T),
        "bank": 1,
        "pass_": range(len(plan.passes)),
    })


class Sequencer(wiring.Component):
    def __init__(self, plan: Plan):
        self.plan = plan
        W = plan.mask_width
        super().__init__({
            "start": In(1),
            "hold": In(1),                       # no credit for a new head frame
            "dmask": In(data.ArrayLayout(W, 2)),  # non-zero lanes of d, per bank
            # frame-parallel depthwise: non-zero channels of each frame of a d tile, per bank
            "tmask": In(data.ArrayLayout(data.ArrayLayout(W, plan.P), 2)),
            "mask_x": In(W),                     # mask memories' read data (buffer X / B)
            "mask_b": In(W),
            "mask_addr": Out(range(plan.T + 1)),
            "dwmask_x": In(W),                   # second read port: frames ahead (depthwise)
            "dwmask_b": In(W),
            "dwmask_addr": Out(range(plan.T + 2 * max(p.window for p in plan.passes) + 2)),
            "op": Out(op_layout(plan)),
            "busy": Out(1),
            "done": Out(1),
            "cyc_valid": Out(1),
            "cyc_layer": Out(range(max(plan.n_layers, 2))),
            "skip_gated": Out(16),
            "head_frame_start": Out(1),
        })

    def elaborate(self, platform):
        plan = self.plan
        m = Module()
        T, W, P, C = plan.T, plan.mask_width, plan.P, plan.C
        skip = plan.config.zero_skip
        dskip = skip and plan.config.skip_depthwise
        passes = plan.passes + [plan.passes[-1]]        # padded for "next pass" lookups
        npass = len(plan.passes)

        def arr(f):
            return Array([Const(f(p)) for p in passes])

        A_K = arr(lambda p: p.kernel)
        A_H = arr(lambda p: p.half)
        A_GIN = arr(lambda p: p.gin - 1)
        A_NOG = arr(lambda p: p.n_og - 1)
        A_RES = arr(lambda p: int(p.has_res))
        A_HEAD = arr(lambda p: int(p.is_head))
        A_LDW = arr(lambda p: p.l_dw)
        A_LPW = arr(lambda p: p.l_pw)
        A_LRES = arr(lambda p: p.l_res)
        A_ISB = arr(lambda p: int(p.a_buf == "B"))
        A_CINMASK = Array([Const((1 << p.c_in) - 1, W) for p in passes])
        # frame-parallel depthwise passes (plan.passes[i].frames): a step s = 0 mod P runs the
        # depthwise of the frame tile s..s+P-1 channel by channel (g is the channel), over the
        # non-zero inputs of the channel's window of frames s-K/2 .. s+P-1+K/2
        fdw = any(p.frames for p in plan.passes)
        lg_p = plan.lg_p
        A_FR = arr(lambda p: int(p.frames))
        A_GLAST = arr(lambda p: (p.c_in - 1) if p.frames else (p.gin - 1))
        A_AHEAD = arr(lambda p: p.half + (P if p.frames else 1))   # window frames ahead of s
        cmask = Const((1 << C) - 1, W)

        running = Signal()
        done = Signal()
        pass_ = Signal(range(npass + 1))
        s = Signal(range(T + 1))
        phase = Signal(Phase)
        fr = A_FR[pass_] if fdw else Const(0)
        g = Signal(range(max([p.gin for p in plan.passes] + [C * fdw]) + 1))
        k = Signal(range(max(p.window for p in plan.passes) + 1))
        og = Signal(range(max(p.n_og for p in plan.passes) + 1))
        sub = Signal()
        # the 1x1 segment walk (rtl/seg_walk.py): the current channel and the rest
        m.submodules.walk = walk = SegmentWalker(W, C, fdw)
        first, last_in_seg = walk.first, walk.last
        amask_cur = Signal(W)

        n_pass, n_s = Signal.like(pass_), Signal.like(s)
        n_phase = Signal(Phase)
        n_k, n_og, n_sub = Signal.like(k), Signal.like(og), Signal.like(sub)
        n_amask = Signal.like(amask_cur)
        n_running, n_done = Signal(), Signal()
        m.d.comb += [n_pass.eq(pass_), n_s.eq(s), n_phase.eq(phase), n_k.eq(k),
                     n_og.eq(og), n_sub.eq(sub),
                     n_amask.eq(amask_cur), n_running.eq(running), n_done.eq(done)]
        m.d.sync += [pass_.eq(n_pass), s.eq(n_s), phase.eq(n_phase), k.eq(n_k),
                     og.eq(n_og), sub.eq(n_sub),
                     amask_cur.eq(n_amask), running.eq(n_running), done.eq(n_done)]

        K, h = A_K[pass_], A_H[pass_]
        is_head = A_HEAD[pass_]
        # depthwise zero skipping: the windows of frames around s (rtl/skip_windows.py)
        KM = max(p.kernel for p in plan.passes)
        LM = max(p.window for p in plan.passes)       # >= KM: the walk registers hold either
        drem, n_drem = Signal(LM), Signal(LM)
        dfirst, n_dfirst = Signal(), Signal()
        since = [Signal(range(D_WAIT + 1), name=f"since{b}", init=D_WAIT) for b in range(2)]
        m.d.comb += [n_drem.eq(drem), n_dfirst.eq(dfirst)]
        m.d.sync += [drem.eq(n_drem), dfirst.eq(n_dfirst)]
        if dskip or fdw:
            m.submodules.windows = wins = SkipWindows(plan, self.dwmask_addr.shape())
            m.d.comb += [wins.word.eq(Mux(A_ISB[pass_], self.dwmask_b, self.dwmask_x)),
                         wins.addr.eq(self.dwmask_addr), wins.km1.eq(K - 1),
                         wins.lm1.eq(Array([Const(p.window - 1) for p in passes])[pass_])]
            win_arr = Array(wins.win[i] for i in range(len(wins.win)))
            fwin_arr = Array(wins.fwin[c] for c in range(len(wins.fwin))) if fdw else None

        def shift_windows():
            if dskip or fdw:
                m.d.comb += wins.shift.eq(1)

        def taps_mask(sv):
            lo = Signal(range(KM + 1))
            hi = Signal(range(KM + 1))
            m.d.comb += [lo.eq(Mux(sv >= h, 0, h - sv)),
                         hi.eq(Mux(sv + K - 1 - h <= T - 1, K - 1, T - 1 - sv + h))]
            return (((Const(1, KM + 1) << (hi + 1)) - 1) & ~((Const(1, KM + 1) << lo) - 1))[:KM]

        # the valid taps of the current step (vt, klo..khi) are registers, loaded when the
        # step changes from values computed off the registered s (s + 1, or step 0 of the
        # next pass), so they are not on the next-state path (the iCE40's longest)
        def first_step_taps(p):
            return p.half, min(p.kernel - 1, T - 1 + p.half)

        vt, n_vt = Signal(KM), Signal(KM)
        vt_next_step = Signal(KM)
        m.d.comb += [vt_next_step.eq(taps_mask(s + 1)), n_vt.eq(vt)]
        m.d.sync += vt.eq(n_vt)
        def first_step_mask(p):
            lo, hi = first_step_taps(p)
            return sum(1 << t for t in range(lo, hi + 1))

        A_VT0 = Array([Const(first_step_mask(p), KM) for p in passes])
        _, d_idx = lowest_set(drem)
        drem_next = Signal(LM)
        m.d.comb += drem_next.eq(drem & (drem - 1))
        mrd = Signal(W)
        m.d.comb += mrd.eq(Mux(A_ISB[pass_], self.mask_b, self.mask_x))

        def k_lo(sv, hv):
            return Mux(sv >= hv, 0, hv - sv)

        klo, khi, n_klo, n_khi = Signal.like(k), Signal.like(k), Signal.like(k), Signal.like(k)
        klo_next_step, khi_next_step = Signal.like(k), Signal.like(k)
        s1 = s + 1
        m.d.comb += [klo_next_step.eq(k_lo(s1, h)),
                     khi_next_step.eq(Mux(s1 + K - 1 - h <= T - 1, K - 1, T - 1 - s1 + h)),
                     n_klo.eq(klo), n_khi.eq(khi)]
        m.d.sync += [klo.eq(n_klo), khi.eq(n_khi)]
        A_KLO0 = Array([Const(first_step_taps(p)[0]) for p in passes])
        A_KHI0 = Array([Const(first_step_taps(p)[1]) for p in passes])

        def load_step_taps(next_step, pass_idx=None):
            """The valid taps of the step the next state enters: s + 1 of this pass, or
            step 0 of pass `pass_idx`."""
            if next_step:
                m.d.comb += [n_klo.eq(klo_next_step), n_khi.eq(khi_next_step),
                             n_vt.eq(vt_next_step)]
            else:
                m.d.comb += [n_klo.eq(A_KLO0[pass_idx]), n_khi.eq(A_KHI0[pass_idx]),
                             n_vt.eq(A_VT0[pass_idx])]

        # the mask memories' read addresses (read one cycle ahead, for the step the next
        # state is in) are chosen among values computed off the registered state, too
        maddr_stay = Signal.like(self.mask_addr)
        maddr_step = Signal.like(self.mask_addr)
        m.d.comb += [maddr_stay.eq(Mux(is_head, s, Mux(s == 0, 0, s - 1))),
                     maddr_step.eq(Mux(is_head, s + 1, s)),
                     self.mask_addr.eq(maddr_stay)]
        # Without depthwise skipping the mask read address is the registered step's
        # (maddr_stay), never the next-state decision's: that decision in front of the
        # memory address was the iCE40's longest path. The mask data is then one cycle
        # late in a step's first cycle ("fresh"), where only the head's step 0 reads it.
        fresh, n_fresh = Signal(), Signal()
        m.d.sync += fresh.eq(n_fresh)
        dwaddr_stay = Signal.like(self.dwmask_addr)
        dwaddr_step = Signal.like(self.dwmask_addr)
        m.d.comb += [dwaddr_stay.eq(s + A_AHEAD[pass_]), dwaddr_step.eq(s + A_AHEAD[pass_] + 1),
                     self.dwmask_addr.eq(dwaddr_stay)]

        # d banks: frame parity, or tile parity in frame-parallel passes
        prev_bank = Signal()
        dw_bank = Signal()
        sm1 = Signal.like(s)
        m.d.comb += sm1.eq(s - 1)
        m.d.comb += [prev_bank.eq(Mux(fr, sm1[lg_p], sm1[0])), dw_bank.eq(Mux(fr, s[lg_p], s[0]))]
        pw_mask = Signal(W)
        res_mask = Signal(W)
        head_mask = Signal(W)
        # in a frame-parallel pass the 1x1 frame of the next step is s: its d mask
        pw_mask_next = Signal(W)
        d_ready_next = Signal()
        if fdw:
            tm = self.tmask
            m.d.comb += pw_mask.eq(Mux(fr, tm[prev_bank][sm1[:lg_p]], self.dmask[prev_bank])
                                   & A_CINMASK[pass_])
            m.d.comb += pw_mask_next.eq(tm[s[lg_p]][s[:lg_p]] & A_CINMASK[pass_])
        if skip:
            if not fdw:
                m.d.comb += pw_mask.eq(self.dmask[prev_bank] & A_CINMASK[pass_])
            m.d.comb += [res_mask.eq(mrd & cmask), head_mask.eq(amask_cur & cmask)]
        else:
            m.d.comb += [pw_mask.eq(A_CINMASK[pass_]), res_mask.eq(cmask),
                         head_mask.eq(cmask)]

        # the next state starts a 1x1 segment over the mask of source src
        m.d.comb += [walk.pw.eq(pw_mask), walk.res.eq(res_mask), walk.head.eq(head_mask),
                     walk.pw_next.eq(pw_mask_next)]

        def seg_start(src):
            m.d.comb += [walk.go.eq(1), walk.src.eq(src)]

        s_inc = Signal.like(s)
        m.d.comb += s_inc.eq(s + 1)

        def enter_next_step():
            ns = s_inc
            m.d.comb += [n_s.eq(ns), n_fresh.eq(1), self.mask_addr.eq(maddr_step),
                         self.dwmask_addr.eq(dwaddr_step)]
            load_step_taps(True)
            with m.If(is_head):
                m.d.comb += [n_phase.eq(Phase.ONE), n_og.eq(0), n_sub.eq(0)]
                seg_start(Segment.RES)       # the head frame's input mask, as for a residual
                m.d.comb += n_amask.eq(mrd)
            with m.Elif(ns < T):
                shift_windows()
                with m.If(~fr | (ns[:lg_p] == 0) if fdw else 1):
                    enter_dw_step(True)
                with m.Else():        # frame-parallel, inside a tile: the 1x1 of frame s
                    with m.If(d_ready_next):
                        m.d.comb += [n_phase.eq(Phase.ONE), n_og.eq(0), n_sub.eq(0)]
                        seg_start(Segment.PW_NEXT)
                    with m.Else():
                        m.d.comb += [n_phase.eq(Phase.IDLE), n_og.eq(0), n_sub.eq(0)]
            with m.Else():  # step T: only the 1x1 work of frame T-1, after d[:, T-1] landed
                m.d.comb += [n_phase.eq(Phase.IDLE), n_og.eq(0), n_sub.eq(0)]

        def enter_next_pass():
            nxt = pass_ + 1
            m.d.comb += [n_pass.eq(nxt), n_s.eq(0), n_fresh.eq(1), n_og.eq(0),
                         n_sub.eq(0),
                         self.mask_addr.eq(0), self.dwmask_addr.eq(A_H[nxt] + 1)]
            load_step_taps(False, nxt)
            with m.If(A_HEAD[nxt]):
                m.d.comb += n_phase.eq(Phase.IDLE)
            with m.Else():
                start_pass_dw(None)

        drain_cycles = DRAIN_CYCLES if plan.config.activation_ram == "spram" else 0
        drain = Signal(range(DRAIN_CYCLES + 1))

        def end_of_step():
            with m.If(s == T):
                with m.If(pass_ == npass - 1):
                    m.d.comb += [n_phase.eq(Phase.DONE), n_running.eq(0), n_done.eq(1)]
                with m.Else():
                    if drain_cycles:
                        m.d.comb += n_phase.eq(Phase.DRAIN)
                        m.d.sync += drain.eq(0)
                    else:
                        enter_next_pass()
            with m.Else():
                enter_next_step()

        # the op of this cycle
        op = self.op
        one_layer = Signal.like(op.layer)
        m.d.comb += one_layer.eq(Mux(is_head, A_LPW[pass_], Mux(sub, A_LRES[pass_], A_LPW[pass_])))
        stall = Signal()
        m.d.comb += stall.eq((phase == Phase.ONE) & is_head & (og == 0) & first & self.hold)
        issue = Signal()
        m.d.comb += issue.eq(running & ~stall & ((phase == Phase.DW) | (phase == Phase.ONE)))
        m.d.comb += [op.valid.eq(issue), op.pass_.eq(pass_)]
        with m.If(phase == Phase.DW):
            m.d.comb += [op.layer.eq(A_LDW[pass_]), op.kind.eq(OpKind.DW), op.grp.eq(g),
                         op.t.eq(s), op.bank.eq(s[0])]
            if dskip:
                m.d.comb += [op.mac.eq(drem != 0), op.clear.eq(dfirst),
                             op.emit.eq(drem_next == 0), op.k.eq(d_idx),
                             op.u.eq(s + d_idx - h), op.bank.eq(dw_bank)]
                with m.If(fr):        # frame-parallel: g is the channel, t the tile's first frame
                    m.d.comb += [op.grp.eq(0), op.c.eq(g)]
            else:
                m.d.comb += [op.mac.eq(1), op.clear.eq(k == klo), op.emit.eq(k == khi),
                             op.k.eq(k), op.u.eq(s + k - h)]
        with m.Else():
            m.d.comb += [op.layer.eq(one_layer),
                         op.kind.eq(Mux(is_head, OpKind.HEAD, Mux(sub, OpKind.RES, OpKind.PW))),
                         op.mac.eq(walk.valid), op.clear.eq(first), op.emit.eq(last_in_seg),
                         op.grp.eq(og), op.c.eq(walk.c), op.t.eq(s - 1), op.u.eq(s - 1),
                         op.bank.eq(prev_bank)]
        m.d.comb += self.head_frame_start.eq(issue & is_head & (og == 0) & first)

        # counters' view of this cycle
        m.d.comb += [self.cyc_valid.eq(running & (phase != Phase.DONE)),
                     self.cyc_layer.eq(Mux((phase == Phase.DW) | (phase == Phase.PRE), A_LDW[pass_],
                                           Mux(phase == Phase.DRAIN, A_LPW[pass_], one_layer)))]
        # the skipped products of a segment or depthwise walk, in its first op
        m.submodules.skips = skips = SkipCounter(plan, pass_.shape(), s.shape(), g.shape(),
                                                 og.shape())
        m.d.comb += [skips.pass_.eq(pass_), skips.head.eq(is_head), skips.frames.eq(fr),
                     skips.s.eq(s), skips.g.eq(g), skips.og.eq(og), skips.sub.eq(sub),
                     skips.rem.eq(walk.rem), skips.cur_valid.eq(walk.valid), skips.vt.eq(vt),
                     skips.drem.eq(drem),
                     skips.one_first.eq(issue & (phase == Phase.ONE) & first),
                     skips.dw_first.eq(issue & (phase == Phase.DW) & dfirst),
                     self.skip_gated.eq(skips.gated)]

        for b in range(2):
            with m.If(issue & (phase == Phase.DW) & op.emit & (dw_bank == b)):
                m.d.sync += since[b].eq(0)
            with m.Elif(since[b] != D_WAIT):
                m.d.sync += since[b].eq(since[b] + 1)
        d_ready = Signal()
        m.d.comb += [d_ready.eq(Array(since)[prev_bank] == D_WAIT),
                     # (leaving the depthwise: its last op is an emit into that bank)
                     d_ready_next.eq((Array(since)[s[lg_p]] == D_WAIT) & (phase != Phase.DW)
                                     if fdw else 0)]

        def start_pass_dw(first_pass):
            """Enter the depthwise of step 0 of a block pass (via the window preload)."""
            if dskip:
                m.d.comb += [n_phase.eq(Phase.PRE), n_k.eq(0), self.dwmask_addr.eq(0),
                             wins.clear.eq(1)]
            else:
                m.d.comb += [n_phase.eq(Phase.DW), n_k.eq(first_pass.half if first_pass else
                                                       A_H[pass_ + 1])]

        def enter_dw_step(next_step):
            """Into the depthwise of step s + 1 (next_step) or of step 0 after the preload
            (the windows shift in the same cycle)."""
            m.d.comb += [n_phase.eq(Phase.DW)]
            if dskip:
                taps = vt_next_step if next_step else vt
                m.d.comb += [n_drem.eq(wins.win0_next & taps), n_dfirst.eq(1)]
                if fdw:
                    with m.If(fr):
                        m.d.comb += n_drem.eq(wins.fwin0_next)
            else:
                m.d.comb += n_k.eq(klo_next_step if next_step else klo)

        # a PW segment may start once the step's masks are a cycle old (rtl/seg_walk.py
        # START_LAG): not in a step's first cycle
        settled = Signal()
        m.d.comb += settled.eq(~fresh)

        def enter_one_after_dw():
            with m.If(d_ready & settled):
                m.d.comb += [n_phase.eq(Phase.ONE), n_og.eq(0), n_sub.eq(0)]
                seg_start(Segment.PW)
            with m.Else():
                m.d.comb += [n_phase.eq(Phase.IDLE), n_og.eq(0), n_sub.eq(0)]

        # next state
        with m.If(self.start & ~running):
            m.d.comb += [n_running.eq(1), n_done.eq(0), n_pass.eq(0), n_s.eq(0),
                         n_og.eq(0), n_sub.eq(0), self.mask_addr.eq(0),
                         self.dwmask_addr.eq(passes[0].half + 1)]
            load_step_taps(False, 0)
            start_pass_dw(passes[0])
        with m.Elif(issue & (phase == Phase.DW)):
            if dskip:
                with m.If(drem_next != 0):
                    m.d.comb += [n_drem.eq(drem_next), n_dfirst.eq(0)]
                with m.Elif(g != A_GLAST[pass_]):
                    m.d.comb += [n_drem.eq(win_arr[g + 1] & vt), n_dfirst.eq(1)]
                    if fdw:
                        with m.If(fr):
                            m.d.comb += n_drem.eq(fwin_arr[g + 1])
                with m.Elif(s == 0):
                    enter_next_step()
                with m.Else():
                    enter_one_after_dw()
            else:
                with m.If(k != khi):
                    m.d.comb += n_k.eq(k + 1)
                with m.Elif(g != A_GIN[pass_]):
                    m.d.comb += [n_k.eq(klo)]
                with m.Elif(s == 0):
                    enter_next_step()
                with m.Else():
                    enter_one_after_dw()
        with m.Elif(running & (phase == Phase.PRE)):
            shift_windows()
            with m.If(k == A_AHEAD[pass_] - 1):
                enter_dw_step(False)
            with m.Else():
                m.d.comb += [n_k.eq(k + 1), self.dwmask_addr.eq(k + 1)]
        with m.Elif(issue & (phase == Phase.ONE)):
            with m.If(~last_in_seg):
                m.d.comb += walk.advance.eq(1)
            with m.Elif(~is_head & A_RES[pass_] & ~sub):
                m.d.comb += n_sub.eq(1)
                seg_start(Segment.RES)
            with m.Elif(og != A_NOG[pass_]):
                m.d.comb += [n_og.eq(og + 1), n_sub.eq(0)]
                seg_start(Mux(is_head, Segment.HEAD, Segment.PW))
            with m.Else():
                end_of_step()
        with m.Elif(running & (phase == Phase.DRAIN)):
            with m.If(drain == drain_cycles - 1):
                enter_next_pass()
            with m.Else():
                m.d.sync += drain.eq(drain + 1)
        with m.Elif(running & (phase == Phase.IDLE)):
            with m.If(is_head):
                with m.If(~fresh if not dskip else 1):
                    enter_next_step()
            with m.Elif(d_ready & settled):
                m.d.comb += [n_phase.eq(Phase.ONE), n_og.eq(0), n_sub.eq(0)]
                seg_start(Segment.PW)

        # g (the depthwise lane group, or channel) is read only in the depthwise phase, so it
        # is cleared in every other phase and steps on its own depthwise walk, rather than
        # following the next-state decision (the end of that decision was g's enable, the
        # UP5K's longest path)
        g_last = A_GLAST[pass_] if dskip else A_GIN[pass_]
        g_done = (drem_next == 0) if dskip else (k == khi)
        with m.If(phase != Phase.DW):
            m.d.sync += g.eq(0)
        with m.Elif(issue & g_done):
            m.d.sync += g.eq(Mux(g == g_last, 0, g + 1))
        if not dskip:
            m.d.comb += self.mask_addr.eq(maddr_stay)
        m.d.comb += [self.busy.eq(running), self.done.eq(done)]
        return m
