"""Parameter and MAC counts of the real model against the authors' released figures."""
import json

import pytest
import torch

from sparknet_hw.cli import main
from sparknet_hw.complexity import model_info
from sparknet_hw.model import SparkNet, N_FEATURES, N_FRAMES, N_CLASSES


def authors_params(C):
    return 6 * C * C + 141 * C + 844


def authors_macs(C):
    return 101 * (6 * C * C + 155 * C + 480) + 384


@pytest.mark.parametrize("C", [4, 8, 16, 32])
def test_counts_match_released_checkpoints(C):
    info = model_info(SparkNet(C))
    assert info["params"] == authors_params(C)
    assert info["macs"] == authors_macs(C)
    # the per-layer rows add up, and every parameter belongs to a listed layer
    assert sum(layer["macs"] for layer in info["layers"]) == info["macs"]
    assert sum(layer["params"] for layer in info["layers"]) == info["params"]


def test_paper_table_rows():
    # seed README: C=32 -> 11,500 params, C=16 -> 4,636 params
    assert model_info(SparkNet(32))["params"] == 11500
    assert model_info(SparkNet(16))["params"] == 4636


@pytest.mark.parametrize("C", [4, 32])
def test_forward_shapes_and_hard_gate(C):
    model = SparkNet(C).eval()
    x = torch.randn(3, N_FEATURES, N_FRAMES)
    logits, mu = model(x)
    assert logits.shape == (3, N_CLASSES) and mu.shape == (3, N_FEATURES, N_FRAMES)
    model.hard_gate = True
    hard_logits, _ = model(x)
    z = (mu > 0).float()
    expected = model.classifier(z.mean(dim=2))
    assert torch.equal(hard_logits, expected)


