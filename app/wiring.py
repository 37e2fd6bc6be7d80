"""Wiring: the pieces a call plan needs started that live outside the bridge.

The bridge (:mod:`app.bridge.providers`) only describes where the agent side of a call
goes; when that is the built-in simulator, :func:`simulator_started` brings one up for the
call's lifetime (:meth:`app.bridge.providers.ProviderPlan.started` delegates here), so the
bridge package never builds a simulator itself.

Threading: :func:`simulator_started` blocks while the simulator synthesises its speech and
binds its socket, and while it stops; run it off an event loop (see
:func:`app.bridge.providers.started_off_loop`).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.bridge.providers import ProviderPlan


@contextlib.contextmanager
def simulator_started(plan: ProviderPlan) -> Iterator[ProviderPlan]:
    """Start the simulator ``plan`` asks for and yield a copy of ``plan`` pointing at it.

    The copy carries the running simulator (``sim``), its URL and, for a ``wss://``
    dialect, its self-signed certificate as the CA file. The simulator speaks the plan's
    wire protocol (``plan.kind``), plays ``plan.scenario`` and logs its ground truth to
    ``plan.truth_path``; it is stopped when the block ends.
    """
    from app.sim.server import SimThread

    sim = SimThread(plan.scenario, dialect=plan.kind, truth_path=plan.truth_path)
    url = sim.start()
    try:
        cert = sim.cert_path
        yield dataclasses.replace(
            plan, sim=sim, url=url, ca_file=str(cert) if cert else plan.ca_file
        )
    finally:
        sim.stop()
