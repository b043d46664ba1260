"""The commit a training run records: '+dirty' for changed code, not for changed outputs."""
import os
import shutil
import subprocess

import pytest

from sparknet_hw import train as train_module

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git missing")


def _git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                        "HOME": str(cwd), "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t"})


def test_changed_checkpoints_are_not_dirty_changed_code_is(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    pkg = repo / "sparknet_hw"
    (pkg / "checkpoints").mkdir(parents=True)
    (pkg / "train.py").write_text("code\n")
    (pkg / "checkpoints" / "sparknet_C8.pt").write_text("weights\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "start")
    # git_revision asks git in the folder above the module's own folder
    monkeypatch.setattr(train_module, "__file__", str(pkg / "train.py"))
    clean = train_module.git_revision()
    assert clean and len(clean) == 40
    (pkg / "checkpoints" / "sparknet_C8.pt").write_text("new weights\n")
    assert train_module.git_revision() == clean
    (pkg / "train.py").write_text("changed code\n")
    assert train_module.git_revision() == clean + "+dirty"