def test_info_json_cli(capsys):
    assert main(["info", "--C", "16", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert {"C", "params", "macs", "layers"} <= set(info)
    assert info["params"] == authors_params(16) and info["macs"] == authors_macs(16)


def test_info_rejects_unknown_width(capsys):
    assert main(["info", "--C", "5"]) == 2
    err = capsys.readouterr().err
    assert "C=5" in err and "Traceback" not in err


def test_label_smoothing_in_the_loss():
    """E of the target spread over the 12 classes: the cross-entropy against
    (1 - E) one-hot + E / 12, as torch defines it; 0 is the plain cross-entropy."""
    from sparknet_hw.model import sparknet_loss
    torch.manual_seed(0)
    logits, mu = torch.randn(5, N_CLASSES), torch.rand(5, 32, N_FRAMES)
    y = torch.tensor([0, 3, 11, 5, 5])
    _, plain = sparknet_loss(logits, mu, y)
    _, smooth = sparknet_loss(logits, mu, y, label_smoothing=0.1)
    logp = torch.log_softmax(logits, dim=1)
    target = torch.full_like(logp, 0.1 / N_CLASSES)
    target[torch.arange(5), y] += 0.9
    assert torch.isclose(smooth, -(target * logp).sum(dim=1).mean())
    assert torch.isclose(plain, -logp[torch.arange(5), y].mean())
    assert not torch.isclose(plain, smooth)


def test_train_rejects_label_smoothing_out_of_range(capsys, tmp_path):
    code = main(["train", "--C", "8", "--data", str(tmp_path), "--label-smoothing", "1.0",
                 "--out", str(tmp_path / "x.pt")])
    err = capsys.readouterr().err
    assert code == 2 and "--label-smoothing is a share of the target" in err
    assert not (tmp_path / "x.pt").exists()


def test_gate_noise_sets_the_training_gate_and_the_sparsity_loss():
    from sparknet_hw.model import sparsity_loss
    mu = torch.zeros(2000, 32, 1)
    # Phi(0.5 / sigma): the expected open share of a gate at mu = 0
    assert float(sparsity_loss(mu)) == pytest.approx(0.8413, abs=1e-4)
    assert float(sparsity_loss(mu, 0.25)) == pytest.approx(0.9772, abs=1e-4)
    model = SparkNet(4).train()
    mu = torch.full((4000,), -0.5)      # at -0.5 the clamp cuts the noise in half
    torch.manual_seed(0)
    model.gate_noise = 0.25
    z = model.gate(mu)
    # E[max(0, N(0, s^2))] = s / sqrt(2 pi)
    assert float(z.mean()) == pytest.approx(0.25 / (2 * torch.pi) ** 0.5, rel=0.1)
    model.gate_noise = 0.5
    assert float(model.gate(mu).mean()) == pytest.approx(0.5 / (2 * torch.pi) ** 0.5, rel=0.1)


def test_train_rejects_a_gate_noise_that_is_not_positive(capsys, tmp_path):
    code = main(["train", "--C", "8", "--data", str(tmp_path), "--gate-noise", "0",
                 "--out", str(tmp_path / "x.pt")])
    assert code == 2 and "--gate-noise is a standard deviation" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


def test_train_rejects_a_negative_sparsity_weight(capsys, tmp_path):
    code = main(["train", "--C", "8", "--data", str(tmp_path), "--sparsity-weight", "-0.1",
                 "--out", str(tmp_path / "x.pt")])
    assert code == 2 and "--sparsity-weight is a loss weight" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


def spy_sparsity_weights(monkeypatch, module) -> list:
    """The sparsity weight of every `sparknet_loss` call `module` makes (1 when not given)."""
    seen = []
    loss = module.sparknet_loss

    def spy(*args, **kwargs):
        seen.append(kwargs.get("sparse_weight", 1.0))
        return loss(*args, **kwargs)

    monkeypatch.setattr(module, "sparknet_loss", spy)
    return seen


def test_sparsity_weight_reaches_the_training_loss_and_is_recorded(tmp_path, monkeypatch):
    """`--sparsity-weight W` trains with W times the sparsity term (the authors' 1 when
    unset) and the checkpoint records it, where `quantize` reads it back."""
    import sparknet_hw.train as training
    from sparknet_hw.checkpoint import load_checkpoint
    from test_data import make_speech_commands

    sc = make_speech_commands(tmp_path / "sc")
    seen = spy_sparsity_weights(monkeypatch, training)
    for flag, want in ((["--sparsity-weight", "0.25"], 0.25), ([], 1.0)):
        out = tmp_path / f"w{want}.pt"
        seen.clear()
        assert main(["train", "--C", "4", "--data", str(sc), "--epochs", "1",
                     "--batch-size", "16", "--out", str(out), *flag]) == 0
        # training batches carry the weight; validation keeps the authors' loss
        assert want in seen
        meta = load_checkpoint(out, kind="float", C=4)["meta"]
        assert meta["recipe"]["sparsity_weight"] == want


def test_train_rejects_a_negative_weight_decay(capsys, tmp_path):
    code = main(["train", "--C", "8", "--data", str(tmp_path), "--weight-decay=-1e-4",
                 "--out", str(tmp_path / "x.pt")])
    assert code == 2 and "--weight-decay must be 0 or above" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


@pytest.mark.parametrize("flags, kind, decay", [
    ([], torch.optim.SGD, 1e-3),
    (["--weight-decay", "1e-4"], torch.optim.SGD, 1e-4),
    (["--optimizer", "adamw", "--weight-decay", "0.01"], torch.optim.AdamW, 0.01),
])
def test_optimizer_and_weight_decay_reach_training_and_are_recorded(tmp_path, monkeypatch,
                                                                    flags, kind, decay):
    """`--optimizer` and `--weight-decay` pick the optimizer `train` steps with (the authors'
    SGD with 1e-3 when unset), and the checkpoint's recipe records both."""
    import sparknet_hw.train as training
    from sparknet_hw.checkpoint import load_checkpoint
    from test_data import make_speech_commands

    made = []
    make = training.make_optimizer

    def spy(params, recipe):
        made.append(make(params, recipe))
        return made[-1]

    monkeypatch.setattr(training, "make_optimizer", spy)
    out = tmp_path / "m.pt"
    assert main(["train", "--C", "4", "--data", str(make_speech_commands(tmp_path / "sc")),
                 "--epochs", "1", "--batch-size", "16", "--out", str(out), *flags]) == 0
    (opt,) = made
    assert type(opt) is kind
    assert opt.param_groups[0]["weight_decay"] == decay
    recipe = load_checkpoint(out, kind="float", C=4)["meta"]["recipe"]
    assert recipe["optimizer"] == kind.__name__.lower()
    assert recipe["weight_decay"] == decay
