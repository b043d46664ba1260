"""Training aids: the weight average (--ema) and distillation from a wider model (--teacher)."""
import pytest
import torch

from sparknet_hw.checkpoint import load_checkpoint, save_checkpoint
from sparknet_hw.cli import main
from sparknet_hw.distill import Teacher, WeightAverage
from sparknet_hw.errors import UserError
from sparknet_hw.model import SparkNet

from test_data import make_speech_commands


def test_weight_average_follows_the_ramped_decay():
    torch.manual_seed(3)
    model = SparkNet(4)
    avg = WeightAverage(model, decay=0.9)
    name = "classifier.weight"
    expected = model.state_dict()[name].clone()
    for step in range(1, 40):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
            model.blocks[0].bn.num_batches_tracked += 1
        avg.update(model)
        d = min(0.9, (1 + step) / (10 + step))
        expected = d * expected + (1 - d) * model.state_dict()[name]
    torch.testing.assert_close(avg.model.state_dict()[name], expected, rtol=1e-6, atol=1e-6)
    # integer buffers are copied, not averaged
    assert (avg.model.blocks[0].bn.num_batches_tracked == model.blocks[0].bn.num_batches_tracked)
    assert not torch.equal(avg.model.state_dict()[name], model.state_dict()[name])


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5])
def test_weight_average_rejects_a_decay_outside_0_1(decay):
    with pytest.raises(UserError, match="0 < decay < 1"):
        WeightAverage(SparkNet(4), decay)


def _teacher_file(tmp_path, speakers):
    torch.manual_seed(0)
    meta = {} if speakers is None else {"validation_speakers": speakers}
    return save_checkpoint(tmp_path / "teacher.pt", "float", 8, SparkNet(8).state_dict(), **meta)


def test_teacher_must_not_have_heard_the_validation_speakers(tmp_path):
    mine = {"gsc-dev": ["aaaa1111", "bbbb2222"]}
    Teacher(_teacher_file(tmp_path, {"gsc-dev": ["bbbb2222", "aaaa1111"]}), mine, 4.0, 0.5)
    with pytest.raises(UserError, match="other validation speakers"):
        Teacher(_teacher_file(tmp_path, {"gsc-dev": ["aaaa1111"]}), mine, 4.0, 0.5)
    with pytest.raises(UserError, match="does not record its validation speakers"):
        Teacher(_teacher_file(tmp_path, None), mine, 4.0, 0.5)
    with pytest.raises(UserError, match="0 < weight <= 1"):
        Teacher(_teacher_file(tmp_path, mine), mine, 4.0, 0.0)


def test_distillation_term_vanishes_when_the_student_matches_the_teacher(tmp_path):
    teacher = Teacher(_teacher_file(tmp_path, {}), {}, 3.0, 0.25)
    x = torch.randn(5, 32, 101)
    with torch.no_grad():
        same, _ = teacher.model(x)
    ce = torch.tensor(2.0)
    assert float(teacher.loss(same, x, ce)) == pytest.approx(0.75 * 2.0, abs=1e-5)
    other = same + torch.randn_like(same)
    assert float(teacher.loss(other, x, ce)) > 0.75 * 2.0 + 1e-3


def test_train_with_teacher_and_average_records_both(tmp_path, capsys):
    sc = make_speech_commands(tmp_path / "sc")
    teacher = tmp_path / "c8.pt"
    common = ["train", "--data", str(sc), "--epochs", "1", "--batch-size", "16"]
    assert main(common + ["--C", "8", "--out", str(teacher)]) == 0
    student = tmp_path / "c4.pt"
    assert main(common + ["--C", "4", "--out", str(student), "--ema", "0.9",
                          "--teacher", str(teacher), "--distill-weight", "0.3"]) == 0
    assert "teacher: " in capsys.readouterr().out
    meta = load_checkpoint(student, kind="float", C=4)["meta"]
    recipe = meta["recipe"]
    import hashlib
    assert meta["teacher"]["sha256"] == hashlib.sha256(teacher.read_bytes()).hexdigest()
    assert meta["teacher"]["C"] == 8
    assert recipe["ema"] == 0.9 and recipe["teacher"] == str(teacher)
    assert recipe["distill_weight"] == 0.3


def test_distill_options_need_a_teacher(tmp_path, capsys):
    sc = make_speech_commands(tmp_path / "sc")
    rc = main(["train", "--C", "4", "--data", str(sc), "--epochs", "1",
               "--distill-weight", "0.3", "--out", str(tmp_path / "x.pt")])
    assert rc != 0 and "need --teacher" in capsys.readouterr().err
