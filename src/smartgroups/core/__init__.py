"""The pure core: conditions, catalog guards, matching and membership decisions.

Nothing here imports faust, aiokafka, rocksdict, orjson or pydantic, or reads the clock; time is
always passed in, and state crosses the boundary as plain documents (the adapters encode them).
The one environment switch is ``SMARTGROUPS_NATIVE=0`` (:mod:`.extension`), read at import to
run without the C extension. Everything is deterministic and total on its documented inputs.
"""
