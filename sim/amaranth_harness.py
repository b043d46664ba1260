"""Run the accelerator in Amaranth's own simulator (used by the tests/test_rtl_*.py unit tests).

Slow (pure Python), so only for small widths; the cocotb benches (sim/) run the Verilog.
"""
from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator

from sparknet_hw.rtl.record import decode_record


async def stream_put(ctx, stream, payload):
    ctx.set(stream.valid, 1)
    ctx.set(stream.payload, payload)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def stream_get(ctx, stream):
    ctx.set(stream.ready, 1)
    payload, = await ctx.tick().sample(stream.payload).until(stream.valid)
    ctx.set(stream.ready, 0)
    return payload


def run_top(top, model: dict, clips, max_cycles: int = 2_000_000) -> list[dict]:
    """Feed clips (int [N, 32, T]) to a SparkNetAccelerator; return the decoded records."""
    clips = np.asarray(clips)
    records: list[dict] = []

    async def feeder(ctx):
        for x in clips:
            for t in range(x.shape[1]):
                for f in range(x.shape[0]):
                    await stream_put(ctx, top.features, int(x[f, t]))

    async def reader(ctx):
        for _ in clips:
            words = []
            while True:
                word = await stream_get(ctx, top.result)
                words.append(int(word.data))
                if word.last:
                    break
            records.append(decode_record(model, words))

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(feeder, background=True)
    sim.add_testbench(reader)
    sim.run_until(max_cycles * 1e-8)
    return records
