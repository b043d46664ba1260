"""train --precondition: the first layer trained as if every MFCC coefficient had unit RMS."""
import numpy as np
import pytest
import torch

from sparknet_hw.checkpoint import load_checkpoint
from sparknet_hw.cli import main
from sparknet_hw.model import SparkNet
from sparknet_hw.precondition import feature_rms, precondition_first_layer
from sparknet_hw.train import load_float_model

from test_data import make_speech_commands


def test_feature_rms_is_the_root_mean_square_per_coefficient():
    rng = np.random.default_rng(5)
    batches = [rng.normal(size=(3, 32, 101)) * np.arange(1, 33)[None, :, None],
               rng.normal(size=(2, 32, 101))]
    per_coefficient = np.concatenate(batches).transpose(1, 0, 2).reshape(32, -1)
    expected = np.sqrt((per_coefficient ** 2).mean(axis=1))
    got = feature_rms(torch.tensor(b, dtype=torch.float32) for b in batches)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="at least one"):
        feature_rms([])


def test_preconditioned_sgd_is_sgd_on_weights_scaled_by_the_rms():
    """Training w with the hook == training v = w * rms plainly (momentum and weight decay
    included), the claim the module rests on."""
    torch.manual_seed(11)
    rms = torch.linspace(0.3, 50.0, 32)
    x = torch.randn(6, 32, 101) * rms.view(1, -1, 1)
    y = torch.randint(0, 12, (6,))

    pre = SparkNet(4)
    ref = SparkNet(4)
    ref.load_state_dict(pre.state_dict())
    precondition_first_layer(pre, rms)
    scale = rms.view(-1, 1, 1)
    torch.testing.assert_close(pre.blocks[0].depthwise.weight * scale,
                               ref.blocks[0].depthwise.weight)

    # the reference holds v and computes with v / rms, the function the checkpoint holds;
    # plain is ordinary SGD on w, to show the hook changes the step
    plain = SparkNet(4)
    plain.load_state_dict(pre.state_dict())
    conv = ref.blocks[0].depthwise
    v = conv.weight
    conv.forward = lambda t: torch.nn.functional.conv1d(t, v / scale, None,
                                                        padding=conv.padding, groups=32)
    options = dict(lr=0.01, momentum=0.9, weight_decay=1e-3)
    runs = [(m, torch.optim.SGD(m.parameters(), **options)) for m in (pre, ref, plain)]
    for step in range(3):
        for model, opt in runs:
            torch.manual_seed(step)          # the same gate noise for every model
            opt.zero_grad()
            logits, _ = model(x)
            torch.nn.functional.cross_entropy(logits, y).backward()
            opt.step()
    w = pre.blocks[0].depthwise.weight
    torch.testing.assert_close(w * scale, v, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(pre.classifier.weight, ref.classifier.weight,
                               rtol=1e-4, atol=1e-6)
    assert (plain.blocks[0].depthwise.weight - w).abs().max() > 1e-3


def test_precondition_rejects_a_wrong_number_of_rms_values():
    with pytest.raises(ValueError, match="16 RMS values for 32 input features"):
        precondition_first_layer(SparkNet(4), torch.ones(16))


def test_train_precondition_records_the_rms_and_loads(tmp_path):
    sc = make_speech_commands(tmp_path / "sc")
    out = tmp_path / "pc.pt"
    assert main(["train", "--C", "4", "--data", str(sc), "--epochs", "1", "--batch-size", "16",
                 "--precondition", "--out", str(out)]) == 0
    ckpt = load_checkpoint(out, kind="float", C=4)
    meta = ckpt["meta"]
    assert meta["recipe"]["precondition"] is True
    assert len(meta["input_rms"]) == 32 and min(meta["input_rms"]) > 0
    assert load_float_model(ckpt, out).C == 4       # the same network as without the flag
