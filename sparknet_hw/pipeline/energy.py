"""The energy estimate of a build (boards/power.py) and the simulation it needs.

The estimate's toggle counts come from simulating one inference in Amaranth (sim/activity.py:
1-3 minutes the first time, then cached). `build` starts that simulation in a second process
when verification is done (`ActivityJob`), so it runs beside synthesis, which keeps one core
busy, and the report stage finds it in the cache: the estimate does not make `build` slower.
"""
from __future__ import annotations

import multiprocessing
import time

from .common import ExportOut, Plan, RtlOut, SynthOut, VerifyOut, _say


def has_figures(plan: Plan) -> bool:
    """Whether the board's FPGA has published power figures (the iCEBreaker's UP5K)."""
    from ..boards.power import FIGURES
    device = plan.spec.device
    return device is not None and device.part in FIGURES


def _simulate_activity(model, hw, clip, reply) -> None:
    from ..sim.activity import run_activity
    try:
        run_activity(model, hw, clip)
        reply.send(None)
    except Exception as exc:            # noqa: BLE001 - sent to the build, which reports it
        reply.send(f"{type(exc).__name__}: {exc}")
    finally:
        reply.close()


class ActivityJob:
    """The activity simulation of the estimate, running in its own process ('spawn': the
    parent may hold torch's threads). A daemon: a build that fails or is interrupted does not
    wait for it."""

    def __init__(self, plan: Plan, exp: ExportOut, ver: VerifyOut):
        ctx = multiprocessing.get_context("spawn")
        self._reply, child = ctx.Pipe(duplex=False)
        self._process = ctx.Process(target=_simulate_activity, daemon=True,
                                    args=(exp.model, plan.hw, ver.inputs[0], child))
        self._process.start()
        child.close()

    def wait(self) -> str | None:
        """Block until the simulation is done; its error, or None when it is in the cache."""
        try:
            error = self._reply.recv()
        except EOFError:
            error = None
        self._process.join()
        if error is None and self._process.exitcode != 0:
            error = f"the activity simulation exited with status {self._process.exitcode}"
        return error

    def cancel(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()


def start_activity(plan: Plan, exp: ExportOut, ver: VerifyOut) -> ActivityJob | None:
    """Start the estimate's simulation beside synthesis, when the board has figures."""
    if not has_figures(plan) or not len(ver.inputs):
        return None
    return ActivityJob(plan, exp, ver)


def energy_of(plan: Plan, exp: ExportOut, rtl: RtlOut, ver: VerifyOut, syn: SynthOut,
              job: ActivityJob | None = None) -> dict | None:
    """The energy estimate of a build on a board with published figures (the iCEBreaker):
    the verified clips' cycles, one of them simulated for its activity (by `job` when given),
    cells scaled to the placed total. None for other boards; {"error": ...} when it cannot
    be made: an estimate never fails the build."""
    from ..boards.power import estimate_design

    if not has_figures(plan):
        return None
    start = time.monotonic()
    try:
        error = job.wait() if job is not None else None
        if error is not None:
            raise RuntimeError(error)
        placed = syn.result.used("luts") if syn.result else None
        est = estimate_design(exp.model, plan.hw, plan.spec, ver.inputs, rtl.make_core, placed,
                              plan.options.baud)
    except Exception as exc:    # noqa: BLE001 - an estimate never fails the build
        message = str(exc) if isinstance(exc, RuntimeError) else f"{type(exc).__name__}: {exc}"
        _say(plan, f"      energy estimate not made: {message}")
        return {"error": message}
    energy = est.to_dict()
    energy["estimate_seconds"] = round(time.monotonic() - start, 1)
    _say(plan, f"      energy estimate: {energy['energy_uj']:,.2f} uJ per inference "
               f"(docs/power.md)")
    return energy


def energy_lines(energy: dict) -> list[str]:
    """The energy section of report.md."""
    if "error" in energy:
        return ["## Energy per inference (ESTIMATE)", "",
                f"Not available: {energy['error']}"]
    from ..boards.power import energy_markdown
    return energy_markdown(energy).rstrip("\n").split("\n")
