"""The classifiers' argmax scan: logits 0..K-1 read one per cycle through the classifier's
logit port, each compared with the best so far when it arrives, `latency` cycles after its
address (the first logit wins a tie, as in the golden model's argmax)."""
from __future__ import annotations

from amaranth.hdl import Module, Signal


def argmax_scan(m: Module, *, begin, value, latency: int, classes: int, done, cls):
    """Builds the scan into `m`. `begin`: start scanning (one cycle); `value`: the logit whose
    address was the scan's `latency` cycles earlier. Sets `done` and `cls` at the end.
    Returns (scanning, address): the parent drives its logit port from `address` while
    `scanning`, and clears `scanning` on its own start."""
    assert latency >= 1
    scanning = Signal()
    k = Signal(range(classes + 1))
    # the address and a valid bit travel with each read until its value arrives
    k_d = [Signal(range(classes), name=f"scan_k{i}") for i in range(latency)]
    v_d = [Signal(name=f"scan_v{i}") for i in range(latency)]
    m.d.sync += [k_d[0].eq(k), v_d[0].eq(scanning & (k < classes))]
    for i in range(1, latency):
        m.d.sync += [k_d[i].eq(k_d[i - 1]), v_d[i].eq(v_d[i - 1])]
    in_flight = v_d[0]
    for v in v_d[1:]:
        in_flight = in_flight | v
    best = Signal(range(classes))
    best_v = Signal.like(value)
    with m.If(begin):
        m.d.sync += [scanning.eq(1), k.eq(0)]
    with m.If(scanning):
        with m.If(k < classes):
            m.d.sync += k.eq(k + 1)
        with m.If(v_d[-1]):
            with m.If((k_d[-1] == 0) | (value > best_v)):
                m.d.sync += [best.eq(k_d[-1]), best_v.eq(value)]
        with m.If(~in_flight & (k == classes)):
            m.d.sync += [scanning.eq(0), done.eq(1), cls.eq(best)]
    return scanning, k[:len(k_d[0])]
