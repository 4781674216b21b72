"""Output models -> the bytes written to Kafka."""

from __future__ import annotations

import orjson

from smartgroups.wire.outputs import Output


def encode(model: Output) -> bytes:
    """Compact UTF-8 JSON of an output model; ``None`` fields are omitted (see :mod:`.outputs`)."""
    return orjson.dumps(model.model_dump(exclude_none=True))
