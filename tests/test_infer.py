"""`infer` with the shipped C=8 checkpoint labels freshly synthesized keywords (espeak-ng
writes them here at 22.05 kHz; infer resamples and centres them)."""
import shutil
import subprocess

import pytest

from sparknet_hw.cli import main

pytestmark = pytest.mark.skipif(not shutil.which("espeak-ng"), reason="espeak-ng is needed")

VOICES = ["en-us", "en-gb", "en-us+f3"]


@pytest.mark.parametrize("voice", VOICES)
def test_shipped_c8_labels_fresh_yes_and_stop(tmp_path, capsys, voice):
    files = []
    for word in ("yes", "stop"):
        path = tmp_path / f"{word}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), word], check=True)
        files.append(path)
    assert main(["infer"] + [str(f) for f in files]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.strip().splitlines()]
    assert [(r[0], r[1]) for r in rows] == [(str(f), f.stem) for f in files], rows
    assert all(0.0 <= float(r[2]) <= 1.0 for r in rows)


def test_a_different_word_is_not_yes_or_stop(tmp_path, capsys):
    path = tmp_path / "marvin.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(path), "marvin"], check=True)
    assert main(["infer", str(path)]) == 0
    label = capsys.readouterr().out.strip().split("\t")[1]
    assert label not in ("yes", "stop")
