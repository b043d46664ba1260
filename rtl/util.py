"""Small logic helpers shared by the generator's components (no multipliers: the UP5K's
DSPs are reserved for the PE lanes)."""
from __future__ import annotations

from amaranth.hdl import Cat, Const


def mul_const(x, k: int):
    """x * k for a non-negative constant k, as shifts and adds (never a $mul cell)."""
    assert k >= 0
    if k == 0:
        return Const(0, 1)
    terms = [x << i for i in range(k.bit_length()) if (k >> i) & 1]
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out


def popcount(v):
    bits = [v[i] for i in range(len(v))]
    if not bits:
        return Const(0, 1)
    while len(bits) > 1:
        nxt = []
        for i in range(0, len(bits) - 1, 2):
            nxt.append(bits[i] + bits[i + 1])
        if len(bits) % 2:
            nxt.append(bits[-1])
        bits = nxt
    return bits[0]


def lowest_set(v):
    """(one-hot of the lowest set bit, its index) of an unsigned value."""
    w = len(v)
    onehot = (v & (~v + 1))[:w]
    idx_bits = []
    for b in range(max(1, (w - 1).bit_length())):
        terms = [onehot[i] for i in range(w) if (i >> b) & 1]
        bit = terms[0] if terms else Const(0, 1)
        for t in terms[1:]:
            bit = bit | t
        idx_bits.append(bit)
    return onehot, Cat(*idx_bits)
