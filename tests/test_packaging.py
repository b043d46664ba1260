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
