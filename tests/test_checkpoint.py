"""Checkpoint files: round trip and every way a file can be wrong."""
import pytest
import torch

from sparknet_hw.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from sparknet_hw.model import SparkNet
from sparknet_hw.train import load_float_model


@pytest.fixture
def good(tmp_path):
    model = SparkNet(4)
    path = save_checkpoint(tmp_path / "c4.pt", "float", 4, model.state_dict(), seed=1)
    return path, model


def test_round_trip(good):
    path, model = good
    payload = load_checkpoint(path, kind="float", C=4)
    loaded = load_float_model(payload)
    x = torch.randn(2, 32, 101)
    model.eval()
    assert torch.equal(loaded(x)[0], model(x)[0])
    assert payload["meta"]["seed"] == 1


def test_truncated_file(good, tmp_path):
    path, _ = good
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="truncated.pt.*corrupt"):
        load_checkpoint(bad)


def test_not_a_checkpoint(tmp_path):
    bad = tmp_path / "notes.pt"
    bad.write_text("hello")
    with pytest.raises(CheckpointError, match="notes.pt"):
        load_checkpoint(bad)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not a sparknet-hw checkpoint"):
        load_checkpoint(foreign)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "absent.pt")


def test_wrong_width_and_kind(good):
    path, _ = good
    with pytest.raises(CheckpointError, match="C=4 but C=8"):
        load_checkpoint(path, C=8)
    with pytest.raises(CheckpointError, match="float checkpoint, a qat one is needed"):
        load_checkpoint(path, kind="qat")


def test_mismatched_weights(tmp_path):
    path = save_checkpoint(tmp_path / "liar.pt", "float", 8, SparkNet(4).state_dict())
    with pytest.raises(CheckpointError, match="do not fit SparkNet C=8"):
        load_float_model(load_checkpoint(path), path)
