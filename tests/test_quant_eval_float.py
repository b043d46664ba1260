"""A "qat" checkpoint finds its float source model wherever it is copied to: quantize()
stores the float weights in the checkpoint, and older checkpoints (a float file name only)
find the float file next to themselves."""
import shutil

import pytest
import torch

from sparknet_hw.checkpoint import load_checkpoint, save_checkpoint
from sparknet_hw.model import SparkNet
from sparknet_hw.quant.evaluate import evaluate_qat
from sparknet_hw.quant.qat import QATRecipe, quantize
from sparknet_hw.quant.testing import random_features, random_float_sparknet
from sparknet_hw.train import evaluate_features, load_float_model


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A float C=4 checkpoint and the qat checkpoint quantize() made from it (same folder),
    and evaluation features labelled so that the float model scores neither 0 nor 1."""
    d = tmp_path_factory.mktemp("made")
    fmodel = random_float_sparknet(4, seed=11)
    assert isinstance(fmodel, SparkNet)
    float_path = save_checkpoint(d / "float.pt", "float", 4, fmodel.state_dict())
    gen = torch.Generator().manual_seed(3)
    train = (random_features(64, seed=1), torch.randint(0, 12, (64,), generator=gen))
    val = (random_features(32, seed=2), torch.randint(0, 12, (32,), generator=gen))
    qat_path = d / "qat.pt"
    quantize(str(float_path), train, val, 8, 8, epochs=1, out=qat_path,
             recipe=QATRecipe(batch_size=64, calib_steps=1, augment=False),
             progress=False, log=lambda *a: None)
    x = random_features(48, seed=4)
    with torch.no_grad():
        fmodel.hard_gate = True
        y = fmodel(x)[0].argmax(1)
        fmodel.hard_gate = False
    y[::2] = (y[::2] + 1) % 12                              # every other label wrong
    want = evaluate_features(load_float_model(load_checkpoint(float_path, kind="float")), x, y)
    assert 0.0 < want["accuracy_hard_gate"] < 1.0
    return {"float": float_path, "qat": qat_path, "x": x, "y": y, "fmodel": fmodel,
            "want": want["accuracy_hard_gate"], "want_soft": want["accuracy"]}


def test_a_copied_qat_checkpoint_carries_its_float_model(made, tmp_path, monkeypatch):
    payload = load_checkpoint(made["qat"], kind="qat")      # torch.load(weights_only=True)
    meta = payload["meta"]
    assert meta["float_checkpoint"] == "float.pt"          # no machine path
    stored, want = meta["float_state_dict"], made["fmodel"].state_dict()
    assert stored.keys() == want.keys()
    assert all(v.device.type == "cpu" and torch.equal(v, want[k]) for k, v in stored.items())
    # the qat checkpoint alone, somewhere else; the float file is not there nor in the cwd
    lone = tmp_path / "elsewhere" / "qat.pt"
    lone.parent.mkdir()
    shutil.copy(made["qat"], lone)
    monkeypatch.chdir(tmp_path)
    payload = load_checkpoint(lone, kind="qat")
    res = evaluate_qat(payload, made["x"].numpy(), made["y"].numpy(), path=lone)
    assert res["accuracy_float"] == made["want"]
    assert res["accuracy_float_soft_gate"] == made["want_soft"]


def _old_style(made, folder, float_checkpoint):
    """The qat checkpoint as older code saved it: no float weights, a float file name."""
    payload = load_checkpoint(made["qat"], kind="qat")
    meta = dict(payload["meta"])
    meta.pop("float_state_dict", None)
    meta["float_checkpoint"] = float_checkpoint
    return save_checkpoint(folder / "qat.pt", "qat", payload["C"], payload["state_dict"], **meta)


def test_an_old_qat_checkpoint_finds_a_relative_float_file_next_to_it(made, tmp_path,
                                                                    monkeypatch):
    folder = tmp_path / "shipped"
    old = _old_style(made, folder, "float.pt")
    shutil.copy(made["float"], folder / "float.pt")
    monkeypatch.chdir(tmp_path)                             # not the checkpoints' folder
    payload = load_checkpoint(old, kind="qat")
    assert "float_state_dict" not in payload["meta"]
    res = evaluate_qat(payload, made["x"].numpy(), made["y"].numpy(), path=old)
    assert res["accuracy_float"] == made["want"]
    # an absolute path still works; a float file that is nowhere is no error, just no number
    absolute = _old_style(made, tmp_path / "abs", str(made["float"].resolve()))
    res = evaluate_qat(load_checkpoint(absolute), made["x"].numpy(), made["y"].numpy(),
                       path=absolute)
    assert res["accuracy_float"] == made["want"]
    missing = _old_style(made, tmp_path / "missing", "float.pt")
    res = evaluate_qat(load_checkpoint(missing), made["x"].numpy(), made["y"].numpy(),
                       path=missing)
    assert "accuracy_float" not in res and res["int_matches_qat"]
