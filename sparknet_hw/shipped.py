"""Where the files shipped inside the package live: checkpoints, exports, the test clips.

The one place that knows the layout of `sparknet_hw/checkpoints/`. It asks
`importlib.resources` rather than walking from `__file__`, so the paths are right from a
source tree, an editable install and an installed wheel alike.
"""
from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path



def shipped_dir() -> Path:
    # the package's own folder: `checkpoints` is package data, not a package of its own
    return Path(os.fspath(files("sparknet_hw"))) / "checkpoints"


def float_checkpoint(C: int) -> Path:
    return shipped_dir() / f"sparknet_C{C}.pt"


def int8_checkpoint(C: int) -> Path:
    return shipped_dir() / f"sparknet_C{C}_int8.pt"


def int8_export(C: int) -> Path:
    """The exported fixed-point model (the JSON that `build` and `sim` generate RTL from)."""
    return shipped_dir() / f"sparknet_C{C}_int8_export.json"


def test_clips() -> Path:
    """The real clips (MFCC, int8 features and labels) the RTL is verified on."""
    return shipped_dir() / "test_clips.npz"
