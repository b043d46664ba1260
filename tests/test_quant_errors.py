"""Bad input to quantize / export: one clear line on stderr, non-zero exit, no traceback."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from sparknet_hw.checkpoint import CheckpointError, save_checkpoint
from sparknet_hw.cli import main
from sparknet_hw.model import SparkNet
from sparknet_hw.quant.export import export_model, write_export
from sparknet_hw.quant.features import quantize_features
from sparknet_hw.quant.golden import FeatureError
from sparknet_hw.quant.qat import save_qat_checkpoint
from sparknet_hw.quant.qat_model import BitWidthError, QuantSparkNet, load_qat_checkpoint
from sparknet_hw.quant.testing import small_qat_model


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("quant_errors")
    torch.manual_seed(0)
    float_ckpt = save_checkpoint(d / "float.pt", "float", 4, SparkNet(4).state_dict())
    model = small_qat_model(4, 8, 8, seed=0)
    qat_ckpt = save_qat_checkpoint(d / "qat.pt", model)
    export = export_model(model)
    write_export(export, d / "export")
    # "export": the JSON document, which the tests below corrupt in copies
    return {"dir": d, "float": float_ckpt, "qat": qat_ckpt, "export": export.to_dict(),
            "export_dir": d / "export"}


def fails(capsys, argv, *phrases):
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    for phrase in phrases:
        assert phrase in err, err
    return err


def test_quantize_rejects_a_qat_checkpoint(files, capsys):
    fails(capsys, ["quantize", "--checkpoint", files["qat"], "--data", files["dir"],
                   "--out", files["dir"] / "x.pt"], "qat checkpoint", "float one is needed")


def test_export_rejects_a_float_checkpoint(files, capsys):
    fails(capsys, ["export", "--checkpoint", files["float"], "--out", files["dir"] / "o"],
          "float checkpoint", "qat one is needed")
    with pytest.raises(CheckpointError, match="qat one is needed"):
        load_qat_checkpoint(files["float"])
    with pytest.raises(CheckpointError, match="float one is needed"):
        from sparknet_hw.quant.qat import quantize
        quantize(files["qat"], (torch.zeros(2, 32, 101), torch.zeros(2)),
                 (torch.zeros(2, 32, 101), torch.zeros(2)), epochs=1, progress=False)


@pytest.mark.parametrize("flag,bits", [("--weight-bits", 3), ("--weight-bits", 9),
                                       ("--act-bits", 3), ("--act-bits", 9),
                                       ("--input-bits", 3), ("--input-bits", 9)])
def test_unsupported_bit_widths(files, capsys, flag, bits):
    fails(capsys, ["quantize", "--checkpoint", files["float"], "--data", files["dir"],
                   flag, bits, "--out", files["dir"] / "x.pt"], f"bit width {bits}", "4..8")


def test_unsupported_bit_widths_api():
    for wb, ab in ((3, 8), (9, 8), (8, 3), (8, 9)):
        with pytest.raises(BitWidthError):
            QuantSparkNet(8, wb, ab)
    for bits in (4, 5, 6, 7, 8):
        QuantSparkNet(4, bits, bits)


def test_export_file_of_another_version(files, capsys, tmp_path):
    bad = dict(files["export"], version=1)     # version 1 had one input frac for all features
    (tmp_path / "sparknet_export.json").write_text(json.dumps(bad))
    fails(capsys, ["export", "--check", tmp_path], "version 1", "re-export")


def test_export_file_with_a_scalar_input_frac(files, capsys, tmp_path):
    bad = json.loads(json.dumps(files["export"]))
    bad["input"]["frac"] = 3
    (tmp_path / "sparknet_export.json").write_text(json.dumps(bad))
    fails(capsys, ["export", "--check", tmp_path], "input.frac", "one integer frac per feature")


@pytest.mark.parametrize("where", ["top", "block", "head"])
def test_export_file_with_missing_fields(files, capsys, tmp_path, where):
    bad = json.loads(json.dumps(files["export"]))
    if where == "top":
        del bad["input"]
        phrase = "'input'"
    elif where == "block":
        del bad["blocks"][2]["res"]["shift"]
        phrase = "blocks[2].res.shift"
    else:
        del bad["head"]["acc_bits"]
        phrase = "head.acc_bits"
    path = tmp_path / "e.json"
    path.write_text(json.dumps(bad))
    fails(capsys, ["export", "--check", path], phrase)


def test_export_file_not_json_or_missing(files, capsys, tmp_path):
    (tmp_path / "sparknet_export.json").write_text("{not json")
    fails(capsys, ["export", "--check", tmp_path], "not valid JSON")
    fails(capsys, ["export", "--check", tmp_path / "nowhere"], "no such export file")


def test_features_of_wrong_shape_or_dtype(files, capsys, tmp_path):
    cases = {"shape.npy": np.zeros((32, 100), dtype=np.float32),
             "shape3.npy": np.zeros((2, 101, 32), dtype=np.int8),
             "complex.npy": np.zeros((32, 101), dtype=np.complex64),
             "bool.npy": np.zeros((32, 101), dtype=bool),
             "range.npy": np.full((32, 101), 1000, dtype=np.int16)}
    phrases = {"shape.npy": "shape", "shape3.npy": "shape", "complex.npy": "dtype",
               "bool.npy": "dtype", "range.npy": "outside the input range"}
    for name, arr in cases.items():
        np.save(tmp_path / name, arr)
        fails(capsys, ["export", "--check", files["export_dir"], "--features", tmp_path / name],
              phrases[name])
    (tmp_path / "junk.npy").write_bytes(b"junk")
    fails(capsys, ["export", "--check", files["export_dir"], "--features",
                   tmp_path / "junk.npy"], "not a readable")
    # the same checks guard export --checkpoint --features
    fails(capsys, ["export", "--checkpoint", files["qat"], "--out", tmp_path / "o",
                   "--features", tmp_path / "shape.npy"], "shape")


def test_quantize_features_api_errors(files):
    export = files["export"]
    with pytest.raises(FeatureError, match="shape"):
        quantize_features(np.zeros((32, 100), dtype=np.float32), export)
    with pytest.raises(FeatureError, match="dtype"):
        quantize_features(np.zeros((32, 101), dtype=np.int8), export)
    with pytest.raises(FeatureError, match="NaN"):
        quantize_features(np.full((32, 101), np.nan, dtype=np.float32), export)
    q = quantize_features(np.zeros((3, 32, 101), dtype=np.float64), export)
    assert q.shape == (3, 32, 101) and q.dtype == np.int8


def test_good_files_work_through_the_cli(files, capsys, tmp_path):
    np.save(tmp_path / "f.npy", np.random.default_rng(0).normal(0, 4, (3, 32, 101))
            .astype(np.float32))
    assert main(["export", "--check", str(files["export_dir"]), "--features",
                 str(tmp_path / "f.npy"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["classes"]) == 3
    assert main(["export", "--checkpoint", str(files["qat"]), "--out", str(tmp_path / "o"),
                 "--features", str(tmp_path / "f.npy")]) == 0
    assert (tmp_path / "o" / "sparknet_export.json").is_file()


def test_process_exit_code_and_no_traceback(files):
    """Through a real process: exit status 2 and a single line on stderr."""
    for argv in (["export", "--checkpoint", str(files["float"]), "--out", str(files["dir"])],
                 ["quantize", "--checkpoint", str(files["float"]), "--data", str(files["dir"]),
                  "--weight-bits", "9", "--out", str(files["dir"] / "x.pt")]):
        proc = subprocess.run([sys.executable, "-m", "sparknet_hw", *argv],
                              capture_output=True, text=True, timeout=300,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
        lines = [l for l in proc.stderr.splitlines() if "hadamard" not in l.lower()]
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
