"""pyproject.toml lists every package of the source tree, so a non-editable install (a wheel)
carries the whole CLI and the shipped checkpoints, not only what an editable install finds."""
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_is_listed():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    dirs = {name: ROOT / path for name, path in cfg["package-dir"].items()}
    dirs.setdefault("sparknet_hw", ROOT / "sparknet_hw")
    found = set()
    for name, top in dirs.items():
        for init in top.rglob("__init__.py"):
            rel = init.parent.relative_to(top)
            found.add(".".join([name, *rel.parts]) if rel.parts else name)
    assert found <= listed, f"packages missing from pyproject.toml: {sorted(found - listed)}"
    data = cfg["package-data"]["sparknet_hw.checkpoints"]
    shipped = [p for p in (ROOT / "sparknet_hw" / "checkpoints").iterdir() if p.is_file()]
    assert shipped and all(any(p.match(pat) for pat in data) for p in shipped), \
        "a shipped checkpoint file is not matched by the package-data patterns"


def test_the_wheel_works_without_the_source_tree(tmp_path):
    """Built as a wheel and installed into a bare folder (no editable install on the path),
    the package finds its mapped stage packages and shipped files, and `bench --predict`
    gives the same row as the source tree (~10 s)."""
    import json
    import os
    import subprocess
    import sys

    from sparknet_hw.pipeline import predict_row

    wheels, target = tmp_path / "wheel", tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(wheels), str(ROOT)], check=True, cwd=tmp_path)
    (wheel,) = wheels.glob("sparknet_hw-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(target), str(wheel)], check=True, cwd=tmp_path)
    env = dict(os.environ, PYTHONPATH=str(target))
    where = subprocess.run(
        [sys.executable, "-c", "import sparknet_hw.rtl, sparknet_hw.boards.power as p; "
         "from sparknet_hw import shipped; print(sparknet_hw.rtl.__file__); "
         "print(p.__file__); print(shipped.int8_export(8))"],
        check=True, cwd=tmp_path, env=env, capture_output=True, text=True).stdout.split()
    assert len(where) == 3 and all(w.startswith(str(target)) for w in where), where
    out = subprocess.run([sys.executable, "-m", "sparknet_hw", "bench", "--predict", "--C", "4",
                          "--clips", "2", "--json", "--out", str(tmp_path / "bench")],
                         check=True, cwd=tmp_path, env=env, capture_output=True, text=True)
    (row,) = json.loads(out.stdout)
    here = predict_row(4, "icebreaker", tmp_path / "here", clips=2)
    assert (row["cycles"], row["pes"], row["frames_skipped"]) == \
        (here["cycles"], here["pes"], here["frames_skipped"])
