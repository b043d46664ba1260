"""The plan (rtl/config.py): which depthwise runs frame-parallel, and its weight words."""
import numpy as np

from sparknet_hw.quant.random_export import random_export
from sparknet_hw.rtl.config import HwConfig, build_plan


def unpack(word, bits, lanes):
    vals = [(word >> (j * bits)) & ((1 << bits) - 1) for j in range(lanes)]
    return [v - (1 << bits) if v >> (bits - 1) else v for v in vals]


def test_frame_parallel_depthwise_only_where_every_zero_can_be_skipped():
    assert HwConfig().depthwise == "frames"
    for hw in (HwConfig().with_skip("1x1"), HwConfig().with_skip("off"),
               HwConfig(dw_frames=False), HwConfig(cols=1)):
        assert hw.depthwise == "channels"
        assert not any(p.frames for p in build_plan(random_export(4, seed=2), hw).passes)
    plan = build_plan(random_export(4, seed=2), HwConfig())
    assert [p.frames for p in plan.passes] == [False, True, True, True, False]


def test_frame_parallel_weight_words_hold_the_kernel_diagonals():
    model = random_export(8, seed=4)
    plan = build_plan(model, HwConfig(cols=4))
    P = plan.P
    for lay in (l for l in plan.layers if l.frames):
        w = np.asarray(model["blocks"][lay.block - 1]["dw"]["weight"])
        K = lay.kernel
        for c in range(lay.c_in):
            for r in range(K + P - 1):
                word = plan.weight_image[lay.wbase + c * (K + P - 1) + r]
                # lane j computes output frame s0 + j; window offset r is tap r - j for it
                assert unpack(word, plan.wbits, P) == [int(w[c, r - j]) if 0 <= r - j < K else 0
                                                       for j in range(P)]
