"""Deframer and framer unit simulations (amaranth.sim), against boards/protocol.py."""
import numpy as np
import pytest
from amaranth.sim import Simulator

from sparknet_hw.boards import protocol as P
from sparknet_hw.boards.framer import Deframer, Framer, Kind

N = 6          # payload bytes of an INFER frame in these tests (a clip is 3232 on the board)
TIMEOUT = 40


def test_crc8_known_values():
    # CRC-8/SMBUS check value
    assert P.crc8(b"123456789") == 0xF4
    frame = P.encode_frame(P.T_INFO)
    assert frame == bytes([P.SYNC, P.T_INFO, 0, 0, P.crc8(bytes([P.T_INFO, 0, 0]))])
    assert P.decode_frame(b"\x00\x13" + frame) == P.Frame(P.T_INFO, b"")
    bad = bytearray(P.encode_frame(P.T_ERROR, b"\x01"))
    bad[-2] ^= 1
    with pytest.raises(P.ProtocolError, match="checksum"):
        P.decode_frame(bytes(bad))


def test_features_payload_order():
    x = np.arange(32 * 101).reshape(32, 101) % 200 - 100
    payload = P.features_payload(x)
    assert len(payload) == 3232
    # frame by frame: byte t*32 + f holds x[f, t]
    assert np.frombuffer(payload, np.int8)[5 * 32 + 7] == x[7, 5]
    with pytest.raises(ValueError):
        P.features_payload(x * 10)


def run_deframer(script, result_done_at=()):
    """script: list of ("bytes", data) / ("wait", cycles) / ("framing_error",).
    Returns (features, requests, inflight trace)."""
    dut = Deframer(N, TIMEOUT)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    features, requests, inflight = [], [], []

    async def driver(ctx):
        await ctx.tick().repeat(2)
        for step in script:
            if step[0] == "bytes":
                for b in step[1]:
                    ctx.set(dut.i.payload, b)
                    ctx.set(dut.i.valid, 1)
                    await ctx.tick().until(dut.i.ready)
                    ctx.set(dut.i.valid, 0)
                    await ctx.tick().repeat(3)
            elif step[0] == "wait":
                await ctx.tick().repeat(step[1])
            elif step[0] == "framing_error":
                ctx.set(dut.framing_error, 1)
                await ctx.tick()
                ctx.set(dut.framing_error, 0)
            elif step[0] == "done":
                ctx.set(dut.result_done, 1)
                await ctx.tick()
                ctx.set(dut.result_done, 0)

    async def sink(ctx):
        ctx.set(dut.features.ready, 1)
        ctx.set(dut.request.ready, 1)
        async for _, _, fv, fp, rv, rp, busy in ctx.tick().sample(
                dut.features.valid, dut.features.payload, dut.request.valid,
                dut.request.payload, dut.inflight):
            if fv:
                features.append(fp)
            if rv:
                requests.append((Kind(rp.kind), rp.code, rp.drain))
            inflight.append(busy)

    sim.add_testbench(driver)
    sim.add_process(sink)
    sim.run_until(3e-3)
    return features, requests, inflight


def infer(payload=bytes([1, 2, 3, 0x80, 0xFF, 7])):
    return P.encode_frame(P.T_INFER, payload)


def test_deframer_good_frames():
    feats, reqs, busy = run_deframer([("bytes", infer()), ("wait", 5), ("done",),
                                      ("bytes", P.encode_info())])
    assert feats == [1, 2, 3, -128, -1, 7]
    assert reqs == [(Kind.RESULT, 0, 0), (Kind.INFO, 0, 0)]
    assert busy[-1] == 0 and max(busy) == 1


def test_deframer_bad_checksum_drains_clip():
    frame = bytearray(infer())
    frame[-1] ^= 0x55
    feats, reqs, _ = run_deframer([("bytes", bytes(frame)), ("wait", 5), ("done",),
                                   ("bytes", infer())])
    assert len(feats) == 2 * N
    assert reqs == [(Kind.ERROR, P.E_CHECKSUM, 1), (Kind.RESULT, 0, 0)]


