"""The dense MACs the hardware report uses per layer are the ones `info` counts from the real
PyTorch modules (thop convention), and the counters' reference (real products) leaves out
exactly the 'same'-padding taps."""
import pytest

from sparknet_hw.complexity import layer_costs
from sparknet_hw.model import SparkNet
from sparknet_hw.quant.random_export import random_export
from sparknet_hw.rtl import HwConfig, build_plan, real_macs, thop_macs

TORCH_NAME = {"dw": "depthwise", "pw": "pointwise", "res": "residual.0"}


def torch_layer(name):
    if name in ("head", "classifier"):
        return name
    block, kind = name.split(".")
    return f"blocks.{int(block[len('block'):]) - 1}.{TORCH_NAME[kind]}"


@pytest.mark.parametrize("C", [4, 8, 16, 32])
def test_dense_macs_follow_info(C):
    plan = build_plan(random_export(C), HwConfig())
    costs = {c.name: c.macs for c in layer_costs(SparkNet(C))}
    dense = thop_macs(plan)
    assert set(dense) == {lay.name for lay in plan.layers} | {"classifier"}
    for name, macs in dense.items():
        assert macs == costs[torch_layer(name)], name


@pytest.mark.parametrize("C", [4, 32])
def test_real_macs_drop_only_padding_taps(C):
    plan = build_plan(random_export(C), HwConfig())
    dense, real = thop_macs(plan), real_macs(plan)
    for lay in plan.layers:
        h = lay.kernel // 2
        padding_taps = 2 * sum(range(1, h + 1))    # h + (h-1) + ... + 1 at each end
        expected = dense[lay.name] - (lay.c_in * padding_taps if lay.kind == "dw" else 0)
        assert real[lay.name] == expected, lay.name
