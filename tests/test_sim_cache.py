"""The simulation build cache stays bounded: least recently used builds are removed beyond a
count (never one in use or still building), and Verilator builds drop their precompiled
headers."""
import os
import time

from sparknet_hw.rtl import HwConfig, generate_verilog
from sparknet_hw.sim.runner import build, prune_cache
from sparknet_hw.sim.stimuli import calibrated_export


def _fake_build(root, name, age_s, finished=True):
    d = root / name
    d.mkdir()
    if finished:
        stamp = d / "built.ok"
        stamp.write_text("ok")
        t = time.time() - age_s
        os.utime(stamp, (t, t))
    return d


def test_prune_removes_least_recently_used_beyond_keep(tmp_path):
    ages = {"verilator-a": 10, "icarus-f": 1800, "verilator-b": 7200, "verilator-c": 10800,
            "icarus-d": 14400, "verilator-e": 18000}
    for name, age in ages.items():
        _fake_build(tmp_path, name, age)
    building = _fake_build(tmp_path, "verilator-g", 0, finished=False)
    removed = prune_cache(tmp_path, keep=3, min_age_s=3600)
    assert sorted(p.name for p in removed) == ["icarus-d", "verilator-c", "verilator-e"]
    assert sorted(p.name for p in tmp_path.iterdir()) == \
        ["icarus-f", "verilator-a", "verilator-b", "verilator-g"]
    assert building.exists()


def test_prune_keeps_recently_used_builds_even_beyond_keep(tmp_path):
    for i in range(4):
        _fake_build(tmp_path, f"verilator-{i}", 60 * i)
    assert prune_cache(tmp_path, keep=1, min_age_s=3600) == []
    assert len(list(tmp_path.iterdir())) == 4


def test_verilator_build_keeps_no_precompiled_headers():
    bdir = build(generate_verilog(calibrated_export(8), HwConfig()), "verilator")
    assert (bdir / "built.ok").exists()
    assert not list(bdir.glob("*.gch"))
