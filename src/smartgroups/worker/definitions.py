"""The definitions agent: faust's stream of ``group-changes`` (and re-routed commands), handed to
the service.

One agent consumes ``group-changes`` and the internal ``commands`` topic, so each space's
commands are applied in one total order. What each record does is
:class:`smartgroups.service.definitions.DefinitionsService`'s business; this module wires it to
the ``catalogs`` table and the app's producer.
"""

from __future__ import annotations

from smartgroups.service.definitions import DefinitionsService
from smartgroups.worker.edge import Sender, register_agent
from smartgroups.worker.runtime import Runtime


def register(runtime: Runtime) -> None:
    """Register the definitions agent on ``runtime.app``."""
    sender = Sender(runtime)
    service = DefinitionsService(
        catalogs=runtime.catalogs, publisher=sender, topics=runtime.topology, stats=runtime.stats
    )
    register_agent(
        runtime,
        "definition_inputs",
        "definitions",
        service,
        sender,
        runtime.metrics.definition_inputs,
    )
