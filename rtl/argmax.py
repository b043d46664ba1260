"""The classifiers' argmax scan: logits 0..K-1 read one per cycle through the classifier's
logit port, each compared with the best so far the cycle after its address (SCAN_LATENCY;
the first logit wins a tie, as in the golden model's argmax)."""
from __future__ import annotations

from amaranth.hdl import Module, Signal

# cycles from a scan address to its logit on the classifier's port: both classifiers read a
# logit through one registered port (rtl/classifier.py) or block RAM (rtl/classifier_serial.py)
SCAN_LATENCY = 1


def argmax_scan(m: Module, *, begin, value, classes: int, done, cls):
    """Builds the scan into `m`. `begin`: start scanning (one cycle); `value`: the logit whose
    address was the scan's the cycle before. Sets `done` and `cls` at the end.
    Returns (scanning, address): the parent drives its logit port from `address` while
    `scanning`, and clears `scanning` on its own start."""
    scanning = Signal()
    k = Signal(range(classes + 1))
    # the address and a valid bit of the read whose value arrives this cycle
    k_d = Signal(range(classes), name="scan_k0")
    v_d = Signal(name="scan_v0")
    m.d.sync += [k_d.eq(k), v_d.eq(scanning & (k < classes))]
    best = Signal(range(classes))
    best_v = Signal.like(value)
    with m.If(begin):
        m.d.sync += [scanning.eq(1), k.eq(0)]
    with m.If(scanning):
        with m.If(k < classes):
            m.d.sync += k.eq(k + 1)
        with m.If(v_d):
            with m.If((k_d == 0) | (value > best_v)):
                m.d.sync += [best.eq(k_d), best_v.eq(value)]
        with m.If(~v_d & (k == classes)):
            m.d.sync += [scanning.eq(0), done.eq(1), cls.eq(best)]
    return scanning, k[:len(k_d)]