def test_deframer_length_type_busy_then_recovers():
    wrong_len = P.encode_frame(P.T_INFER, bytes(N - 1))
    unknown = P.encode_frame(0x33, b"\x01")
    feats, reqs, _ = run_deframer([
        ("bytes", wrong_len), ("wait", TIMEOUT + 10),
        ("bytes", unknown), ("wait", TIMEOUT + 10),
        ("bytes", infer()),                         # accepted, its answer is pending ...
        ("bytes", infer()), ("wait", TIMEOUT + 10),  # ... so this one is busy
        ("done",), ("bytes", P.encode_info())])
    assert reqs == [(Kind.ERROR, P.E_LENGTH, 0), (Kind.ERROR, P.E_TYPE, 0),
                    (Kind.RESULT, 0, 0), (Kind.ERROR, P.E_BUSY, 0), (Kind.INFO, 0, 0)]
    assert len(feats) == N


def test_deframer_timeout_mid_payload_fills_zeros():
    frame = infer()
    feats, reqs, _ = run_deframer([("bytes", frame[:7]), ("wait", TIMEOUT + 20), ("done",),
                                   ("bytes", P.encode_info())])
    # header is 4 bytes, so 3 payload bytes went through; the rest of the clip is zeros
    assert feats == [1, 2, 3, 0, 0, 0]
    assert reqs == [(Kind.ERROR, P.E_TIMEOUT, 1), (Kind.INFO, 0, 0)]


def test_deframer_timeout_in_header_and_framing_error():
    feats, reqs, _ = run_deframer([("bytes", bytes([P.SYNC, P.T_INFO])), ("wait", TIMEOUT + 5),
                                   ("bytes", bytes([P.SYNC, P.T_INFO])), ("framing_error",),
                                   ("wait", TIMEOUT + 5), ("bytes", P.encode_info())])
    assert feats == []
    assert reqs == [(Kind.ERROR, P.E_TIMEOUT, 0), (Kind.ERROR, P.E_FRAMING, 0),
                    (Kind.INFO, 0, 0)]


def run_framer(requests, words, o_ready_every=1):
    info = P.info_payload(8, len(words), 0xDEADBEEF)
    dut = Framer(n_words=len(words), info=info, class_index=2)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    out, done = [], []
    state = {}

    async def req_driver(ctx):
        for kind, code, drain, feed in requests:
            ctx.set(dut.request.payload, {"kind": kind, "code": code, "drain": drain})
            ctx.set(dut.request.valid, 1)
            await ctx.tick().until(dut.request.ready)
            ctx.set(dut.request.valid, 0)
            if feed:
                for i, w in enumerate(words):
                    ctx.set(dut.result.payload, {"data": w, "last": i == len(words) - 1})
                    ctx.set(dut.result.valid, 1)
                    await ctx.tick().until(dut.result.ready)
                    ctx.set(dut.result.valid, 0)
        await ctx.tick().repeat(200)
        state["leds"] = (ctx.get(dut.last_class), ctx.get(dut.class_valid),
                         ctx.get(dut.last_error))

    async def sink(ctx):
        n = 0
        async for _, _, valid, ready, payload, d in ctx.tick().sample(
                dut.o.valid, dut.o.ready, dut.o.payload, dut.result_done):
            if valid and ready:
                out.append(payload)
            n += 1
            ctx.set(dut.o.ready, n % o_ready_every == 0)
            if d:
                done.append(1)

    sim.add_testbench(req_driver)
    sim.add_process(sink)
    sim.run_until(5e-3)
    return bytes(out), done, state["leds"]


def test_framer_result_error_info():
    words = [0xFFFFFFFE, 5, 3, 0x01020304]
    out, done, leds = run_framer([(Kind.RESULT, 0, 0, True), (Kind.ERROR, P.E_CHECKSUM, 1, True),
                                  (Kind.INFO, 0, 0, False), (Kind.ERROR, P.E_TYPE, 0, False)],
                                 words, o_ready_every=3)
    frames = P.FrameDecoder().feed(out)
    assert [f.type for f in frames] == [P.T_RESULT, P.T_ERROR, P.T_INFO_REPLY, P.T_ERROR]
    assert P.words_le(frames[0].payload) == words
    assert P.error_code(frames[1]) == P.E_CHECKSUM
    assert P.decode_info(frames[2]) == {"version": P.PROTOCOL_VERSION, "C": 8,
                                        "record_words": 4, "fingerprint": 0xDEADBEEF}
    assert P.error_code(frames[3]) == P.E_TYPE
    assert len(done) == 2          # one sent result, one drained
    assert leds == (3, 1, 1)       # class word 2 = 3; a result was sent; last answer an error
