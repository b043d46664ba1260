"""Progress bars that stay readable in logs: on a terminal tqdm redraws in place; into a
file or a CI log every redraw would be a new line, so there it reports every 30 s."""
from __future__ import annotations

import sys


def progress_bar(file=None, **kwargs):
    from tqdm import tqdm
    file = file or sys.stderr
    if not (hasattr(file, "isatty") and file.isatty()):
        kwargs.setdefault("mininterval", 30.0)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(file=file, **kwargs)
