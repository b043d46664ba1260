"""QAT model construction (BN folding, classifier on gate counts, STE gate), the quantize()
loop, checkpoints, the quantize command and the QONNX export."""
import json

import numpy as np
import pytest
import torch

from sparknet_hw.checkpoint import load_checkpoint
from sparknet_hw.cli import main
from sparknet_hw.model import N_FRAMES
from sparknet_hw.quant.export import export_model
from sparknet_hw.quant.qat import QATRecipe, quantize
from sparknet_hw.quant.qat_model import (QuantSparkNet, _HardGateSTE, folded_float_params,
                                         load_qat_checkpoint)
from sparknet_hw.quant.testing import random_features, random_float_sparknet, small_qat_model


def float_forward_folded(p, x):
    """Float SparkNet from BN-folded weights (no BN), hard gate: (logits, head pre-act)."""
    from sparknet_hw.model import BLOCKS
    a = x
    for (k, _), b in zip(BLOCKS, p["blocks"]):
        d = torch.nn.functional.conv1d(a, b["dw"], padding=k // 2, groups=a.shape[1])
        y = torch.nn.functional.conv1d(d, b["pw_w"], b["pw_b"])
        if b["res_w"] is not None:
            y = y + torch.nn.functional.conv1d(a, b["res_w"], b["res_b"])
        a = torch.relu(y)
    h = torch.nn.functional.conv1d(a, p["head_w"], p["head_b"])
    n = (h > 0).float().sum(dim=2)
    return n @ (p["cls_w"] / N_FRAMES).T + p["cls_b"], h


@pytest.mark.parametrize("C", [4, 32])
def test_bn_folding_keeps_the_float_model(C):
    fmodel = random_float_sparknet(C, seed=C)
    x = random_features(8, seed=1)
    with torch.no_grad():
        mu = fmodel(x)[1]
        fmodel.hard_gate = True
        want = fmodel(x)[0]
        logits, h = float_forward_folded(folded_float_params(fmodel), x)
    assert torch.allclose(torch.tanh(h), mu, atol=1e-5)
    # the float model's hard gate is mu > 0; away from the threshold both agree
    safe = (h.abs() > 1e-4).all(dim=(1, 2))
    assert torch.allclose(logits[safe], want[safe], atol=1e-4)


def test_from_float_copies_folded_weights_and_divides_the_classifier_by_T():
    fmodel = random_float_sparknet(8, seed=0)
    q = QuantSparkNet.from_float(fmodel, 8, 8)
    p = folded_float_params(fmodel)
    assert torch.equal(q.classifier.weight, p["cls_w"] / N_FRAMES)
    assert torch.equal(q.classifier.bias, fmodel.classifier.bias)
    assert torch.equal(q.blocks[1].residual.bias, p["blocks"][1]["res_b"])
    assert torch.equal(q.head.bias, p["head_b"])
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in q.modules())
    # power-of-two weight scales; per channel in the depthwise convs
    s = q.blocks[0].depthwise.quant_weight().scale.flatten()
    assert s.numel() == 32 and torch.equal(torch.log2(s), torch.round(torch.log2(s)))


def test_ste_gate_is_hard_forward_soft_backward():
    h = torch.linspace(-3, 3, 61, requires_grad=True)
    z = _HardGateSTE.apply(h)
    assert torch.equal(z, (h > 0).float())
    z.sum().backward()
    h2 = h.detach().clone().requires_grad_(True)
    torch.clamp(torch.tanh(h2) + 0.5, 0, 1).sum().backward()
    assert torch.allclose(h.grad, h2.grad)
    assert h.grad.abs().sum() > 0


def test_integer_logits_follow_fp_logits():
    model = small_qat_model(8, 6, 7, seed=2)
    x = random_features(16, seed=3)
    logits, _ = model(x)
    step = 2.0 ** export_model(model).classifier.out_frac
    assert torch.equal(logits * step, model.integer_logits(x).float())


def _tiny_data(n, seed):
    x = random_features(n, seed=seed)
    y = torch.randint(0, 12, (n,), generator=torch.Generator().manual_seed(seed))
    return x, y


def test_quantize_loop_saves_a_rebuildable_qat_checkpoint(tmp_path):
    fmodel = random_float_sparknet(4, seed=5)
    out = tmp_path / "q.pt"
    model, summary = quantize(fmodel, _tiny_data(128, 1), _tiny_data(64, 2), 5, 6, epochs=2,
                              out=out, recipe=QATRecipe(batch_size=64, calib_steps=2),
                              progress=False, log=lambda *a: None)
    assert [row["phase"] for row in summary["history"]] == ["ptq", "noisy", "ste"]
    payload = load_checkpoint(out, kind="qat")
    assert payload["meta"]["weight_bits"] == 5 and payload["meta"]["act_bits"] == 6
    assert payload["meta"]["model_config"]["C"] == 4
    again = load_qat_checkpoint(out)
    x = random_features(16, seed=9)
    assert torch.equal(again.integer_logits(x), model.integer_logits(x))
    # the evaluate command's view: float, QAT and integer side by side
    from sparknet_hw.quant.evaluate import evaluate_qat
    vx, vy = _tiny_data(32, 4)
    res = evaluate_qat(payload, vx.numpy(), vy.numpy(), path=out)
    assert res["int_matches_qat"] and res["accuracy_int"] == res["accuracy_qat"]


