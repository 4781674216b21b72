"""The wire layer: what travels on the topics and how it is checked at the edge.

* :mod:`.decode`: raw input records -> validated events or dead letters (never raises);
* :mod:`.models`: pydantic models of every input event and every output;
* :mod:`.encode`: output models -> bytes;
* :mod:`.deadletter`: dead-letter codes, safe messages and headers;
* :mod:`.timestamps`: RFC 3339 timestamps (ids and keys are :mod:`smartgroups.core.ids`).

The JSON Schemas in ``schemas/`` describe the same values for other languages; the tests keep
the two in step.
"""

from smartgroups.core.ids import change_id, member_key, space_key, state_key
from smartgroups.wire.deadletter import DeadLetter, DeadLetterCode, dead_letter_headers
from smartgroups.wire.decode import (
    MAX_VALUE_BYTES,
    GroupChangeEnvelope,
    decode_group_change,
    decode_member_input,
)
from smartgroups.wire.encode import encode

__all__ = [
    "MAX_VALUE_BYTES",
    "DeadLetter",
    "DeadLetterCode",
    "GroupChangeEnvelope",
    "change_id",
    "dead_letter_headers",
    "decode_group_change",
    "decode_member_input",
    "encode",
    "member_key",
    "space_key",
    "state_key",
]
