"""The typed export (quant/export_types.py): exact JSON round trip, validation, immutability."""
import copy
import dataclasses
import json

import numpy as np
import pytest

from sparknet_hw import shipped
from sparknet_hw.boards.protocol import export_fingerprint
from sparknet_hw.quant import golden
from sparknet_hw.quant.export_format import ExportError, validate
from sparknet_hw.quant.export_types import Block, DenseLayer, Export, as_export
from sparknet_hw.quant.random_export import random_export
from sparknet_hw.rtl.config import build_plan
from sparknet_hw.sim.stimuli import balanced_export, stress_export

SHIPPED = [C for C in (4, 8, 16, 32) if shipped.int8_export(C).is_file()]


@pytest.mark.parametrize("C", SHIPPED)
def test_shipped_exports_round_trip_exactly(C):
    path = shipped.int8_export(C)
    d = json.loads(path.read_text())
    export = Export.load(path)
    assert export.to_dict() == d
    assert json.dumps(export.to_dict()) == json.dumps(d)      # key order too
    assert Export.from_dict(export.to_dict()) == export
    assert export_fingerprint(export) == export_fingerprint(d)


@pytest.mark.parametrize("C", [C for C in SHIPPED if shipped.int8_checkpoint(C).is_file()])
def test_exporting_a_shipped_qat_checkpoint_gives_its_shipped_export(C):
    """export_model builds the typed Export straight from the Brevitas model; for every
    shipped width it equals the shipped file made from the same checkpoint (whose `source`
    also holds the export command's self-check, which takes no part in the comparison)."""
    from sparknet_hw.quant.export import export_model
    made = export_model(shipped.int8_checkpoint(C))
    assert isinstance(made, Export)
    assert made == Export.load(shipped.int8_export(C))


@pytest.mark.parametrize("make", [lambda: random_export(8, seed=3),
                                  lambda: balanced_export(4, seed=2),
                                  lambda: stress_export(8, seed=5, frames=16)])
def test_generated_exports_round_trip(make):
    d = make()
    export = as_export(d)
    assert export.to_dict() == d
    assert export.blocks[0].res is None and export.blocks[1].has_res
    assert export.frames == d["frames"]


def test_typed_and_dict_exports_give_the_same_results():
    d = balanced_export(4, seed=1)
    export = as_export(d)
    assert as_export(export) is export
    x = np.random.default_rng(0).integers(-128, 128, size=(32, 101))
    a, b = golden.run(d, x), golden.run(export, x)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert build_plan(d).weight_image == build_plan(export).weight_image
    assert build_plan(d).model == export


def _bad_exports(d):
    def edit(f):
        bad = copy.deepcopy(d)
        f(bad)
        return bad
    yield dict(d, format="other")
    yield dict(d, version=1)
    yield {k: v for k, v in d.items() if k != "input"}
    yield edit(lambda b: b["input"].__setitem__("frac", 3))
    yield edit(lambda b: b["input"].pop("lo"))
    yield edit(lambda b: b["blocks"].pop())
    yield edit(lambda b: b["blocks"][2]["res"].pop("shift"))
    yield edit(lambda b: b["blocks"][0]["dw"].pop("acc_bits"))
    yield edit(lambda b: b["blocks"][1].pop("kernel"))
    yield edit(lambda b: b["head"].pop("acc_bits"))
    yield edit(lambda b: b["classifier"].pop("bias"))


def test_malformed_exports_give_the_validate_messages():
    d = random_export(4)
    for bad in _bad_exports(d):
        with pytest.raises(ExportError) as want:
            validate(bad, "e.json")
        with pytest.raises(ExportError) as got:
            Export.from_dict(bad, "e.json")
        assert str(got.value) == str(want.value)
        with pytest.raises(ExportError):
            as_export(bad)
    bad = copy.deepcopy(d)
    del bad["blocks"][2]["res"]["shift"]
    with pytest.raises(ExportError, match=r"export: export file has no 'blocks\[2\]\.res\.shift'"):
        as_export(bad)


def test_missing_file_and_bad_json(tmp_path):
    with pytest.raises(ExportError, match="no such export file"):
        Export.load(tmp_path)
    (tmp_path / "sparknet_export.json").write_text("{not json")
    with pytest.raises(ExportError, match="not valid JSON"):
        Export.load(tmp_path)


def test_export_is_immutable():
    export = as_export(random_export(4))
    with pytest.raises(dataclasses.FrozenInstanceError):
        export.C = 8
    with pytest.raises(dataclasses.FrozenInstanceError):
        export.blocks[1].res.shift = 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        export.input.lo = 0
    with pytest.raises(TypeError):
        export.blocks[0].dw.shift[0] = 1                # tuples
    with pytest.raises(ValueError):
        export.head.w[0, 0] = 1                         # read-only array views
    assert isinstance(export.blocks[1], Block) and isinstance(export.blocks[1].pw, DenseLayer)
    assert hash(export) == hash(as_export(random_export(4)))


def test_a_dict_edited_after_conversion_needs_converting_again():
    d = random_export(4)
    export = as_export(d)
    d["blocks"][1]["pw"]["shift"] += 1
    assert export.blocks[1].pw.shift == d["blocks"][1]["pw"]["shift"] - 1
    assert as_export(d).blocks[1].pw.shift == d["blocks"][1]["pw"]["shift"]