class FakeDataMix:
    """Stands in for sparknet_hw.data.mixture.DataMix (waveforms for augmentation)."""

    def __init__(self, roots, split, seed=0, **kwargs):
        n = 64 if split == "train" else 32
        g = torch.Generator().manual_seed(len(split))
        self.labels = torch.randint(0, 12, (n,), generator=g)
        self._waves = 0.1 * torch.randn(n, 16000, generator=g)
        from sparknet_hw.features import mfcc_torch
        self.features = mfcc_torch(self._waves)
        self.real = torch.zeros(n, dtype=torch.bool)        # a synthetic corpus

    def wave_batch(self, idx):
        return self._waves[idx]


def test_quantize_command(tmp_path, monkeypatch, capsys):
    import sparknet_hw.data.mixture as mixture
    from sparknet_hw.checkpoint import save_checkpoint
    monkeypatch.setattr(mixture, "DataMix", FakeDataMix)
    fl = save_checkpoint(tmp_path / "f.pt", "float", 4, random_float_sparknet(4).state_dict())
    out = tmp_path / "q.pt"
    assert main(["quantize", "--checkpoint", str(fl), "--data", str(tmp_path), "--epochs", "1",
                 "--batch-size", "32", "--weight-bits", "4", "--act-bits", "4", "--out",
                 str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["weight_bits"] == 4 and summary["checkpoint"] == str(out)
    assert load_qat_checkpoint(out).weight_bits == 4
    assert main(["export", "--checkpoint", str(out), "--out", str(tmp_path / "e")]) == 0
    assert "golden == Brevitas" in capsys.readouterr().out


def test_qat_trains_with_the_float_models_gate_noise(tmp_path, monkeypatch):
    """A float model trained with --gate-noise is fine-tuned with that noise, not the
    authors' 0.5: the noisy gate's spread is the one the weights were trained for."""
    from sparknet_hw.checkpoint import save_checkpoint
    fl = save_checkpoint(tmp_path / "f.pt", "float", 4, random_float_sparknet(4).state_dict(),
                         recipe={"gate_noise": 0.2})
    seen = []
    gate = QuantSparkNet._gate

    def spy_gate(self, h):
        if self.training and self.gate_mode == "noisy":
            seen.append(self.gate_noise)
        return gate(self, h)

    monkeypatch.setattr(QuantSparkNet, "_gate", spy_gate)
    quantize(fl, _tiny_data(64, 1), _tiny_data(32, 2), 8, 8, epochs=2,
             recipe=QATRecipe(batch_size=32, calib_steps=1), progress=False,
             log=lambda *a: None)
    assert seen and set(seen) == {0.2}
    plain = save_checkpoint(tmp_path / "p.pt", "float", 4, random_float_sparknet(4).state_dict())
    seen.clear()
    quantize(plain, _tiny_data(64, 1), _tiny_data(32, 2), 8, 8, epochs=2,
             recipe=QATRecipe(batch_size=32, calib_steps=1), progress=False,
             log=lambda *a: None)
    assert seen and set(seen) == {0.5}


def test_qonnx_export_runs_in_qonnx_to_the_same_logits(tmp_path):
    pytest.importorskip("onnxoptimizer")
    pytest.importorskip("qonnx")
    from sparknet_hw.quant.export import export_qonnx, run_qonnx, self_check_inputs
    model = small_qat_model(8, 8, 8, seed=4, train_steps=2)
    export = export_model(model)
    path = export_qonnx(model, tmp_path)
    x = np.concatenate([self_check_inputs(export, n_random=8)[:6],
                        random_features(6, seed=8).numpy()])
    got = run_qonnx(path, x) * 2.0 ** export.classifier.out_frac
    assert np.array_equal(got, np.rint(got))                   # exact integers
    want = model.integer_logits(torch.from_numpy(x)).numpy()
    assert np.array_equal(got.astype(np.int64), want)
    from qonnx.core.modelwrapper import ModelWrapper
    ops = [n.op_type for n in ModelWrapper(str(path)).graph.node]
    assert {"Quant", "Greater", "ReduceSum", "Gemm"} <= set(ops)


def test_quantize_fine_tunes_with_the_float_recipes_sparsity_weight(tmp_path, monkeypatch):
    """QAT weighs the sparsity term as the float training did (`train --sparsity-weight`)."""
    import sparknet_hw.quant.qat as qat
    from sparknet_hw.checkpoint import save_checkpoint
    from test_data import make_speech_commands
    from test_model import spy_sparsity_weights

    sc = make_speech_commands(tmp_path / "sc")
    fl = save_checkpoint(tmp_path / "f.pt", "float", 4, random_float_sparknet(4).state_dict(),
                         recipe={"sparsity_weight": 0.3})
    seen = spy_sparsity_weights(monkeypatch, qat)
    assert main(["quantize", "--checkpoint", str(fl), "--data", str(sc), "--epochs", "1",
                 "--batch-size", "32", "--out", str(tmp_path / "q.pt"), "--json"]) == 0
    assert 0.3 in seen and set(seen) <= {0.3, 1.0}
